"""Anomaly scoring in one harness, threshold calibration and metrics.

``score_anomalies`` runs any scorer (AnoGAN, f-AnoGAN, conv AE, PCA, or a trivial score)
over a prepared split and writes per-image scores (TSV), residual maps (.npz for metrics;
PNG per 2D image; NIfTI per subject, aligned to the input volume's grid). Models trained on
patches score whole slices through MONAI's sliding-window inferer (reconstructions stitched,
the per-window score averaged into a score map; slice score = its mean inside the mask).
``evaluate_anomaly`` computes image/slice-level AUROC/AUPRC, the threshold at a chosen
false-positive rate on held-out normals (val) with test sensitivity/specificity, and
pixel-level AUPRC / best Dice inside the mask (optionally after a median filter), pooled
and per subject.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgen import atomic, provenance
from medgen.data.imaging.prepare import load_split, save_npz
from medgen.errors import MedgenInputError
from medgen.evaluate import scorers

TRIVIAL = ("brightness", "mask_fraction", "intensity")
SLIDING_OVERLAP = 0.5  # windows overlap by half: every pixel seen by up to 4 windows
# the imaging.evaluation keys that scoring reads; the others (thresholds, metrics, figures,
# baselines) only change the evaluation, so they must not rerun scoring in the workflow
SCORING_KEYS = ("residual", "window_overlap", "anogan_window_overlap")


def _sliding(scorer, images: np.ndarray, overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """Stitched reconstruction and window-score map of images larger than the model."""
    from monai.inferers import SlidingWindowInferer

    size = scorer.image_size

    def predictor(window: torch.Tensor):
        # windows entirely outside the mask (all zero after preprocessing) are not scored:
        # reconstruction 0, score 0 (metrics only look inside the mask)
        recon = torch.zeros_like(window)
        score = torch.zeros(len(window))
        occupied = window.flatten(1).abs().amax(1) > 0
        if occupied.any():
            out = scorer.score(window[occupied].cpu().numpy())
            recon[occupied] = torch.as_tensor(out.reconstruction, dtype=recon.dtype)
            score[occupied] = torch.as_tensor(out.score, dtype=torch.float32)
        score_map = score[:, None, None, None].expand(len(window), 1, size, size)
        return recon, score_map.contiguous()

    inferer = SlidingWindowInferer(roi_size=(size, size), sw_batch_size=getattr(
        scorer, "batch_size", 256), overlap=overlap, mode="constant", progress=True)
    # one bar over windows, not one per window batch from scorers that have their own
    own_bar = getattr(scorer, "progress", None)
    if own_bar is not None:
        scorer.progress = False
    try:
        with torch.no_grad():
            recon, score_map = inferer(torch.as_tensor(images), predictor)
    finally:
        if own_bar is not None:
            scorer.progress = own_bar
    return np.asarray(recon), np.asarray(score_map)[:, 0]


def run_scorer(scorer, data: dict[str, np.ndarray], method: str,
               window_overlap: float = SLIDING_OVERLAP, residual: str = "abs"
               ) -> dict[str, np.ndarray]:
    """Per-image score, residual map (N, H, W) and reconstruction for one split."""
    images = data["images"]
    masks = data.get("masks")
    inside = masks.astype(bool) if masks is not None else np.ones(
        (len(images), *images.shape[-2:]), bool)
    count = np.maximum(inside.sum(axis=(1, 2)), 1)
    if method in TRIVIAL:
        if method == "brightness":
            stored = data.get("raw_images", images)  # as stored, before normalisation
            score = (stored.mean(axis=1) * inside).sum(axis=(1, 2)) / count
            return {"score": score, "residual_map": None}
        if method == "mask_fraction":
            if "mask_fraction" not in data:
                raise MedgenInputError("score 'mask_fraction' needs volume slices with masks")
            return {"score": data["mask_fraction"].astype(np.float64), "residual_map": None}
        intensity = images[:, 0] * inside  # the first modality (FLAIR) itself
        score = np.array([np.percentile(m[i], 99) if i.any() else 0.0
                          for m, i in zip(intensity, inside)])
        return {"score": score, "residual_map": intensity.astype(np.float32)}
    if images.shape[-1] == scorer.image_size:
        out = scorer.score(images)
        result = {"score": out.score, "reconstruction": out.reconstruction, **{
            f"term_{k}": v for k, v in out.terms.items()}}
        if out.steps is not None:
            result["steps"] = out.steps
    else:
        recon, score_map = _sliding(scorer, images, window_overlap)
        result = {"score": (score_map * inside).sum(axis=(1, 2)) / count,
                  "reconstruction": recon, "score_map": score_map.astype(np.float32)}
    difference = images - result["reconstruction"]
    difference = np.abs(difference) if residual == "abs" else np.clip(difference, 0, None)
    result["residual_map"] = (difference.mean(axis=1) * inside).astype(np.float32)
    return result


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _write_pngs(folder: Path, subjects: np.ndarray, maps: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    scale = float(np.percentile(maps, 99.9)) or 1.0
    for subject, residual in zip(subjects, maps):
        pixels = (np.clip(residual / scale, 0, 1) * 255).astype(np.uint8)
        with atomic.atomic_path(folder / f"{_safe(str(subject))}.png") as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")


def _write_niftis(folder: Path, data: dict[str, np.ndarray], maps: np.ndarray,
                  geometry: dict[str, Any]) -> None:
    """Slice maps -> one volume per subject in the cropped RAS grid -> input grid."""
    import nibabel as nib
    import nibabel.processing

    from medgen.data.imaging.readers import read_volume

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


def score_anomalies(
    method: str,
    model_path: str | os.PathLike | None,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str,
    geometry_path: str | os.PathLike | None = None,
    write_maps: bool = True,
    device: str = "cpu",
    window_overlap: float = SLIDING_OVERLAP,
    residual: str = "abs",
) -> Path:
    """Score one prepared split with one method; returns the scores TSV.

    Parameters
    ----------
    method
        A family ('anogan', 'fanogan', 'convae'), 'pca', or a trivial score
        ('brightness', 'mask_fraction', 'intensity', which need no model).
    model_path
        model.pt (families) or the PCA .npz; None for trivial scores.
    data_path
        A prepared ``val.npz`` / ``test.npz``.
    out_dir
        Writes ``scores_<split>.tsv``, ``maps_<split>.npz`` and residual maps under
        ``residuals_<split>/`` (PNG per 2D image; NIfTI per subject when ``geometry_path``,
        the prepared volumes.json, is given).
    window_overlap
        Overlap of sliding windows (patch-trained models on larger slices).
    residual
        'abs' |x - recon| or 'positive' max(x - recon, 0) for the residual maps.
    """
    out_dir = Path(out_dir)
    data = load_split(data_path)
    scorer = None if method in TRIVIAL else scorers.load_scorer(model_path, device)
    result = run_scorer(scorer, data, method, window_overlap, residual)
    n = len(data["images"])
    columns = {"subject": data["subject"], "index": data.get("index", np.arange(n)),
               "y": data["y"], "score": result["score"]}
    for key in ("mask_fraction", "anomaly_fraction"):
        if key in data:
            columns[key] = data[key]
    for key, value in result.items():
        if key.startswith("term_") or key == "steps":
            columns[key] = value
    tsv = out_dir / f"scores_{split}.tsv"
    with atomic.atomic_path(tsv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(columns)
        for i in range(n):
            writer.writerow([f"{columns[c][i]:.6g}" if isinstance(columns[c][i], np.floating)
                             else columns[c][i] for c in columns])
    if result.get("residual_map") is not None:
        save_npz(out_dir / f"maps_{split}.npz", {
            "residual_map": result["residual_map"].astype(np.float16),
            **({"reconstruction": result["reconstruction"].astype(np.float16)}
               if "reconstruction" in result else {}),
        })
        if write_maps:
            folder = out_dir / f"residuals_{split}"
            if geometry_path is not None:
                geometry = json.loads(Path(geometry_path).read_text())
                _write_niftis(folder, data, result["residual_map"], geometry)
            elif "masks" not in data:
                _write_pngs(folder, data["subject"], result["residual_map"])
    return tsv


def score_splits(
    method: str,
    model_path: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    evaluation: dict[str, Any],
    kind: str,
    device: str = "cpu",
) -> dict[str, Path]:
    """Score every prepared evaluation split (val, test) present in ``data_dir``.

    Volumes get their residual maps back on the input grid (volumes.json); AnoGAN scores
    whole slices with its own window overlap (mapping is slow, windows multiply it).
    ``device``: where trained networks run ('cpu', 'cuda'); see ``train.inference_device``.
    """
    data_dir = Path(data_dir)
    geometry = data_dir / "volumes.json"
    geometry = geometry if kind != "npz2d" and geometry.exists() else None
    overlap = evaluation["anogan_window_overlap" if method == "anogan" else "window_overlap"]
    written = {}
    for split in ("val", "test"):
        if (data_dir / f"{split}.npz").exists():
            written[split] = score_anomalies(
                method, model_path, data_dir / f"{split}.npz", out_dir, split,
                geometry_path=geometry, device=device, window_overlap=overlap,
                residual=evaluation["residual"],
            )
    return written


def read_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for k in out:
        if k != "subject":
            out[k] = out[k].astype(np.float64)
    return out


def calibrate_threshold(normal_scores: np.ndarray, false_positive_rate: float) -> float:
    """The score above which only ``false_positive_rate`` of held-out normals fall."""
    if len(normal_scores) == 0:
        raise MedgenInputError("threshold calibration needs held-out normal images (val y == 0)")
    return float(np.quantile(normal_scores, 1 - false_positive_rate, method="higher"))


def sensitivity_specificity(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    flagged = scores > threshold
    return {"threshold": threshold,
            "sensitivity": float(flagged[y == 1].mean()) if (y == 1).any() else float("nan"),
            "specificity": float((~flagged[y == 0]).mean()) if (y == 0).any() else float("nan")}


def image_metrics(scores: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    keep = y >= 0
    if len(np.unique(y[keep])) < 2:
        return {"auroc": float("nan"), "auprc": float("nan")}  # no anomalies: undefined
    return {"auroc": float(roc_auc_score(y[keep], scores[keep])),
            "auprc": float(average_precision_score(y[keep], scores[keep]))}


def image_covariates(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Brightness (mean), contrast (std) and sharpness (mean gradient magnitude) of each
    image inside its mask (first channel), as stored before normalisation."""
    images = data.get("raw_images", data["images"])[:, 0]
    inside = data["masks"].astype(bool) if "masks" in data else np.ones(images.shape, bool)
    count = np.maximum(inside.sum(axis=(1, 2)), 1)
    mean = (images * inside).sum(axis=(1, 2)) / count
    var = (((images - mean[:, None, None]) ** 2) * inside).sum(axis=(1, 2)) / count
    gy, gx = np.gradient(images, axis=(1, 2))
    sharpness = (np.hypot(gx, gy) * inside).sum(axis=(1, 2)) / count
    return {"brightness": mean, "contrast": np.sqrt(var), "sharpness": sharpness}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if np.std(a) > 0 and np.std(b) > 0 else float("nan")


