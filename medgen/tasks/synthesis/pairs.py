"""Paired volumes for image synthesis: per subject one or more source modalities and one
target modality on one voxel grid (Nie et al., MICCAI 2017: MR -> CT; here BraTS MR -> MR).

The pairs come from the imaging sample sheet (``medgen.data.imaging.sheet``): one column per
modality, ``split``, optional ``mask`` (brain/body mask) and ``label`` (BraTS tumour
segmentation). Every bad input raises one MedgenInputError naming the file(s); nothing is
written by this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medgen.data.imaging.readers import read_volume
from medgen.data.imaging.sheet import read_sample_sheet, require_splits
from medgen.errors import MedgenInputError

AFFINE_ATOL = 1e-3  # mm; co-registered files written by different tools differ in rounding
CT_HU_RANGE = (-1100.0, 4000.0)  # below: not air; above: beyond dense bone and most metal


@dataclass(frozen=True)
class SynthesisPair:
    """One subject's files: ``sources`` (modality -> path, in config order) and ``target``."""

    subject: str
    split: str
    sources: dict[str, Path]
    target_name: str
    target: Path | None
    mask: Path | None = None
    label: Path | None = None


@dataclass
class PairVolume:
    """One subject's volumes on the first source's grid, in scanner units.

    Attributes
    ----------
    source
        (C, X, Y, Z) float32, one channel per source modality.
    target
        (X, Y, Z) float32, or None (inference on new data without a target).
    mask
        (X, Y, Z) uint8, 1 inside the brain/body.
    label
        (X, Y, Z) int16 tumour labels (BraTS seg), or None.
    affine
        4x4 voxel -> world (mm) of the first source.
    """

    subject: str
    source: np.ndarray
    target: np.ndarray | None
    mask: np.ndarray
    label: np.ndarray | None
    affine: np.ndarray
    reference: Path


def read_pairs(sheet: str | Path, sources: list[str], target: str,
               data_root: str | Path | None = None, validation_subject: str | None = None,
               require_target: bool = True) -> list[SynthesisPair]:
    """The pairs of a sample sheet, in sheet order.

    Parameters
    ----------
    sheet
        TSV sample sheet with ``subject``, ``split`` and one column per modality.
    sources, target
        Column names of the source modalities and of the target modality.
    data_root
        Where relative paths start (default: the sheet's folder).
    validation_subject
        A training subject moved to split 'val' (model selection uses it, never a test
        subject).
    require_target
        False for new data: the target column may be absent.

    Raises
    ------
    MedgenInputError
        A missing column, file or cell (one modality of a pair missing), a source and a
        target that are the same file, the target among the sources, or a validation
        subject that is not a training subject.
    """
    if not sources:
        raise MedgenInputError("synthesis: no source modality given (synthesis.sources)")
    if target in sources:
        raise MedgenInputError(
            f"config key 'synthesis.target' is '{target}', which is also in synthesis.sources "
            f"{list(sources)}; expected a target that is not a source (a model that copies its "
            "input learns nothing)")
    modalities = [*sources, target] if require_target else list(sources)
    rows = read_sample_sheet(sheet, modalities, data_root=data_root)
    pairs = []
    for row in rows:
        target_path = row.images.get(target)
        if target_path is None and target in row.extra:  # new data: the target is optional
            target_path = Path(row.extra[target])
            if not target_path.is_absolute():
                target_path = Path(data_root or Path(sheet).parent) / target_path
            if not target_path.exists():
                raise MedgenInputError(
                    f"sample sheet {sheet}, subject '{row.subject}': file in column "
                    f"'{target}' does not exist: {target_path}")
        for name in sources:
            if target_path is not None and _same_file(row.images[name], target_path):
                raise MedgenInputError(
                    f"sample sheet {sheet}, subject '{row.subject}': source '{name}' and "
                    f"target '{target}' are the same file ({target_path})")
        pairs.append(SynthesisPair(
            subject=row.subject, split=row.split,
            sources={name: row.images[name] for name in sources}, target_name=target,
            target=target_path, mask=row.mask, label=row.label))
    if validation_subject:
        found = [p for p in pairs if p.subject == validation_subject]
        if not found or found[0].split not in ("train", "val"):
            trainees = [p.subject for p in pairs if p.split == "train"]
            raise MedgenInputError(
                f"config key 'synthesis.validation_subject' is {validation_subject!r}, which "
                f"is not a training subject of {sheet}; one of: {', '.join(trainees)}")
        pairs = [dataclasses.replace(p, split="val") if p.subject == validation_subject
                 else p for p in pairs]
    return pairs


