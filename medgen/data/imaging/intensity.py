"""Invertible intensity normalisation of one volume (or 2D image) inside its brain/body mask:
the one normaliser of the anomaly and synthesis tasks (their ``normalisation`` config key
names one of ``METHODS``, or 'none' for the anomaly task), after Nie et al., MICCAI 2017 and
the BraSyn challenge protocol (Li et al. 2023).

The same three functions are used when preparing training data, at inference and in the
evaluation: ``fit`` measures the parameters on one volume (in-mask voxels only),
``apply`` maps raw intensities to the network's scale and ``invert`` maps network outputs
back (Hounsfield units for 'ct_window'). The parameters are plain floats, stored per volume
in the prepared data and with every synthetic volume, so outputs can always be inverted.

Methods
-------
percentile
    clip to the in-mask lower and upper percentiles (default 1 and 99), scale to [0, 1]:
    the anomaly task's default.
p99
    x / q99 (q99: in-mask 99th percentile), not clipped: what the issue's baselines used.
brasyn
    clip to the in-mask 0.5 and 99.5 percentiles, scale to [0, 1] (BraSyn protocol).
zscore
    (x - mean) / std of the in-mask voxels.
ct_window
    (HU - low) / (high - low) for a fixed Hounsfield window, clipped to it: the same for
    every volume, so a synthetic CT inverts to Hounsfield units without its ground truth.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from monai.transforms import NormalizeIntensity, ScaleIntensityRange

from medgen.errors import MedgenInputError

Method = Literal["percentile", "p99", "brasyn", "zscore", "ct_window"]
METHODS: tuple[str, ...] = ("percentile", "p99", "brasyn", "zscore", "ct_window")
PERCENTILES = (1.0, 99.0)  # 'percentile': the clip percentiles unless given
MIN_RANGE = 1e-6  # a near-constant image scales by this (allow_constant), not by ~0
CT_WINDOW = (-1024.0, 3071.0)  # HU: air to dense bone, the 12-bit CT range
MAX_QUANTILE_VOXELS = 2_000_000  # torch.quantile's input limit is 16M; a subsample suffices


def _quantiles(values: torch.Tensor, q: list[float]) -> list[float]:
    step = max(1, values.numel() // MAX_QUANTILE_VOXELS)
    out = torch.quantile(values[::step].double(), torch.tensor(q, dtype=torch.float64))
    return [float(v) for v in out]


def fit(volume: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor, method: str,
        ct_window: tuple[float, float] | list[float] = CT_WINDOW,
        percentiles: tuple[float, float] | list[float] = PERCENTILES,
        allow_constant: bool = False) -> dict[str, Any]:
    """Normalisation parameters of one volume, measured inside ``mask``.

    Parameters
    ----------
    volume
        One channel (X, Y, Z) in scanner units (MR: arbitrary; CT: Hounsfield units).
    mask
        (X, Y, Z), nonzero inside the brain/body; must not be empty.
    method
        One of ``METHODS`` (module docstring).
    ct_window
        (low, high) in HU for 'ct_window'.
    percentiles
        (lower, upper) clip percentiles in [0, 100] for 'percentile'.
    allow_constant
        A volume (nearly) constant inside the mask: ``high`` becomes ``low + MIN_RANGE``
        instead of an error (the anomaly task scales every image, blank ones included).

    Returns
    -------
    dict
        {'method', 'low', 'high'} (the raw values mapped to 0 and 1), 'clip' (bool), and
        'background' (what ``invert`` writes outside the mask: 0, or ``low`` for CT).

    Raises
    ------
    MedgenInputError
        Unknown method, an empty mask, a volume constant inside the mask, or for 'p99' a
        99th percentile <= 0 inside the mask. The message names no file: callers add it.
    """
    if method not in METHODS:
        raise MedgenInputError(
            f"intensity normalisation {method!r} is unknown; one of: {', '.join(METHODS)}")
    values = torch.as_tensor(np.asarray(volume))[torch.as_tensor(np.asarray(mask)) != 0]
    if values.numel() == 0:
        raise MedgenInputError("intensity normalisation: the mask is empty")
    values = values.double()
    clip, background = True, 0.0
    if method == "ct_window":
        low, high = float(ct_window[0]), float(ct_window[1])
        background = low
    elif method == "p99":
        low, high = 0.0, _quantiles(values, [0.99])[0]
        clip = False  # bright lesions above q99 must stay above 1, not saturate
        if not high > 0:  # dividing by it would flip or blow up the intensities
            raise MedgenInputError(
                f"intensity normalisation 'p99' needs a positive 99th percentile inside the "
                f"mask, got {high:.4g} (no positive intensities: a CT in Hounsfield units, "
                "or an inverted image?); use 'ct_window' for CT, or 'zscore'")
    elif method == "brasyn":
        low, high = _quantiles(values, [0.005, 0.995])
    elif method == "percentile":
        low, high = _quantiles(values, [percentiles[0] / 100, percentiles[1] / 100])
    else:  # zscore: 'low' is the mean, 'high' the mean + one standard deviation
        mean, std = float(values.mean()), float(values.std())
        low, high, clip = mean, mean + std, False
    if allow_constant and not high - low >= MIN_RANGE:
        high = low + MIN_RANGE
    if not high > low:
        raise MedgenInputError(
            f"intensity normalisation {method!r}: the volume is constant inside the mask "
            f"({low:.4g}); nothing to scale")
    return {"method": method, "low": low, "high": high, "clip": clip,
            "background": background}


def apply(volume: np.ndarray | torch.Tensor, params: dict[str, Any],
          mask: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Raw intensities -> network scale with ``params`` (from ``fit``); 0 outside ``mask``.

    Returns float32 with the shape of ``volume``. MONAI's ``ScaleIntensityRange`` for the
    range methods, ``NormalizeIntensity`` for 'zscore'.
    """
    x = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    low, high = params["low"], params["high"]
    if params["method"] == "zscore":
        out = NormalizeIntensity(subtrahend=low, divisor=high - low)(x)
    else:
        out = ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0,
                                  clip=params["clip"])(x)
    out = np.asarray(out, dtype=np.float32)
    if mask is not None:
        out = np.where(np.asarray(mask) != 0, out, 0.0).astype(np.float32)
    return out


def invert(volume: np.ndarray | torch.Tensor, params: dict[str, Any],
           mask: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Network scale -> raw intensities (HU for 'ct_window'); ``params['background']``
    outside ``mask``. Clipped methods give values inside [low, high]."""
    y = np.asarray(volume, dtype=np.float64)
    if params["clip"]:
        y = np.clip(y, 0.0, 1.0)
    out = params["low"] + y * (params["high"] - params["low"])
    if mask is not None:
        out = np.where(np.asarray(mask) != 0, out, params["background"])
    return out.astype(np.float32)