def covariate_deviations(reference: dict[str, np.ndarray], values: dict[str, np.ndarray]
                         ) -> dict[str, np.ndarray]:
    """Trivial two-sided anomaly scores: how far an image's brightness, contrast or sharpness
    lies from the training normals', in robust z units (|x - median| / MAD). They need no
    label knowledge (no direction), like the models."""
    out = {}
    for name, ref in reference.items():
        median = np.median(ref)
        mad = max(float(np.median(np.abs(ref - median))), 1e-12)
        out[f"{name}_deviation"] = np.abs(values[name] - median) / mad
    return out


def pixel_metrics(maps: np.ndarray, labels: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """AUPRC and best Dice (one global threshold) of anomaly maps inside the mask."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    inside = masks.astype(bool)
    truth = labels[inside] > 0
    values = maps[inside].astype(np.float32)
    if not truth.any():
        return {"pixel_auprc": float("nan"), "best_dice": float("nan")}
    precision, recall, _ = precision_recall_curve(truth, values)
    dice = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {"pixel_auprc": float(average_precision_score(truth, values)),
            "best_dice": float(dice.max())}


def median_filter_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """Each 2D map through a size x size median filter (0 or 1: unchanged). The usual
    post-processing of residual maps (Baur et al. 2021): it removes isolated bright pixels,
    and is applied to every method alike, the intensity bar included."""
    if size <= 1:
        return maps
    from scipy.ndimage import median_filter

    return median_filter(maps.astype(np.float32), size=(1, size, size), mode="nearest")


def pixel_intensity_rho(maps: np.ndarray, images: np.ndarray, masks: np.ndarray) -> float:
    """Rank correlation, inside the mask, of anomaly maps with the first modality's intensity:
    what a map responds to (near 1: the intensity bar in disguise)."""
    inside = masks.astype(bool)
    return spearman(maps[inside].astype(np.float32), images[:, 0][inside])


def pixel_metrics_by_subject(maps: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                             subjects: np.ndarray) -> list[dict[str, Any]]:
    """``pixel_metrics`` of each subject's slices on their own (each with its best threshold):
    one pooled number can hide a subject where a method fails."""
    return [{"subject": str(name),
             **pixel_metrics(maps[subjects == name], labels[subjects == name],
                             masks[subjects == name])}
            for name in dict.fromkeys(subjects)]


def _write_table(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = ()) -> None:
    columns = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    lines = ["\t".join(columns)] + [
        "\t".join(f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, ""))
                  for c in columns) for r in rows]
    atomic.write_text(path, "\n".join(lines) + "\n")


def evaluate_anomaly(
    score_dirs: dict[str, str | os.PathLike],
    data_dir: str | os.PathLike,
    imaging_cfg: dict[str, Any],
    out_dir: str | os.PathLike,
    seed: int = 0,
) -> Path:
    """Metrics table (TSV + JSON), ROC curves, histograms and image grids for every method.

    ``score_dirs`` maps a method name to the folder ``score_anomalies`` wrote. Val and test
    are both evaluated where present; the threshold comes from val normals.
    """
    from medgen.report.anomaly_figures import histograms, roc_curves, residual_grid

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
    train_path = data_dir / "train.npz"
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
        roc_curves(out_dir / f"roc_{s}.png", curves[s], f"ROC, {s} split")
        histograms(out_dir / f"hist_{s}.png", curves[s], f"scores, {s} split")
    _write_table(out_dir / "metrics.tsv", rows)
    if ev["pixel_level"]:  # header only when no split has tumour masks
        _write_table(out_dir / "pixel_by_subject.tsv", by_subject,
                     ("method", "split", "subject", "pixel_auprc", "best_dice"))
    atomic.write_json(out_dir / "metrics.json", {
        "metrics": rows,
        "pixel_by_subject": by_subject,
        "provenance": provenance.collect({"imaging": imaging_cfg}, seed,
                                         [data_dir / f"{s}.npz" for s in splits]),
    })
    return out_dir / "metrics.tsv"
