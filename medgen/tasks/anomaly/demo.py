"""Imaging demo on real data shipped with an installed package (nilearn's MNI152 T1).

The template is one brain, so the demo builds three "subjects" from it: the left hemisphere
(train) and the mirrored right hemisphere, whose slices along the slice axis go alternately
to a validation and a test volume (no slice in both). All three are healthy; the workflow
inserts synthetic anomalies into the validation and test slices (``imaging.
synthetic_anomalies``, MOOD-style) so that detection can be measured against known masks.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medgen import atomic
from medgen.data.imaging.sheet import write_sample_sheet


def _every_other(volume: np.ndarray, affine: np.ndarray, axis: int, start: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Slices start, start + 2, ... along ``axis``, with the affine of that sampling."""
    index = [slice(None)] * 3
    index[axis] = slice(start, None, 2)
    sampled = affine.copy()
    sampled[:3, 3] = affine[:3, :3] @ np.eye(3)[axis] * start + affine[:3, 3]
    sampled[:3, axis] = affine[:3, axis] * 2
    return volume[tuple(index)], sampled


def mni152_demo_sheet(out_dir: str | Path, resolution: int = 2, slice_axis: int = 2) -> Path:
    """Write the train / val / test volumes, their brain masks (nilearn's MNI152 brain mask;
    use ``anomaly.mask: given``) and their sample sheet; return the sheet's path.

    ``slice_axis`` (0 is the hemisphere axis, so 1 or 2): the axis the right hemisphere's
    slices alternate along between val and test.
    """
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template
    from nilearn.image import resample_to_img

    out_dir = Path(out_dir)
    template = load_mni152_template(resolution=resolution)
    data = np.asarray(template.dataobj, dtype=np.float32)
    affine = template.affine
    # the template's own brain mask: 'nonzero' would also take the faint halo around it
    brain = resample_to_img(load_mni152_brain_mask(resolution=resolution), template,
                            interpolation="nearest", force_resample=True, copy_header=True)
    mask = (np.asarray(brain.dataobj) > 0).astype(np.uint8)
    # voxel column of x = 0 mm (the midline)
    mid = int(round(np.linalg.solve(affine, [0, 0, 0, 1])[0]))
    axis = slice_axis if slice_axis in (1, 2) else 2
    rows = []
    for name, volume in (("", data), ("_mask", mask)):
        right = volume[mid:][::-1]  # mirrored so both halves share one orientation
        volumes = {
            "mni152_left": ("train", volume[:mid], affine),
            "mni152_right_val": ("val", *_every_other(right, affine, axis, 0)),
            "mni152_right_test": ("test", *_every_other(right, affine, axis, 1)),
        }
        for subject, (split, half, half_affine) in volumes.items():
            path = out_dir / f"{subject}{name}.nii.gz"
            with atomic.atomic_path(path) as tmp:
                nib.save(nib.Nifti1Image(np.ascontiguousarray(half), half_affine),
                         str(tmp) + ".nii.gz")
                Path(str(tmp) + ".nii.gz").replace(tmp)
            if not name:
                rows.append({"subject": subject, "split": split, "t1": path.name,
                             "mask": f"{subject}_mask.nii.gz"})
    sheet = out_dir / "samples.tsv"
    write_sample_sheet(sheet, rows)
    return sheet
