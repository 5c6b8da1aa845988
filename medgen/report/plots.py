"""What every task's figures share: a PNG written atomically and identically on reruns,
Lightning's CSV training log read as one row per epoch, and real vs synthetic samples in a
training PCA (the synthetic-data evaluations of the expression and anomaly tasks)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch jobs have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.atomic import atomic_path  # noqa: E402
from medgen.errors import MedgenInputError  # noqa: E402


def save_png(fig: plt.Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` to ``path`` as PNG (110 dpi) through a temporary file and close it.

    No version or date stamp in the metadata, so a rerun writes a byte-identical file.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight",
                    metadata={"Software": None})
    plt.close(fig)


def per_epoch(metrics_csv: str | os.PathLike) -> pd.DataFrame:
    """Lightning's CSV log (``metrics.csv``: train and val rows of an epoch apart) as one
    row per epoch (mean of the numeric columns), indexed by epoch.

    Raises
    ------
    MedgenInputError
        The file does not exist or has no ``epoch`` column.
    """
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.exists():
        raise MedgenInputError(f"training metrics {metrics_csv} do not exist")
    table = pd.read_csv(metrics_csv)
    if "epoch" not in table:
        raise MedgenInputError(f"{metrics_csv} has no 'epoch' column")
    return table.groupby("epoch").mean(numeric_only=True)


def synthetic_pca(held_out: np.ndarray, synthetic: dict[str, np.ndarray], embedding,
                  path: str | os.PathLike, title: str) -> None:
    """Held-out (grey) and each method's synthetic samples (profiles, flattened images) on
    the first two components of ``embedding``, the PCA fitted on the training split; one
    panel per method.

    ``held_out`` (h, p) and ``synthetic`` (method -> (m, p)) in the training data's units.
    """
    real = np.asarray(embedding.transform(held_out))[:, :2]
    fig, axes = plt.subplots(1, len(synthetic), figsize=(3.3 * len(synthetic), 3.0),
                             squeeze=False)
    for ax, (method, x) in zip(axes[0], synthetic.items()):
        points = np.asarray(embedding.transform(x))[:, :2]
        ax.scatter(real[:, 0], real[:, 1], s=5, c="0.6", label="held-out (real)")
        ax.scatter(points[:, 0], points[:, 1], s=5, c="tab:orange", alpha=0.7, label=method)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("PC1 (training PCA)")
        ax.set_ylabel("PC2")
        ax.legend(fontsize=7, markerscale=2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_png(fig, path)
