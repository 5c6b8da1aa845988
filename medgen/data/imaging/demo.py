"""Imaging demo on real data shipped with an installed package (nilearn's MNI152 T1).

The template is one brain, so the demo builds two "subjects" from it: the left hemisphere
(train) and the mirrored right hemisphere (test). Both are healthy: the demo shows that the
pipeline runs end to end (preprocessing, training, scoring, residual maps), not detection
performance (there are no anomalies, so AUROC is undefined and reported as such).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medgen import atomic
from medgen.data.imaging.sheet import write_sample_sheet


def mni152_demo_sheet(out_dir: str | Path, resolution: int = 2) -> Path:
    """Write the two hemisphere volumes and their sample sheet; return the sheet's path."""
    from nilearn.datasets import load_mni152_template

    out_dir = Path(out_dir)
    template = load_mni152_template(resolution=resolution)
    data = np.asarray(template.dataobj, dtype=np.float32)
    affine = template.affine
    # voxel column of x = 0 mm (the midline)
    mid = int(round(np.linalg.solve(affine, [0, 0, 0, 1])[0]))
    halves = {
        "mni152_left": data[:mid],
        "mni152_right": data[mid:][::-1],  # mirrored so both halves share one orientation
    }
    rows = []
    for (subject, half), split in zip(halves.items(), ("train", "test")):
        path = out_dir / f"{subject}.nii.gz"
        with atomic.atomic_path(path) as tmp:
            nib.save(nib.Nifti1Image(np.ascontiguousarray(half), affine), str(tmp) + ".nii.gz")
            Path(str(tmp) + ".nii.gz").replace(tmp)
        rows.append({"subject": subject, "split": split, "t1": path.name})
    sheet = out_dir / "samples.tsv"
    write_sample_sheet(sheet, rows)
    return sheet
