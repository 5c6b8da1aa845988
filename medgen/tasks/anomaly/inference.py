"""Anomaly scoring in one harness: any scorer over a prepared split.

``score_anomalies`` runs any scorer (AnoGAN, f-AnoGAN, conv AE, PCA, or a trivial score)
over a prepared split and writes per-image scores (TSV), residual maps (.npz for metrics;
PNG per 2D image; NIfTI per subject, aligned to the input volume's grid). Models trained on
patches score whole slices through MONAI's sliding-window inferer (reconstructions stitched,
the per-window score averaged into a score map; slice score = its mean inside the mask).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.inferers import SlidingWindowInferer

from medgen.atomic import save_npz
from medgen.errors import MedgenInputError
from medgen.progress import show_progress
from medgen.tasks.anomaly.methods import TRIVIAL
from medgen.tasks.anomaly.outputs import write_niftis, write_pngs, write_scores
from medgen.tasks.anomaly.prepare import load_split, prepared_modalities
from medgen.tasks.anomaly.scorers import load_scorer

log = logging.getLogger(__name__)
LOG_EVERY_S = 60.0  # seconds between progress lines in a job's log (no bar there)
SLIDING_OVERLAP = 0.5  # windows overlap by half: every pixel seen by up to 4 windows
# even weights: 'gaussian' scored the demo's val slices lower (README, imaging demo)
WINDOW_BLEND = "constant"


def _windows_per_image(shape: tuple[int, int], size: int, overlap: float) -> int:
    """How many size x size windows MONAI's sliding-window inferer places on one image of
    ``shape`` (H, W) at ``overlap`` (for progress lines; its own scan-interval rule)."""
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    image, roi = tuple(int(n) for n in shape), (size, size)
    interval = _get_scan_interval(image, roi, 2, (overlap, overlap))
    return len(dense_patch_slices(image, roi, interval))


def _sliding(scorer, images: np.ndarray, overlap: float,
             blend: str = WINDOW_BLEND) -> tuple[np.ndarray, np.ndarray]:
    """Stitched reconstruction and window-score map of images larger than the model.

    ``blend`` is MONAI's ``SlidingWindowInferer`` mode: 'constant' averages the windows
    evenly (a step wherever the number of overlapping windows changes); 'gaussian' weights
    each window's centre over its edges, where its network sees the least context."""
    size = scorer.image_size
    bar = show_progress()
    # without a bar (a job's log file) a line every LOG_EVERY_S: AnoGAN's latent mapping
    # can take many minutes a split, which a silent log cannot tell from a hung job
    done = {"windows": 0, "logged": time.monotonic()}
    total = len(images) * _windows_per_image(images.shape[-2:], size, overlap)

    def predictor(window: torch.Tensor):
        # windows entirely outside the mask (all zero after preprocessing) are not scored:
        # reconstruction 0, score 0 (metrics only look inside the mask)
        done["windows"] += len(window)
        if not bar and time.monotonic() - done["logged"] >= LOG_EVERY_S:
            done["logged"] = time.monotonic()
            log.info("sliding-window scoring: about %d of %d windows (%d images) so far",
                     done["windows"], total, len(images))
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
        scorer, "batch_size", 256), overlap=overlap, mode=blend, progress=bar)
    # one bar over windows, not one per window batch from scorers that have their own
    has_bar = hasattr(scorer, "progress")
    own_bar = getattr(scorer, "progress", None)
    if has_bar:
        scorer.progress = False
    try:
        with torch.no_grad():
            recon, score_map = inferer(torch.as_tensor(images), predictor)
    finally:
        if has_bar:
            scorer.progress = own_bar
    return np.asarray(recon), np.asarray(score_map)[:, 0]


def run_scorer(scorer, data: dict[str, np.ndarray], method: str,
               window_overlap: float = SLIDING_OVERLAP, residual: str = "abs",
               slice_score: str = "mean", window_blend: str = WINDOW_BLEND,
               ) -> dict[str, np.ndarray]:
    """Per-image score, residual map (N, H, W) and reconstruction for one split.
    ``slice_score``: a slice scored through sliding windows gets the mean ('mean') or the
    largest ('max') window score inside its mask; ``window_blend``: 'constant' or 'gaussian'
    (``_sliding``)."""
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
        recon, score_map = _sliding(scorer, images, window_overlap, window_blend)
        if slice_score == "max":  # one anomalous window is enough: local lesions
            slice_scores = np.where(inside, score_map, -np.inf).max(axis=(1, 2))
            slice_scores = np.where(np.isfinite(slice_scores), slice_scores, 0.0)
        else:
            slice_scores = (score_map * inside).sum(axis=(1, 2)) / count
        result = {"score": slice_scores,
                  "reconstruction": recon, "score_map": score_map.astype(np.float32)}
    difference = images - result["reconstruction"]
    difference = np.abs(difference) if residual == "abs" else np.clip(difference, 0, None)
    result["residual_map"] = (difference.mean(axis=1) * inside).astype(np.float32)
    return result


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
    slice_score: str = "mean",
    window_blend: str = WINDOW_BLEND,
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
    slice_score
        'mean' or 'max' of the window scores inside a slice's mask (sliding windows only).
    window_blend
        'constant' or 'gaussian' weights of overlapping windows (sliding windows only).
    """
    out_dir = Path(out_dir)
    data = load_split(data_path)
    signature = {"channels": int(data["images"].shape[1])}
    modalities = prepared_modalities(Path(data_path).parent)
    if modalities is not None:
        signature["modalities"] = modalities
    scorer = None if method in TRIVIAL else load_scorer(model_path, device, signature)
    result = run_scorer(scorer, data, method, window_overlap, residual, slice_score,
                        window_blend)
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
    write_scores(tsv, columns)
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
                write_niftis(folder, data, result["residual_map"], geometry)
            elif "masks" not in data:
                write_pngs(folder, data["subject"], result["residual_map"])
    return tsv


def score_splits(
    method: str,
    model_path: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    scoring: dict[str, Any],
    kind: str,
    device: str = "cpu",
) -> dict[str, Path]:
    """Score every prepared evaluation split (val, test) present in ``data_dir``.

    ``scoring`` is the resolved ``anomaly.scoring`` config section (residual, window
    overlaps, slice score, window blend; the schema fills their defaults).
    Volumes get their residual maps back on the input grid (volumes.json); a method may
    score with its own window overlap (AnoGAN: mapping is slow, windows multiply it).
    ``device``: where trained networks run ('cpu', 'cuda'); see ``train.inference_device``.
    """
    data_dir = Path(data_dir)
    geometry = data_dir / "volumes.json"
    geometry = geometry if kind != "npz2d" and geometry.exists() else None
    overlap = scoring["window_overlap_by_method"].get(method, scoring["window_overlap"])
    written = {}
    for split in ("val", "test"):
        if (data_dir / f"{split}.npz").exists():
            written[split] = score_anomalies(
                method, model_path, data_dir / f"{split}.npz", out_dir, split,
                geometry_path=geometry, device=device, window_overlap=overlap,
                residual=scoring["residual"], slice_score=scoring["slice_score"],
                window_blend=scoring["window_blend"],
            )
    return written