def read_synthesis_sheet(section: dict[str, Any], new_data: bool = False) -> list[SynthesisPair]:
    """The pairs of the ``synthesis`` config section's sample sheet, as the workflow plans.

    ``section``: the resolved ``synthesis`` section; ``new_data``: apply mode (the target
    column is optional and no subject is moved to validation). Read when Snakemake plans a
    run and by ``medgen validate``, so both refuse the same sheets.

    Raises
    ------
    MedgenInputError
        ``synthesis.sample_sheet`` is empty; any problem ``read_pairs`` raises; no subject
        in split 'train' (besides the validation subject) or 'test' (training mode).
    """
    if not section["sample_sheet"]:
        raise MedgenInputError(
            "config key 'synthesis.sample_sheet' is empty, but synthesis.activate is true; "
            "expected the path of a sample sheet (TSV)")
    pairs = read_pairs(
        section["sample_sheet"], section["sources"], section["target"], section["data_root"],
        None if new_data else section["validation_subject"], require_target=not new_data)
    if not new_data:
        require_splits(section["sample_sheet"], [pair.split for pair in pairs],
                       {"train": "the models train on it, less the validation subject",
                        "test": "the evaluation reports on it"})
    return pairs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _read_checked(path: Path, what: str, subject: str) -> tuple[np.ndarray, np.ndarray]:
    # read_volume refuses 4D images (naming the file) and unknown formats
    data, affine = read_volume(path)
    if not np.isfinite(data).all():
        n = int((~np.isfinite(data)).sum())
        raise MedgenInputError(
            f"subject '{subject}': {what} {path} has {n} NaN or infinite voxel(s); fix or "
            "mask them before synthesis")
    return data.astype(np.float32, copy=False), affine


def _onto_grid(data: np.ndarray, affine: np.ndarray, ref: tuple[np.ndarray, np.ndarray],
               path: Path, ref_path: Path, resample: bool, nearest: bool) -> np.ndarray:
    """``data`` on the reference grid: unchanged when shape and affine agree, else
    resampled with MONAI's ``ResampleToMatch`` when allowed, else one error naming both."""
    same_shape = data.shape == ref[0].shape
    if same_shape and np.allclose(affine, ref[1], atol=AFFINE_ATOL):
        return data
    if not resample:
        what = ("shape " + f"{data.shape} vs {ref[0].shape}" if not same_shape
                else "affine (max difference "
                f"{np.abs(affine - ref[1]).max():.3g} mm > {AFFINE_ATOL})")
        raise MedgenInputError(
            f"{path} and {ref_path} are not on one voxel grid ({what}); register them, or "
            "set synthesis.resample_target: true to resample onto the source grid")
    # imported here: the workflow reads sample sheets through this module when it plans a
    # run, and snakemake -n must not pay for torch and MONAI
    import torch
    from monai.data import MetaTensor
    from monai.transforms import ResampleToMatch

    moving = MetaTensor(torch.as_tensor(data)[None], affine=torch.as_tensor(affine))
    fixed = MetaTensor(torch.as_tensor(ref[0])[None], affine=torch.as_tensor(ref[1]))
    out = ResampleToMatch(mode="nearest" if nearest else "bilinear", padding_mode="zeros")(
        moving, fixed)
    return np.asarray(out[0], dtype=np.float32)


