"""Metrics of anomaly scores and maps: threshold calibration, image-level AUROC/AUPRC,
sensitivity/specificity, what scores respond to (image covariates, rank correlations) and
pixel-level AUPRC / best Dice inside the mask, pooled and per subject.

Pure functions of arrays. sklearn and scipy are imported inside the functions that use them,
so importing the metrics alone (benchmarks do) stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medgen.errors import MedgenInputError


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


def best_dice_threshold(maps: np.ndarray, labels: np.ndarray, masks: np.ndarray
                        ) -> tuple[float, float]:
    """(threshold, Dice) of the one global threshold that maximises Dice of ``maps > t``
    against ``labels`` inside the mask ((nan, nan) without labelled pixels)."""
    from sklearn.metrics import precision_recall_curve

    inside = masks.astype(bool)
    truth = labels[inside] > 0
    if not truth.any():
        return float("nan"), float("nan")
    precision, recall, thresholds = precision_recall_curve(truth, maps[inside].astype(np.float32))
    dice = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(dice[:-1])) if len(thresholds) else 0  # last point has no threshold
    # precision_recall_curve flags scores >= threshold; our segmentation is maps > t
    return float(np.nextafter(np.float32(thresholds[best]), np.float32(-np.inf))), \
        float(dice[best])


def dice_at(maps: np.ndarray, labels: np.ndarray, masks: np.ndarray, threshold: float
            ) -> float:
    """Dice of ``maps > threshold`` against ``labels`` inside the mask."""
    inside = masks.astype(bool)
    truth = labels[inside] > 0
    if not truth.any() or not np.isfinite(threshold):
        return float("nan")
    flagged = maps[inside] > threshold
    return float(2 * (flagged & truth).sum() / max(flagged.sum() + truth.sum(), 1))


def pixel_metrics(maps: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                  threshold: float | None = None) -> dict[str, float]:
    """Pixel-level metrics of anomaly maps inside the mask.

    ``pixel_auroc``, ``pixel_auprc``; ``dice_at_val_threshold``: Dice at ``threshold`` (the
    one chosen on the validation split: what a user would deploy; NaN when None);
    ``best_dice_upper_bound``: Dice at the best threshold for these very labels, an upper
    bound that peeks at the evaluated labels, never an achievable number.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    inside = masks.astype(bool)
    truth = labels[inside] > 0
    values = maps[inside].astype(np.float32)
    if not truth.any() or truth.all():
        return {"pixel_auroc": float("nan"), "pixel_auprc": float("nan"),
                "dice_at_val_threshold": float("nan"), "best_dice_upper_bound": float("nan")}
    return {"pixel_auroc": float(roc_auc_score(truth, values)),
            "pixel_auprc": float(average_precision_score(truth, values)),
            "dice_at_val_threshold": dice_at(maps, labels, masks, threshold)
            if threshold is not None else float("nan"),
            "best_dice_upper_bound": best_dice_threshold(maps, labels, masks)[1]}


def median_filter_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """Each 2D map through a size x size median filter (0 or 1: unchanged). The usual
    post-processing of residual maps (Baur et al. 2021): it removes isolated bright pixels,
    and is applied to every method alike, the intensity bar included."""
    if size <= 1:
        return maps
    from scipy.ndimage import median_filter

    return median_filter(maps.astype(np.float32), size=(1, size, size), mode="nearest")


def filter_candidates(setting: int | list[int]) -> list[int]:
    """The median-filter sizes a config's ``anomaly.evaluation.median_filter`` names: one
    size (``[size]``) or the candidates to choose among on the val split."""
    return [int(s) for s in setting] if isinstance(setting, list) else [int(setting)]


def choose_median_filter(raw_maps: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                         candidates: list[int]) -> tuple[int, dict[int, float]]:
    """The median-filter size, among ``candidates``, whose filtered maps have the highest
    pixel AUPRC inside the mask on these (val) labels; ties go to the smaller window.

    ``raw_maps``, ``labels``, ``masks``: (N, H, W) unfiltered residual maps, lesion labels
    (> 0 anomalous) and the mask. Returns ``(size, {size: val pixel AUPRC})``. The choice
    is made on validation data, never on test (issue 29: the filter used to be justified by
    test numbers). A single candidate is returned as is (its AUPRC still computed).
    """
    from sklearn.metrics import average_precision_score

    inside = masks.astype(bool)
    truth = labels[inside] > 0
    scores = {size: float(average_precision_score(
        truth, median_filter_maps(raw_maps, size)[inside].astype(np.float32)))
        for size in sorted(set(candidates))}
    best = max(scores, key=lambda size: (scores[size], -size))
    return best, scores


def pixel_intensity_rho(maps: np.ndarray, images: np.ndarray, masks: np.ndarray) -> float:
    """Rank correlation, inside the mask, of anomaly maps with the first modality's intensity:
    what a map responds to (near 1: the intensity bar in disguise)."""
    inside = masks.astype(bool)
    return spearman(maps[inside].astype(np.float32), images[:, 0][inside])


def pixel_metrics_by_subject(maps: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                             subjects: np.ndarray, threshold: float | None = None
                             ) -> list[dict[str, Any]]:
    """``pixel_metrics`` of each subject's slices on their own (the val threshold, and each
    subject's own best-Dice upper bound): one pooled number can hide a subject where a
    method fails."""
    return [{"subject": str(name),
             **pixel_metrics(maps[subjects == name], labels[subjects == name],
                             masks[subjects == name], threshold)}
            for name in dict.fromkeys(subjects)]


def image_metrics_by_subject(scores: np.ndarray, y: np.ndarray, subjects: np.ndarray
                             ) -> list[dict[str, Any]]:
    """Slice-level AUROC/AUPRC of each subject's slices on their own (NaN for a subject
    whose slices are all of one class), with its slice counts."""
    return [{"subject": str(name), "n_normal": int((y[subjects == name] == 0).sum()),
             "n_anomalous": int((y[subjects == name] == 1).sum()),
             **image_metrics(scores[subjects == name], y[subjects == name])}
            for name in dict.fromkeys(subjects)]
