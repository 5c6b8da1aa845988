"""Evaluation of anomaly scores: every method side by side on the val and test splits.

``evaluate_anomaly`` computes image/slice-level AUROC/AUPRC, the threshold at a chosen
false-positive rate on held-out normals (val) with test sensitivity/specificity, and
pixel-level AUPRC / best Dice inside the mask (optionally after a median filter), pooled
and per subject, writes the tables (and every item's score, ``scores.tsv``), then draws the
figures from the written files (``medgen.tasks.anomaly.figures.draw_figures``).

The rest of the anomaly evaluation lives beside it: scoring (``anomaly_inference``), the
metric functions (``anomaly_metrics``), the files (``anomaly_outputs``) and the shared names
(``anomaly_methods``; ``TRIVIAL`` is re-exported here for the workflow).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen import atomic, provenance
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.tasks.anomaly.figures import draw_figures
from medgen.tasks.anomaly.methods import TRIVIAL
from medgen.tasks.anomaly.metrics import (
    best_dice_threshold,
    calibrate_threshold,
    choose_median_filter,
    covariate_deviations,
    filter_candidates,
    image_covariates,
    image_metrics,
    image_metrics_by_subject,
    median_filter_maps,
    pixel_intensity_rho,
    pixel_metrics,
    pixel_metrics_by_subject,
    sensitivity_specificity,
    spearman,
)
from medgen.tasks.anomaly.outputs import (
    SCORES_FILE,
    item_scores,
    read_scores,
    write_item_scores,
    write_table,
)
from medgen.tasks.anomaly.prepare import load_split

__all__ = ["TRIVIAL", "evaluate_anomaly"]


def evaluate_anomaly(
    score_dirs: dict[str, str | os.PathLike],
    data_dir: str | os.PathLike,
    imaging_cfg: dict[str, Any],
    out_dir: str | os.PathLike,
    seed: int = 0,
    train_path: str | os.PathLike | None = None,
    operating_points: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Metrics tables (TSV + JSON, tidy), every item's score, the operating points, then ROC
    curves, histograms and image grids drawn from the written files, for every method.

    ``score_dirs`` maps a method name to the folder ``score_anomalies`` wrote. Val and test
    are both evaluated where present. Each method's operating point, the image threshold
    at ``evaluation.false_positive_rate`` on the val normals and the pixel threshold with
    the best val Dice, is calibrated on val and written to ``operating_points.json``
    (``operating_point``); a method in ``operating_points`` (apply: calibrated by the
    training run, from the model card) uses the stored thresholds instead. Sensitivity,
    specificity and Dice are reported at them on test. ``train_path`` (default
    ``data_dir/train.npz``): the training units, the reference of the trivial brightness /
    contrast / sharpness deviation scores.
    """
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    ev = imaging_cfg["evaluation"]
    splits = [s for s in ("val", "test") if (data_dir / f"{s}.npz").exists()]
    data = {s: load_split(data_dir / f"{s}.npz") for s in splits}
    rows, items, by_subject = [], [], []
    used: dict[str, dict[str, Any]] = {}  # method -> the operating point it is scored at
    slices_by_subject: list[dict[str, Any]] = []
    # volumes: slices of several subjects, each worth its own numbers; npz2d: one image each
    per_subject_slices = imaging_cfg["kind"] != "npz2d"

    def raw_maps(folder: Path, split: str) -> np.ndarray | None:
        path = folder / f"maps_{split}.npz"
        return load_split(path)["residual_map"] if path.exists() else None

    def pixel_maps(folder: Path, split: str, size: int) -> np.ndarray | None:
        maps = raw_maps(folder, split)
        return None if maps is None else median_filter_maps(maps, size)

    candidates = filter_candidates(ev["median_filter"])
    val_labelled = ev["pixel_level"] and "val" in data and "labels_map" in data["val"]

    covariates = {s: image_covariates(data[s]) for s in splits}
    # figure labels: what an item is, and whether its anomalies were inserted by us
    unit = "slices" if per_subject_slices else "images"
    synthetic = any("anomaly_kind" in data[s] for s in splits)
    anomalous = "synthetic anomaly" if synthetic else "anomalous"
    for method, folder in score_dirs.items():
        folder = Path(folder)
        scores = {s: read_scores(folder / f"scores_{s}.tsv") for s in splits}
        threshold = pixel_threshold = None
        stored = (operating_points or {}).get(method)
        size, val_auprc = candidates[0], None
        if stored is not None:
            size = stored["median_filter"]
            threshold, pixel_threshold = stored["image_threshold"], stored["pixel_threshold"]
            used[method] = {**stored, "source": "stored with the model (its training run's val)"}
        elif len(candidates) > 1 and any(folder.glob("maps_*.npz")):
            # the filter is a setting: chosen on val for each method alike, never on test
            if not (val_labelled and (folder / "maps_val.npz").exists()):
                raise MedgenInputError(
                    f"config key 'anomaly.evaluation.median_filter' lists {candidates} to "
                    f"choose among on the val split, but {method} has no val split with "
                    "pixel labels to choose on (needs anomaly.evaluation.pixel_level: true "
                    "and lesion masks); give one size instead")
            size, val_auprc = choose_median_filter(raw_maps(folder, "val"),
                                                   data["val"]["labels_map"],
                                                   data["val"]["masks"], candidates)
        if stored is None and "val" in scores:
            val = scores["val"]
            threshold = calibrate_threshold(val["score"][val["y"] == 0], ev["false_positive_rate"])
            # the pixel operating point a user would deploy: best Dice on the val split
            val_maps = pixel_maps(folder, "val", size)
            if ev["pixel_level"] and "labels_map" in data["val"] and val_maps is not None:
                pixel_threshold = best_dice_threshold(val_maps, data["val"]["labels_map"],
                                                      data["val"]["masks"])[0]
            used[method] = operating_point(threshold, pixel_threshold, val, imaging_cfg,
                                           size, val_auprc)
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
            if per_subject_slices:
                slices_by_subject += [
                    {"method": method, "split": s, **r}
                    for r in image_metrics_by_subject(table["score"], table["y"],
                                                      table["subject"])]
            maps = pixel_maps(folder, s, size)
            if ev["pixel_level"] and "labels_map" in data[s] and maps is not None:
                truth = (maps, data[s]["labels_map"], data[s]["masks"])
                row["median_filter"] = int(size)
                row.update(pixel_metrics(*truth, pixel_threshold))
                row["pixel_rho_intensity"] = pixel_intensity_rho(
                    maps, data[s]["images"], data[s]["masks"])
                by_subject += [{"method": method, "split": s, **r}
                               for r in pixel_metrics_by_subject(*truth, data[s]["subject"],
                                                                 pixel_threshold)]
            rows.append(row)
            items.append(item_scores(s, method, table["subject"], table["index"], table["y"],
                                     table["score"]))
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
                items.append(item_scores(s, name, data[s]["subject"],
                                         data[s].get("index", np.arange(len(y))), y, score))
    notes = metric_notes(rows, data, synthetic) + filter_notes(used, candidates)
    write_table(out_dir / "metrics.tsv", rows)
    if ev["pixel_level"]:  # header only when no split has tumour masks
        write_table(out_dir / "pixel_by_subject.tsv", by_subject,
                    ("method", "split", "subject", "pixel_auroc", "pixel_auprc",
                     "dice_at_val_threshold", "best_dice_upper_bound"))
    write_table(out_dir / "slices_by_subject.tsv", slices_by_subject,
                ("method", "split", "subject", "n_normal", "n_anomalous", "auroc", "auprc"))
    atomic.write_text(out_dir / "notes.txt", "".join(f"- {n}\n" for n in notes) or "none\n")
    write_tidy(out_dir / tidy.FILE, rows, slices_by_subject, by_subject)
    atomic.write_json(out_dir / tidy.OPERATING_POINTS, used)
    write_item_scores(out_dir / SCORES_FILE, items)
    atomic.write_json(out_dir / "metrics.json", {
        # the demo inserts them whatever anomaly.synthetic_anomalies.activate says
        "synthetic_anomalies": synthetic,
        "metrics": rows,
        "notes": notes,
        "pixel_by_subject": by_subject,
        "slices_by_subject": slices_by_subject,
        "provenance": provenance.collect({"anomaly": imaging_cfg}, seed,
                                         [data_dir / f"{s}.npz" for s in splits]),
    })
    # figures last, from the files just written (the replicates layer reads the same files)
    draw_figures(out_dir, score_dirs, data_dir, ev["n_grid"], seed, unit, anomalous)
    return out_dir / "metrics.tsv"


