"""Figures of the expression-inference evaluation: per-gene error and correlation
distributions per model, and predicted vs measured values for a few target genes.

``draw_figures`` draws them from the evaluation's written ``per_gene.tsv`` and
``scatter.tsv``; the other functions take values.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.report.plots import save_png  # noqa: E402


def draw_figures(eval_dir: str | os.PathLike) -> None:
    """``per_gene.png`` from ``eval_dir/per_gene.tsv`` and ``scatter.png`` from
    ``eval_dir/scatter.tsv`` (both written by the evaluation)."""
    eval_dir = Path(eval_dir)
    per_gene = pd.read_csv(eval_dir / "per_gene.tsv", sep="\t")
    if "also_landmark" in per_gene:  # the targets scored, not those that are also landmarks
        per_gene = per_gene[per_gene["also_landmark"] == 0]
    per_gene_distributions(per_gene, eval_dir / "per_gene.png")
    scatter = pd.read_csv(eval_dir / "scatter.tsv", sep="\t", dtype={"sample": str})
    models = list(dict.fromkeys(scatter["model"]))
    genes = list(dict.fromkeys(scatter["gene"]))
    wide = scatter.pivot(index=["gene", "sample"], columns="model", values="predicted")
    measured = scatter.drop_duplicates(["gene", "sample"]).pivot(
        index="sample", columns="gene", values="measured")
    samples = list(dict.fromkeys(scatter["sample"]))
    measured = measured.loc[samples, genes]
    predictions = {m: np.stack([wide.loc[g, m].loc[samples].to_numpy() for g in genes], axis=1)
                   for m in models}
    prediction_scatter(measured, predictions, genes, eval_dir / "scatter.png")


def per_gene_distributions(per_gene: pd.DataFrame, path: str | os.PathLike) -> None:
    """Box plots of per-gene MAE and per-gene Pearson r, one box per model.

    ``per_gene``: long format with columns model, gene, mae, pearson (models in the order
    they should appear).
    """
    models = list(dict.fromkeys(per_gene["model"]))
    fig, axes = plt.subplots(1, 2, figsize=(1.4 * len(models) + 4, 3.6))
    for ax, column, label in ((axes[0], "mae", "per-gene MAE (lower is better)"),
                              (axes[1], "pearson", "per-gene Pearson r (higher is better)")):
        values = [per_gene.loc[per_gene["model"] == m, column].dropna().to_numpy()
                  for m in models]
        ax.boxplot(values, showfliers=False)
        ax.set_xticks(range(1, len(models) + 1), models, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    save_png(fig, path)


def prediction_scatter(measured: pd.DataFrame, predictions: dict[str, np.ndarray],
                       genes: list[str], path: str | os.PathLike) -> None:
    """Predicted vs measured values (rows: ``genes``; columns: models) with the identity
    line; ``measured`` is evaluated samples x targets, each prediction the same shape."""
    models = list(predictions)
    fig, axes = plt.subplots(len(genes), len(models), squeeze=False,
                             figsize=(2.2 * len(models), 2.1 * len(genes)))
    columns = {g: i for i, g in enumerate(measured.columns)}
    for row, gene in enumerate(genes):
        y = measured[gene].to_numpy()
        low, high = float(np.min(y)), float(np.max(y))
        for col, model in enumerate(models):
            y_hat = predictions[model][:, columns[gene]]
            ax = axes[row][col]
            ax.scatter(y, y_hat, s=4, alpha=0.6)
            ax.plot([low, high], [low, high], "k:", lw=0.8)
            r = np.corrcoef(y, y_hat)[0, 1] if np.std(y_hat) > 0 and np.std(y) > 0 else np.nan
            ax.set_title(f"{model}: {gene} (r {r:.2f})", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.supxlabel("measured", fontsize=8)
    fig.supylabel("predicted", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