def check_ct_range(target: np.ndarray, path: Path,
                   hu_range: tuple[float, float] | list[float] = CT_HU_RANGE) -> None:
    """MedgenInputError unless a CT target lies within ``hu_range`` (Hounsfield units); the
    message says which bound is crossed and by what value (a CT stored with a rescale
    slope missing, or an MR given as CT, fails here)."""
    low, high = float(np.min(target)), float(np.max(target))
    problems = []
    if low < hu_range[0]:
        problems.append(f"minimum {low:.6g} < {hu_range[0]:g}")
    if high > hu_range[1]:
        problems.append(f"maximum {high:.6g} > {hu_range[1]:g}")
    if problems:
        raise MedgenInputError(
            f"CT target {path} is outside the expected Hounsfield range {list(hu_range)}: "
            f"{' and '.join(problems)} (padding outside the field of view, a missing "
            "rescale slope/intercept, or not a CT?); set synthesis.ct_hu_range if intended")


def load_pair(pair: SynthesisPair, cfg: dict[str, Any]) -> PairVolume:
    """Read one pair onto the first source's grid and check it.

    Parameters
    ----------
    pair
        From ``read_pairs``.
    cfg
        The ``synthesis`` config section: ``resample_target`` (bool), ``mask``
        ('nonzero': any source nonzero, or 'given': the sheet's mask), ``target_is_ct``
        and ``ct_hu_range``.

    Raises
    ------
    MedgenInputError
        A 4D input, NaN voxels, files on different grids (unless resampling), a source
        whose voxels equal the target's, an empty mask, or a CT target outside the
        Hounsfield range.
    """
    names = list(pair.sources)
    ref_path = pair.sources[names[0]]
    ref = _read_checked(ref_path, f"source '{names[0]}'", pair.subject)
    channels = [ref[0]]
    resample = bool(cfg.get("resample_target", False))
    for name in names[1:]:
        data, affine = _read_checked(pair.sources[name], f"source '{name}'", pair.subject)
        channels.append(_onto_grid(data, affine, ref, pair.sources[name], ref_path, resample,
                                   nearest=False))
    target = None
    if pair.target is not None:
        data, affine = _read_checked(pair.target, f"target '{pair.target_name}'", pair.subject)
        if cfg.get("target_is_ct", False):
            check_ct_range(data, pair.target, cfg.get("ct_hu_range", CT_HU_RANGE))
        target = _onto_grid(data, affine, ref, pair.target, ref_path, resample, nearest=False)
        for name, channel in zip(names, channels):
            # a copy of the target under another name passes the same-file check in
            # read_pairs; a model that copies its input would learn nothing
            if np.array_equal(channel, target):
                raise MedgenInputError(
                    f"subject '{pair.subject}': source '{name}' ({pair.sources[name]}) and "
                    f"target '{pair.target_name}' ({pair.target}) hold the same voxels; the "
                    "target must be another modality than every source")
    extra = {}
    for key in ("mask", "label"):
        path = getattr(pair, key)
        if path is not None:
            data, affine = _read_checked(path, key, pair.subject)
            extra[key] = np.rint(_onto_grid(data, affine, ref, path, ref_path, resample,
                                            nearest=True))
    source = np.stack(channels)
    if cfg.get("mask", "nonzero") == "given":
        if "mask" not in extra:
            raise MedgenInputError(
                f"subject '{pair.subject}': synthesis.mask is 'given' but the sample sheet "
                "has no mask for it")
        mask = extra["mask"] > 0
    else:  # skull-stripped MR (BraTS): the brain is where any source is nonzero
        mask = (source != 0).any(axis=0)
    if not mask.any():
        raise MedgenInputError(f"subject '{pair.subject}': the brain/body mask is empty")
    label = extra["label"].astype(np.int16) if "label" in extra else None
    return PairVolume(pair.subject, source, target, mask.astype(np.uint8), label, ref[1],
                      ref_path)


def check_patch_fits(shape: tuple[int, ...], patch_size: int, where: str) -> None:
    """MedgenInputError when a cubic patch of side ``patch_size`` exceeds a volume of
    ``shape`` (spatial) on any axis."""
    if any(patch_size > s for s in shape):
        raise MedgenInputError(
            f"{where}: patch size {patch_size} is larger than the volume {tuple(shape)}; "
            "lower models.<family>.params.patch_size")
