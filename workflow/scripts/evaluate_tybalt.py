"""Latent space, gene weights, associations and metrics of Tybalt beside PCA/ICA/NMF."""

from pathlib import Path

from medgen.models.tybalt.workflow import evaluate_tybalt
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    evaluate_tybalt(
        h5ad_path=snakemake.input.h5ad,  # noqa: F821
        model_path=snakemake.input.model,  # noqa: F821
        training_metrics=snakemake.input.train_metrics,  # noqa: F821
        evaluation=snakemake.params.evaluation,  # noqa: F821
        labels=snakemake.params.labels,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    )
