"""Figures for a trained latent-variable model: training curves, latent UMAP, metrics.

``draw_figures`` draws them from the evaluation's written files (``latent.h5ad``,
``metrics.tsv``, Lightning's ``metrics.csv``); the other functions take values.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch jobs have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.report.plots import per_epoch, save_png  # noqa: E402

TERMS = ("total", "reconstruction", "kl")


def draw_figures(eval_dir: str | os.PathLike, labels: list[str], seed: int, title: str,
                 training_metrics: str | os.PathLike) -> None:
    """``training_curves.png`` (from ``training_metrics``, Lightning's ``metrics.csv``),
    ``latent_umap.png`` (the model's latent means in ``eval_dir/latent.h5ad``, coloured by
    ``labels``; UMAP seeded with ``seed``) and ``metrics.png`` (``eval_dir/metrics.tsv``)."""
    import anndata as ad

    eval_dir = Path(eval_dir)
    training_curves(training_metrics, eval_dir / "training_curves.png")
    latent = ad.read_h5ad(eval_dir / "latent.h5ad")
    key = next(k for k in latent.obsm if k.startswith("X_"))
    latent_umap(np.asarray(latent.obsm[key], np.float64), latent.obs, labels, seed,
                eval_dir / "latent_umap.png", title=title)
    table = pd.read_csv(eval_dir / "metrics.tsv", sep="\t", index_col="method")
    metrics_bars(table, ["test_mse", "test_bce_above_floor"]
                 + [f"knn_balanced_accuracy_{label}" for label in labels],
                 eval_dir / "metrics.png")


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
