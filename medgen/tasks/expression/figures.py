"""Figures for a trained latent-variable model: training curves, latent UMAP, metrics."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # batch jobs have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.report.plots import per_epoch, save_png  # noqa: E402

TERMS = ("total", "reconstruction", "kl")


def training_curves(metrics_csv: str | os.PathLike, path: str | os.PathLike) -> None:
    """Per-epoch train/val loss terms from Lightning's CSV log (``metrics.csv``)."""
    per_epoch_table = per_epoch(metrics_csv)
    fig, axes = plt.subplots(1, len(TERMS), figsize=(4 * len(TERMS), 3.2))
    for ax, term in zip(axes, TERMS):
        for stage in ("train", "val"):
            column = f"{stage}_{term}"
            if column in per_epoch_table:
                series = per_epoch_table[column].dropna()
                ax.plot(series.index + 1, series.to_numpy(), marker=".", label=stage)
        ax.set_title(term)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def latent_umap(
    latent: np.ndarray, obs: pd.DataFrame, labels: list[str], seed: int,
    path: str | os.PathLike, title: str = "latent space",
) -> np.ndarray:
    """UMAP (umap-learn, seeded) of a latent space, one panel per label; returns the embedding."""
    import umap  # slow to import (numba): only when drawn

    n = latent.shape[0]
    reducer = umap.UMAP(n_neighbors=max(2, min(15, n - 1)), random_state=seed, n_jobs=1)
    embedding = reducer.fit_transform(latent)
    labels = [label for label in labels if label in obs] or [None]
    fig, axes = plt.subplots(1, len(labels), figsize=(4.5 * len(labels), 4), squeeze=False)
    for ax, label in zip(axes[0], labels):
        if label is None:
            ax.scatter(embedding[:, 0], embedding[:, 1], s=4)
        else:
            values = obs[label].astype(str).to_numpy()
            for category in sorted(set(values)):
                sel = values == category
                ax.scatter(embedding[sel, 0], embedding[sel, 1], s=4, label=category)
            ax.legend(markerscale=3, fontsize=7)
            ax.set_title(f"{title}: {label}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    save_png(fig, path)
    return embedding


def metrics_bars(metrics: pd.DataFrame, columns: list[str], path: str | os.PathLike) -> None:
    """One bar panel per metric column, one bar per method (rows of ``metrics``)."""
    columns = [c for c in columns if c in metrics and metrics[c].notna().any()]
    if not columns:
        return
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3), squeeze=False)
    for ax, column in zip(axes[0], columns):
        ax.bar(metrics.index.astype(str), metrics[column].astype(float).fillna(0).to_numpy())
        ax.set_title(column, fontsize=8)
        ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    save_png(fig, path)
