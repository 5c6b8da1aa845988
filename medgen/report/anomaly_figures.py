"""Figures of the anomaly evaluation: ROC curves, score histograms, image grids.

Figures only: values (scores, labels, which methods need no model) are passed in.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medgen import atomic  # noqa: E402


def _save(fig, path: Path) -> None:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight",
                    metadata={"Software": None})  # no version stamp: reruns are identical
    plt.close(fig)


def roc_curves(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str,
               model_free: Collection[str] = ()) -> None:
    """One ROC curve per method (AUROC in the legend); ``model_free`` methods drawn dashed."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for method, (score, y) in curves.items():
        keep = y >= 0
        if len(np.unique(y[keep])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[keep], score[keep])
        ax.plot(fpr, tpr, ls="--" if method in model_free else "-",
                label=f"{method} ({roc_auc_score(y[keep], score[keep]):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="chance")
    ax.set(xlabel="false-positive rate", ylabel="sensitivity", title=title)
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def histograms(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    n = len(curves)
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 2.6), squeeze=False)
    for ax, (method, (score, y)) in zip(axes[0], curves.items()):
        bins = np.histogram_bin_edges(score, 30)
        for cls, label in ((0, "normal"), (1, "anomalous")):
            if (y == cls).any():  # the healthy demo has no anomalous images
                ax.hist(score[y == cls], bins, alpha=0.6, label=label, density=True)
        ax.set_title(method, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def residual_grid(path: Path, data: dict[str, np.ndarray], recon: np.ndarray,
                  residual: np.ndarray, n: int, seed: int) -> None:
    """Rows: input, reconstruction, residual (and label outline) for n normal + n anomalous."""
    rng = np.random.default_rng(seed)
    y = data["y"]
    picks = [i for cls in (0, 1) for i in rng.permutation(np.flatnonzero(y == cls))[: n // 2]]
    fig, axes = plt.subplots(3, len(picks), figsize=(1.3 * len(picks), 4.2), squeeze=False)
    for j, i in enumerate(picks):
        axes[0][j].imshow(data["images"][i, 0], cmap="gray", vmin=0, vmax=1)
        axes[1][j].imshow(recon[i, 0], cmap="gray", vmin=0, vmax=1)
        axes[2][j].imshow(residual[i], cmap="inferno")
        if "labels_map" in data:
            axes[2][j].contour(data["labels_map"][i], levels=[0.5], colors="cyan", linewidths=0.5)
        axes[0][j].set_title("anomalous" if y[i] == 1 else "normal", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    for r, label in enumerate(("input", "reconstruction", "residual")):
        axes[r][0].text(-0.1, 0.5, label, transform=axes[r][0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=7)
    _save(fig, path)
