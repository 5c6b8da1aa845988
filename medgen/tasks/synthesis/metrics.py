"""Image-synthesis metrics inside the brain/body mask, per subject.

MAE, PSNR and SSIM (3D) as in Nie et al. 2017 and the BraSyn challenge (Li et al. 2023),
computed on the in-mask voxels only: whole-volume SSIM is inflated by the background (a
constant prediction scores 0.87 on BraTS). Plus an edge-sharpness error (the mean absolute
difference of the image gradients, which the GDL term targets) and SSIM inside and outside
the tumour (BraTS seg > 0), as BraSyn reports.

All metrics take volumes on one scale: the target's normalised scale for MR, Hounsfield
units for CT (MAE then in HU).

Voxels outside a resampled target's field of view (``coverage`` 0) are left out of every
metric. A metric a volume is too small for is NaN, never an error (``metric_notes`` says
which and why): SSIM needs ``SSIM_KERNEL`` voxels along every axis (a 64x64x3 volume has
no SSIM), the gradient error 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.metrics import MAEMetric, PSNRMetric
from monai.metrics.regression import compute_ssim_and_cs

from medgen.errors import MedgenInputError

SSIM_KERNEL = 7  # voxels; Gaussian window (sigma 1.5) of the 3D SSIM
SSIM_SIGMA = 1.5


def _t(volume: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(volume, np.float32))[None, None]


def ssim_map(pred: np.ndarray, target: np.ndarray, data_range: float) -> np.ndarray:
    """Local 3D SSIM (Wang et al. 2004) of two (X, Y, Z) volumes, MONAI's
    ``compute_ssim_and_cs`` with a Gaussian window; zero-padded back to (X, Y, Z) (the map
    loses kernel // 2 voxels per side, which the masks below exclude)."""
    values, _ = compute_ssim_and_cs(_t(pred), _t(target), spatial_dims=3,
                                    kernel_size=[SSIM_KERNEL] * 3,
                                    kernel_sigma=[SSIM_SIGMA] * 3, data_range=data_range)
    h = SSIM_KERNEL // 2
    out = np.zeros(np.shape(pred), np.float32)
    out[h:-h, h:-h, h:-h] = values[0, 0].numpy()
    return out


def _interior(mask: np.ndarray) -> np.ndarray:
    h = SSIM_KERNEL // 2
    inner = np.zeros_like(mask, dtype=bool)
    inner[h:-h, h:-h, h:-h] = True
    return mask & inner


def _eroded(covered: np.ndarray, radius: int) -> np.ndarray:
    """Voxels whose (2 radius + 1)^3 neighbourhood is all covered: windows that see no
    voxel outside the target's field of view."""
    from scipy.ndimage import minimum_filter

    return minimum_filter(covered.astype(np.uint8), size=2 * radius + 1, mode="nearest") > 0


def metric_notes(shape: tuple[int, ...]) -> dict[str, str]:
    """Metric name -> why it is NaN for a volume of ``shape`` (X, Y, Z); empty when every
    metric can be computed."""
    notes = {}
    if min(shape) < SSIM_KERNEL:
        why = (f"the volume {tuple(shape)} is thinner than the {SSIM_KERNEL}-voxel SSIM "
               "window on some axis")
        notes.update({name: why for name in ("ssim", "ssim_tumour", "ssim_non_tumour")})
    if min(shape) < 2:
        notes["gradient_error"] = (f"the volume {tuple(shape)} has a single voxel along some "
                                   "axis: no image gradient")
    return notes


def gradient_error(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean over in-mask voxels and the three axes of |d pred - d target| (central
    differences, ``np.gradient``; units of intensity per voxel); NaN for a volume with a
    single voxel along an axis or an empty ``mask``."""
    if min(np.shape(pred)) < 2 or not np.any(mask):
        return float("nan")
    errors = [np.abs(gp - gt)[mask] for gp, gt in zip(np.gradient(pred), np.gradient(target))]
    return float(np.mean(errors))


def synthesis_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray,
                      label: np.ndarray | None = None,
                      data_range: float | None = None,
                      coverage: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics of one synthetic volume against its target.

    Parameters
    ----------
    pred, target
        (X, Y, Z) on one scale.
    mask
        (X, Y, Z) brain/body mask: every metric looks inside it only.
    label
        (X, Y, Z) tumour labels (> 0 in the tumour), or None.
    data_range
        Peak of PSNR and the SSIM constants; default: the target's in-mask range
        (max - min), as scikit-image and BraSyn take it.
    coverage
        (X, Y, Z), 0 outside a resampled target's field of view: those voxels are left out
        (SSIM and gradient also leave out voxels whose window reaches them).

    Returns
    -------
    dict
        ``mae``, ``psnr`` (dB), ``ssim`` (in-mask mean of the local SSIM), ``gradient_error``,
        ``ssim_tumour`` / ``ssim_non_tumour`` (NaN without a label or tumour voxels),
        ``data_range``, ``n_voxels`` (the in-mask voxels scored) and ``n_excluded`` (in-mask
        voxels outside the target's field of view). SSIM and gradient error are NaN when
        the volume is too thin for them (``metric_notes`` says why).

    Raises
    ------
    MedgenInputError
        No in-mask voxel inside the target's field of view.
    """
    mask = np.asarray(mask) != 0
    pred, target = np.asarray(pred, np.float32), np.asarray(target, np.float32)
    n_mask = int(mask.sum())
    covered = None if coverage is None else np.asarray(coverage) != 0
    if covered is not None:
        mask = mask & covered
    if not mask.any():
        raise MedgenInputError(
            "synthesis metrics: no voxel of the mask lies inside the target's field of view")
    inside_t = torch.as_tensor(target[mask])[None, None]
    inside_p = torch.as_tensor(pred[mask])[None, None]
    if data_range is None:
        data_range = float(target[mask].max() - target[mask].min()) or 1.0
    mae = float(MAEMetric()(inside_p, inside_t).item())
    psnr = float(PSNRMetric(max_val=data_range)(inside_p, inside_t).item())
    notes = metric_notes(pred.shape)
    ssim_mask, gradient_mask = mask, mask
    if covered is not None:
        ssim_mask = mask & _eroded(covered, SSIM_KERNEL // 2)
        gradient_mask = mask & _eroded(covered, 1)
    out = {"mae": mae, "psnr": psnr, "ssim": float("nan"),
           "gradient_error": (float("nan") if "gradient_error" in notes
                              else gradient_error(pred, target, gradient_mask)),
           "ssim_tumour": float("nan"), "ssim_non_tumour": float("nan"),
           "data_range": data_range, "n_voxels": int(mask.sum()),
           "n_excluded": n_mask - int(mask.sum())}
    if "ssim" in notes:
        return out
    local = ssim_map(pred, target, data_range)
    where = _interior(ssim_mask)
    if where.any():
        out["ssim"] = float(local[where].mean())
    if label is not None:
        tumour = where & (np.asarray(label) > 0)
        healthy = where & (np.asarray(label) <= 0)
        if tumour.any():
            out["ssim_tumour"] = float(local[tumour].mean())
        if healthy.any():
            out["ssim_non_tumour"] = float(local[healthy].mean())
    return out