def operating_point(threshold: float, pixel_threshold: float | None, val: dict[str, Any],
                    imaging_cfg: dict[str, Any], median_filter: int | None = None,
                    filter_val_auprc: dict[int, float] | None = None) -> dict[str, Any]:
    """One method's operating point as calibrated on the val split, with the settings the
    thresholds are only valid under (a model card stores it; apply checks them).

    ``median_filter``: the size its maps were filtered with (default: the config's single
    size); ``filter_val_auprc``: each candidate size's val pixel AUPRC when the config lists
    candidates (``median_filter_setting`` keeps the config's value: apply compares that).
    """
    ev = imaging_cfg["evaluation"]
    size = filter_candidates(ev["median_filter"])[0] if median_filter is None else median_filter
    point = {"image_threshold": float(threshold),
             "false_positive_rate": ev["false_positive_rate"],
             "n_val_normals": int((val["y"] == 0).sum()),
             "pixel_threshold": None if pixel_threshold is None else float(pixel_threshold),
             "median_filter": int(size), "median_filter_setting": ev["median_filter"],
             "scoring": dict(imaging_cfg["scoring"]),
             "source": "calibrated on this run's val split"}
    if filter_val_auprc is not None:
        point["median_filter_val_pixel_auprc"] = {str(k): v for k, v in filter_val_auprc.items()}
    return point


