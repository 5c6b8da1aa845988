"""Tiny synthetic paired volumes for the synthesis tests (NIfTI in a tmp folder)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medgen.tasks.synthesis.pairs import read_pairs
from medgen.tasks.synthesis.prepare import prepare_synthesis

SHAPE = (36, 36, 34)  # just above the 32^3 patches of the presets
AFFINE = np.diag([1.2, 1.2, 1.5, 1.0])


def pair_volumes(seed: int, shape=SHAPE, lesion: bool = True):
    """(t2, flair, seg): a noisy ellipsoid 'brain' on zero background; FLAIR a smooth
    function of T2 with a brighter 'lesion'."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    inside = (grid**2).sum(0) < 0.6
    t2 = np.where(inside, 100 + 30 * grid[0] + 5 * rng.standard_normal(shape), 0)
    seg = np.zeros(shape, np.int16)
    if lesion:
        seg[14:20, 15:21, 14:19] = 2
        t2[seg > 0] += 60
    flair = np.where(inside, 0.8 * t2 + 20 * grid[1] + 10, 0)
    flair[seg > 0] += 40
    return t2.astype(np.float32), flair.astype(np.float32), seg


def save_nii(path: Path, data, affine=AFFINE) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data), affine), path)
    return path


def write_subjects(root: Path, splits=("train", "train", "train", "test"), seed: int = 0
                   ) -> Path:
    """Subjects s0.. with t2, flair and seg files and a sample sheet; returns the sheet."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["subject\tsplit\tt2\tflair\tlabel"]
    for i, split in enumerate(splits):
        t2, flair, seg = pair_volumes(seed * 100 + i)
        for name, data in (("t2", t2), ("flair", flair), ("seg", seg)):
            save_nii(root / f"s{i}_{name}.nii.gz", data)
        lines.append(f"s{i}\t{split}\ts{i}_t2.nii.gz\ts{i}_flair.nii.gz\ts{i}_seg.nii.gz")
    sheet = root / "samples.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet


SETTINGS = {"resample_target": False, "mask": "nonzero", "normalisation": "p99",
            "target_normalisation": None, "ct_window": [-1024, 3071], "target_is_ct": False,
            "ct_hu_range": [-1100, 4000]}


def prepared_folder(root: Path, seed: int = 0, validation: str | None = "s2") -> Path:
    """A prepared synthesis folder of four synthetic subjects (s2 validation, s3 test)."""
    sheet = write_subjects(root / "raw", seed=seed)
    pairs = read_pairs(sheet, ["t2"], "flair", validation_subject=validation)
    return prepare_synthesis(pairs, SETTINGS, root / "prepared")


REAL_CT = {  # real CT in ../shared/data (read in place, never copied)
    "nifti_trunk": "imaging/ct/totalseg_example_sm/example_ct_sm.nii.gz",
    "analyze_head": "imaging/ct/cmtk_cad001/cad001_ct.hdr",
}
CT_SETTINGS = {**SETTINGS, "target_normalisation": "ct_window", "target_is_ct": True}


def ct_pair_sheet(root: Path, ct_path, subjects=(("ct0", "train"), ("ct1", "test"))):
    """A sample sheet pairing the real CT ``ct_path`` (target 'ct', read in place) with a
    synthetic 'MR' on its grid (source 'mr': nonzero in the body, a smooth function of HU)."""
    img = nib.load(ct_path)
    ct = np.asarray(img.dataobj, dtype=np.float32)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["subject\tsplit\tmr\tct"]
    for i, (subject, split) in enumerate(subjects):
        rng = np.random.default_rng(i)
        mr = np.where(ct > -500, 200 + 0.1 * ct + rng.normal(0, 5, ct.shape), 0)
        save_nii(root / f"{subject}_mr.nii.gz", mr.astype(np.float32), img.affine)
        lines.append(f"{subject}\t{split}\t{subject}_mr.nii.gz\t{ct_path}")
    sheet = root / "samples.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet
