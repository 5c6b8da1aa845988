"""Reconstruction error of held-out expression scaled to [0, 1].

BCE of continuous targets is not zero for a perfect reconstruction: its floor is the
entropy of the targets themselves, BCE(x, x). ``bce_above_floor`` = BCE(x, x_hat) - BCE(x, x)
(the mean Bernoulli KL divergence) is 0 exactly when x_hat == x, so it compares methods on
an interpretable scale.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7  # clip probabilities as Keras' binary_crossentropy did; also keeps PCA/ICA finite


def mse(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Mean squared error per gene-value (reconstructions unclipped)."""
    return float(np.mean((np.asarray(x, np.float64) - np.asarray(x_hat, np.float64)) ** 2))


def bce(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Mean binary cross-entropy per gene-value; x_hat clipped to [EPS, 1 - EPS]."""
    x = np.asarray(x, np.float64)
    p = np.clip(np.asarray(x_hat, np.float64), EPS, 1.0 - EPS)
    return float(np.mean(-(x * np.log(p) + (1.0 - x) * np.log1p(-p))))


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    """MSE, BCE, its floor BCE(x, x) and BCE above the floor."""
    floor = bce(x, x)
    value = bce(x, x_hat)
    return {
        "test_mse": mse(x, x_hat),
        "test_bce": value,
        "test_bce_floor": floor,
        "test_bce_above_floor": value - floor,
    }