def metric_notes(rows: list[dict[str, Any]], data: dict[str, dict[str, np.ndarray]],
                 synthetic: bool = False) -> list[str]:
    """Plain-language notes on numbers a reader would otherwise misread: a calibrated
    threshold that flags no anomalous test slice for any method, and synthetic anomalies
    (``synthetic``: the val/test anomalies were inserted, not labelled lesions)."""
    notes = []
    zero = [r["method"] for r in rows if r["split"] == "test" and r.get("sensitivity") == 0
            and r["n_anomalous"] > 0]
    if zero:
        val = data.get("val", {})
        n_normal = int((val.get("y", np.zeros(0)) == 0).sum())
        n_anomalous = int((val.get("y", np.zeros(0)) == 1).sum())
        notes.append(
            f"Test sensitivity is 0.000 for {', '.join(zero)} at the threshold calibrated "
            f"on the val split's normal slices ({n_normal} normal, {n_anomalous} anomalous "
            "val slices): with few val normals the threshold is about their highest score, "
            "and scores of anomalous test slices stay below it (a val subject with a small "
            "lesion teaches the threshold nothing about lesions). AUROC/AUPRC do not depend "
            "on the threshold; the sensitivity does.")
    if synthetic:
        notes.append(
            "The anomalies in the val/test slices are synthetic (MOOD-style): seeded blobs "
            "with an intensity shift, noise texture or a local deformation inserted into "
            "healthy slices, each with its pixel mask. They say whether detection works, "
            "not how well lesions of a disease are found.")
    return notes


def filter_notes(points: dict[str, dict[str, Any]], candidates: list[int]) -> list[str]:
    """A note naming the median filter each method's pixel metrics used when the config
    lists candidates (chosen on the val split by pixel AUPRC, or stored with the model)."""
    if len(candidates) < 2:
        return []
    chosen = []
    for method, point in points.items():
        if point.get("pixel_threshold") is None:
            continue  # no pixel maps: no filter
        auprc = point.get("median_filter_val_pixel_auprc")
        detail = (" (val pixel AUPRC " + ", ".join(f"{k}: {v:.3f}" for k, v in auprc.items())
                  + ")") if auprc else " (stored with the model)"
        chosen.append(f"{method} {point['median_filter']}{detail}")
    return [f"Median filter chosen per method among {candidates} on the val split (never "
            f"test), the same rule for every method: {'; '.join(chosen)}."] if chosen else []


# whole-split metrics of metrics.tsv that are measurements (not counts or thresholds)
TIDY_METRICS = ("auroc", "auprc", "pixel_auroc", "pixel_auprc", "dice_at_val_threshold",
                "best_dice_upper_bound", "sensitivity", "specificity")


def write_tidy(path: Path, rows: list[dict[str, Any]], slices_by_subject: list[dict[str, Any]],
               pixel_by_subject: list[dict[str, Any]]) -> pd.DataFrame:
    """The anomaly evaluation's tidy table (``medgen.evaluate.tidy``): each method's
    whole-split metrics (unit 'all': slice- or image-level AUROC/AUPRC, pixel metrics,
    sensitivity/specificity at the val threshold) and its per-subject ones (unit
    'subject': slice-level AUROC/AUPRC within the subject, pixel metrics), as written to
    ``metrics.tsv``, ``slices_by_subject.tsv`` and ``pixel_by_subject.tsv``."""
    parts = [tidy.melt(pd.DataFrame(rows), "all", TIDY_METRICS)] if rows else []
    if slices_by_subject:
        parts.append(tidy.melt(pd.DataFrame(slices_by_subject), "subject", ["auroc", "auprc"],
                               unit="subject"))
    if pixel_by_subject:
        parts.append(tidy.melt(pd.DataFrame(pixel_by_subject), "subject",
                               ("pixel_auroc", "pixel_auprc", "dice_at_val_threshold",
                                "best_dice_upper_bound"), unit="subject"))
    return tidy.write(parts, path)
