"""Evaluation of anomaly scores: every method side by side on the val and test splits.

``evaluate_anomaly`` computes image/slice-level AUROC/AUPRC, the threshold at a chosen
false-positive rate on held-out normals (val) with test sensitivity/specificity, and
pixel-level AUPRC / best Dice inside the mask (optionally after a median filter), pooled
and per subject, and draws the figures.

The rest of the anomaly evaluation lives beside it: scoring (``anomaly_inference``), the
metric functions (``anomaly_metrics``), the files (``anomaly_outputs``) and the shared names
(``anomaly_methods``; ``TRIVIAL`` is re-exported here for the workflow).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from medgen import atomic, provenance
from medgen.data.imaging.prepare import load_split
from medgen.evaluate.anomaly_methods import TRIVIAL
from medgen.evaluate.anomaly_metrics import (
    calibrate_threshold,
    covariate_deviations,
    image_covariates,
    image_metrics,
    median_filter_maps,
    pixel_intensity_rho,
    pixel_metrics,
    pixel_metrics_by_subject,
    sensitivity_specificity,
    spearman,
)
from medgen.evaluate.anomaly_outputs import read_scores, write_table
from medgen.report.anomaly_figures import histograms, residual_grid, roc_curves

__all__ = ["TRIVIAL", "evaluate_anomaly"]


def evaluate_anomaly(
    score_dirs: dict[str, str | os.PathLike],
    data_dir: str | os.PathLike,
    imaging_cfg: dict[str, Any],
    out_dir: str | os.PathLike,
    seed: int = 0,
    train_path: str | os.PathLike | None = None,
) -> Path:
    """Metrics table (TSV + JSON), ROC curves, histograms and image grids for every method.

    ``score_dirs`` maps a method name to the folder ``score_anomalies`` wrote. Val and test
    are both evaluated where present; the threshold comes from val normals. ``train_path``
    (default ``data_dir/train.npz``): the training units, the reference of the trivial
    brightness / contrast / sharpness deviation scores.
    """
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    ev = imaging_cfg["evaluation"]
    splits = [s for s in ("val", "test") if (data_dir / f"{s}.npz").exists()]
    data = {s: load_split(data_dir / f"{s}.npz") for s in splits}
    rows, curves, by_subject = [], {s: {} for s in splits}, []
    covariates = {s: image_covariates(data[s]) for s in splits}
    for method, folder in score_dirs.items():
        folder = Path(folder)
        scores = {s: read_scores(folder / f"scores_{s}.tsv") for s in splits}
        threshold = None
        if "val" in scores:
            val = scores["val"]
            threshold = calibrate_threshold(val["score"][val["y"] == 0], ev["false_positive_rate"])
        for s in splits:
            table = scores[s]
            row = {"method": method, "split": s, "n_normal": int((table["y"] == 0).sum()),
                   "n_anomalous": int((table["y"] == 1).sum()),
                   **image_metrics(table["score"], table["y"])}
            # what the score responds to: rank correlation with simple image properties
            for name, values in covariates[s].items():
                row[f"rho_{name}"] = spearman(table["score"], values)
            if threshold is not None and s == "test":
                row.update(sensitivity_specificity(table["score"], table["y"], threshold))
            maps_path = folder / f"maps_{s}.npz"
            maps = load_split(maps_path) if maps_path.exists() else None
            if ev["pixel_level"] and "labels_map" in data[s] and maps is not None:
                residual = median_filter_maps(maps["residual_map"], ev["median_filter"])
                truth = (residual, data[s]["labels_map"], data[s]["masks"])
                row.update(pixel_metrics(*truth))
                row["pixel_rho_intensity"] = pixel_intensity_rho(
                    residual, data[s]["images"], data[s]["masks"])
                by_subject += [{"method": method, "split": s, **r}
                               for r in pixel_metrics_by_subject(*truth, data[s]["subject"])]
            rows.append(row)
            curves[s][method] = (table["score"], table["y"])
            if s == "test" and maps is not None and "reconstruction" in maps:
                residual_grid(out_dir / f"grid_{method}.png", data[s],
                              maps["reconstruction"].astype(np.float32),
                              maps["residual_map"].astype(np.float32), ev["n_grid"], seed)
    train_path = Path(train_path) if train_path else data_dir / "train.npz"
    train = load_split(train_path) if train_path.exists() else None
    # only when training units are whole images like the evaluated ones (not patches)
    if train is not None and all(train["images"].shape[1:] == data[s]["images"].shape[1:]
                                 for s in splits):
        reference = image_covariates(train)
        for s in splits:
            y = data[s]["y"]
            for name, score in covariate_deviations(reference, covariates[s]).items():
                rows.append({"method": name, "split": s, "n_normal": int((y == 0).sum()),
                             "n_anomalous": int((y == 1).sum()), **image_metrics(score, y)})
                curves[s][name] = (score, y)
    for s in splits:
        # curves of scores that need no model (trivial, covariate deviations) are dashed
        model_free = [m for m in curves[s] if m in TRIVIAL or m.endswith("_deviation")]
        roc_curves(out_dir / f"roc_{s}.png", curves[s], f"ROC, {s} split", model_free)
        histograms(out_dir / f"hist_{s}.png", curves[s], f"scores, {s} split")
    write_table(out_dir / "metrics.tsv", rows)
    if ev["pixel_level"]:  # header only when no split has tumour masks
        write_table(out_dir / "pixel_by_subject.tsv", by_subject,
                    ("method", "split", "subject", "pixel_auprc", "best_dice"))
    atomic.write_json(out_dir / "metrics.json", {
        "metrics": rows,
        "pixel_by_subject": by_subject,
        "provenance": provenance.collect({"imaging": imaging_cfg}, seed,
                                         [data_dir / f"{s}.npz" for s in splits]),
    })
    return out_dir / "metrics.tsv"
