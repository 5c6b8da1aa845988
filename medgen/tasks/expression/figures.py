"""Figures for a trained latent-variable model: training curves, latent UMAP, metrics.

``draw_figures`` draws them from the evaluation's written files (``latent.h5ad``,
``metrics.tsv``, Lightning's ``metrics.csv``); the other functions take values.
``synthetic_figures`` draws the synthetic-data evaluation's (PCA, gene moments, correlation
differences, augmentation).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch jobs have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.report.plots import per_epoch, save_png, synthetic_pca  # noqa: E402

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


# --- synthetic profiles against held-out real ones (medgen.tasks.expression.synthetic) ---

CORRELATION_GENES = 50  # top-variance training genes in the correlation heat maps
AUGMENT = re.compile(r"augment_(real|synthetic)_n(\d+)_balanced_accuracy")


def synthetic_figures(train: np.ndarray, held_out: np.ndarray, synthetic: dict[str, np.ndarray],
                      metrics: pd.DataFrame, embedding, out_dir: str | os.PathLike,
                      title: str = "synthetic vs held-out") -> None:
    """The synthetic evaluation's figures in ``out_dir``: ``pca.png``, ``gene_moments.png``,
    ``correlation_difference.png`` and ``augmentation.png``.

    Parameters
    ----------
    train, held_out
        (n, p) real training and (h, p) real held-out profiles (data units).
    synthetic
        method -> (m, p) synthetic profiles.
    metrics
        The long table of ``evaluate_synthetic`` (the augmentation rows are drawn).
    embedding
        The PCA fitted on ``train`` (its first two components are drawn).
    """
    out_dir = Path(out_dir)
    synthetic_pca(held_out, synthetic, embedding, out_dir / "pca.png", title)
    gene_moments(held_out, synthetic, out_dir / "gene_moments.png")
    correlation_difference_maps(train, held_out, synthetic,
                                out_dir / "correlation_difference.png")
    augmentation_curves(metrics, out_dir / "augmentation.png")


def _panels(n: int, width: float = 3.3, height: float = 3.0, rows: int = 1):
    fig, axes = plt.subplots(rows, n, figsize=(width * n, height * rows), squeeze=False)
    return fig, axes


def gene_moments(held_out: np.ndarray, synthetic: dict[str, np.ndarray],
                 path: str | os.PathLike) -> None:
    """Per-gene mean (top row) and variance (bottom row), held-out against synthetic, one
    column per method; the diagonal is a perfect match."""
    fig, axes = _panels(len(synthetic), rows=2)
    for column, (method, x) in enumerate(synthetic.items()):
        for row, (name, stat) in enumerate((("mean", np.mean), ("variance", np.var))):
            ax = axes[row, column]
            real, synth = stat(held_out, axis=0), stat(x, axis=0)
            ax.scatter(real, synth, s=4, alpha=0.6)
            top = float(max(real.max(), synth.max(), 1e-12))
            ax.plot([0, top], [0, top], c="k", lw=0.8)
            ax.set_xlabel(f"held-out gene {name}")
            ax.set_ylabel(f"synthetic gene {name}")
            ax.set_title(method, fontsize=9)
    fig.tight_layout()
    save_png(fig, path)


def _correlation(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(x, rowvar=False)
    return np.nan_to_num(corr)  # a constant gene: uncorrelated, as the metric counts it


def correlation_difference_maps(train: np.ndarray, held_out: np.ndarray,
                                synthetic: dict[str, np.ndarray],
                                path: str | os.PathLike) -> None:
    """Gene-gene Pearson correlations, held-out minus synthetic, over the
    ``CORRELATION_GENES`` top-variance training genes; one heat map per method (0: the
    synthetic profiles keep the real correlations)."""
    genes = np.sort(np.argsort(-train.var(axis=0), kind="stable")[:CORRELATION_GENES])
    real = _correlation(held_out[:, genes])
    fig, axes = _panels(len(synthetic), width=3.6)
    image = None
    for ax, (method, x) in zip(axes[0], synthetic.items()):
        image = ax.imshow(real - _correlation(x[:, genes]), cmap="coolwarm", vmin=-1, vmax=1)
        ax.set_title(method, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="r(held-out) - r(synthetic)")
    save_png(fig, path)


def augmentation_curves(metrics: pd.DataFrame, path: str | os.PathLike) -> None:
    """Balanced accuracy on the held-out labels of a classifier trained on n real training
    profiles alone (black) and with each method's synthetic profiles added."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    real_drawn = False
    for method, rows in metrics.groupby("method", sort=False):
        parsed = [(m.group(1), int(m.group(2)), v) for metric, v in
                  zip(rows["metric"], rows["value"]) if (m := AUGMENT.fullmatch(metric))]
        for side in ("real", "synthetic"):
            points = sorted((n, v) for s, n, v in parsed if s == side)
            if not points or (side == "real" and real_drawn):
                continue
            n, value = zip(*points)
            if side == "real":
                ax.plot(n, value, "k--", marker="o", label="real only")
                real_drawn = True
            else:
                ax.plot(n, value, marker=".", label=f"real + {method}")
    if not real_drawn:
        ax.text(0.5, 0.5, "no labelled synthetic set: no augmentation curve",
                ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7)
    ax.set_xlabel("real training profiles")
    ax.set_ylabel("held-out balanced accuracy")
    fig.tight_layout()
    save_png(fig, path)
