"""Files of the anomaly scoring and evaluation.

The per-image scores TSV (written by scoring, read back by the evaluation), residual maps as
PNG (one per 2D image) or NIfTI (one per subject, back on the input volume's grid), the
metrics tables and the evaluation's ``scores.tsv`` (every method's score of every item).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

import nibabel as nib
import nibabel.processing
import numpy as np
import pandas as pd
from PIL import Image

from medgen import atomic
from medgen.data.imaging.readers import read_volume


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def write_pngs(folder: Path, subjects: np.ndarray, maps: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scale = float(np.percentile(maps, 99.9)) or 1.0
    for subject, residual in zip(subjects, maps):
        pixels = (np.clip(residual / scale, 0, 1) * 255).astype(np.uint8)
        with atomic.atomic_path(folder / f"{_safe(str(subject))}.png") as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")


def write_niftis(folder: Path, data: dict[str, np.ndarray], maps: np.ndarray,
                 geometry: dict[str, Any]) -> None:
    """Slice maps -> one volume per subject in the cropped RAS grid -> input grid."""
    axis = geometry["slice_axis"]
    folder.mkdir(parents=True, exist_ok=True)
    for subject in np.unique(data["subject"]):
        info = geometry["subjects"][str(subject)]
        shape = info["shape"]
        volume = np.zeros(shape, np.float32)
        plane = [s for i, s in enumerate(shape) if i != axis]
        rows = np.flatnonzero(data["subject"] == subject)
        for r in rows:
            index = [slice(None)] * 3
            index[axis] = int(data["index"][r])
            volume[tuple(index)] = undo_pad_or_crop(maps[r], plane)
        image = nib.Nifti1Image(volume, np.asarray(info["affine"]))
        ref_data, ref_affine = read_volume(info["reference"], "correct")
        aligned = nibabel.processing.resample_from_to(image, (ref_data.shape, ref_affine), order=1)
        with atomic.atomic_path(folder / f"{_safe(str(subject))}_residual.nii.gz") as tmp:
            target = Path(str(tmp) + ".nii.gz")
            nib.save(nib.Nifti1Image(np.asarray(aligned.dataobj, np.float32), ref_affine),
                     target)
            target.replace(tmp)


def undo_pad_or_crop(arr: np.ndarray, shape: list[int]) -> np.ndarray:
    """Inverse of slices.pad_or_crop (MONAI ResizeWithPadOrCrop's centring) for one 2D map."""
    out = np.zeros(shape, arr.dtype)
    src, dst = [], []
    for size, target in zip(arr.shape, shape):
        if target <= size:  # the slice was padded: take the middle back out
            before = (size - target) // 2
            src.append(slice(before, before + target))
            dst.append(slice(None))
        else:  # the slice was cropped: put the map back where it came from
            start = target // 2 - size // 2
            src.append(slice(None))
            dst.append(slice(start, start + size))
    out[tuple(dst)] = arr[tuple(src)]
    return out


def write_scores(path: Path, columns: dict[str, np.ndarray]) -> None:
    """The per-image scores TSV: one column per key, floats to 6 significant digits."""
    n = len(next(iter(columns.values())))
    with atomic.atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(columns)
        for i in range(n):
            writer.writerow([f"{columns[c][i]:.6g}" if isinstance(columns[c][i], np.floating)
                             else columns[c][i] for c in columns])


def read_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for k in out:
        if k != "subject":
            out[k] = out[k].astype(np.float64)
    return out


SCORES_FILE = "scores.tsv"  # every evaluated item's score, per split and method


def item_scores(split: str, method: str, subject: np.ndarray, index: np.ndarray,
                y: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """One method's scores of one split as rows of ``scores.tsv``: split, method, subject,
    index (slice index in the subject's volume; the item's position for 2D images), y
    (1 anomalous, 0 normal), score (higher = more anomalous)."""
    return pd.DataFrame({"split": split, "method": method, "subject": np.asarray(subject, str),
                         "index": np.asarray(index).astype(np.int64), "y": np.asarray(y, int),
                         "score": np.asarray(score, np.float64)})


def write_item_scores(path: Path, items: list[pd.DataFrame]) -> None:
    """``scores.tsv``: the rows of ``item_scores`` for every split and method (the ROC
    curves and histograms are drawn from it); scores to 10 significant digits."""
    with atomic.atomic_path(path) as tmp:
        pd.concat(items, ignore_index=True).to_csv(tmp, sep="\t", index=False,
                                                   float_format="%.10g")


def read_item_scores(path: str | os.PathLike) -> pd.DataFrame:
    """``scores.tsv`` back (subjects as text)."""
    return pd.read_csv(path, sep="\t", dtype={"subject": str})


def write_table(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = ()) -> None:
    columns = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    lines = ["\t".join(columns)] + [
        "\t".join(f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, ""))
                  for c in columns) for r in rows]
    atomic.write_text(path, "\n".join(lines) + "\n")
