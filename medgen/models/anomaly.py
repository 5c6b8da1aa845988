"""The anomaly task's model interface: what every anomaly family's inference object returns.

A scorer maps images in [0, 1], (N, C, S, S), to per-image scores, named score terms and
reconstructions in [0, 1]. Families (``medgen.models.<name>.module``) implement it; the
anomaly task (``medgen.tasks.anomaly``) scores with every scorer, baselines included, the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Scores:
    """Per-image outputs of a scorer (numpy).

    Attributes
    ----------
    score
        (N,) anomaly score, higher = more anomalous.
    terms
        Named parts of the score, each (N,) (e.g. 'residual', 'discrimination').
    reconstruction
        (N, C, S, S) reconstruction in [0, 1].
    steps
        (N,) optimisation steps taken per image (AnoGAN's latent mapping), else None.
    """

    score: np.ndarray
    terms: dict[str, np.ndarray]
    reconstruction: np.ndarray
    steps: np.ndarray | None = None


def geometry_of(checkpoint_data: dict) -> tuple[int, int, int]:
    """(channels, image_size, spatial_dims) from a checkpoint's data signature."""
    return (int(checkpoint_data["channels"]), int(checkpoint_data["image_size"]),
            int(checkpoint_data.get("spatial_dims", 2)))
