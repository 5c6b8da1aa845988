"""Imaging demo on real data shipped with an installed package (nilearn's MNI152 T1).

The template is one brain, so the demo builds its "subjects" from it: the left hemisphere
(train) and the mirrored right hemisphere cut along the slice axis into slabs of
``SLAB_SLICES`` slices, ``GAP_SLICES`` slices apart, that go alternately to validation and
test (one subject per slab). Neighbouring slices look alike, so the earlier alternate
slices made a choice on val nearly a choice on test; slabs with gaps keep the two apart
(at least ``GAP_SLICES + 1`` slices) while both still span the brain. All are healthy; the
workflow inserts synthetic anomalies into the validation and test slices
(``anomaly.synthetic_anomalies``, MOOD-style) so that detection can be measured against
known masks. What the demo's test cannot show: another brain (train, val and test are one
template), or real lesions.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medgen import atomic
from medgen.data.imaging.sheet import write_sample_sheet

SLAB_SLICES = 8  # 16 mm at the demo's 2-mm resolution
GAP_SLICES = 2   # left out between slabs: val and test slices are >= 6 mm apart


def slabs(mask: np.ndarray, axis: int, slab: int = SLAB_SLICES,
          gap: int = GAP_SLICES) -> list[tuple[int, int]]:
    """(start, stop) slice ranges along ``axis``: consecutive slabs of ``slab`` slices with
    ``gap`` slices left out between them, over the slices where ``mask`` covers at least a
    tenth of its largest slice's area (the tips of the brain would leave a slab without a
    usable slice; a last slab shorter than half of ``slab`` is dropped)."""
    other = tuple(a for a in range(3) if a != axis)
    area = mask.sum(axis=other)
    present = np.flatnonzero(area >= 0.1 * area.max())
    ranges, start = [], int(present[0])
    while start <= present[-1]:
        stop = min(start + slab, int(present[-1]) + 1)
        if stop - start >= max(1, slab // 2):
            ranges.append((start, stop))
        start = stop + gap
    return ranges


def _slab(volume: np.ndarray, affine: np.ndarray, axis: int, start: int, stop: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Slices start..stop-1 along ``axis``, with the affine of that sub-volume."""
    index = [slice(None)] * 3
    index[axis] = slice(start, stop)
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ np.eye(3)[axis] * start + affine[:3, 3]
    return volume[tuple(index)], shifted


def mni152_demo_sheet(out_dir: str | Path, resolution: int = 2, slice_axis: int = 2) -> Path:
    """Write the train / val / test volumes, their brain masks (nilearn's MNI152 brain mask;
    use ``anomaly.mask: given``) and their sample sheet; return the sheet's path.

    ``slice_axis`` (0 is the hemisphere axis, so 1 or 2): the axis the right hemisphere is
    cut along into slabs (``slabs``), alternately val (``mni152_right_val<k>``) and test
    (``mni152_right_test<k>``).
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
    ranges = slabs(mask[mid:][::-1], axis)
    for name, volume in (("", data), ("_mask", mask)):
        right = volume[mid:][::-1]  # mirrored so both halves share one orientation
        volumes = {"mni152_left": ("train", volume[:mid], affine)}
        for k, (start, stop) in enumerate(ranges):
            split = ("val", "test")[k % 2]
            volumes[f"mni152_right_{split}{k // 2 + 1}"] = (
                split, *_slab(right, affine, axis, start, stop))
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
