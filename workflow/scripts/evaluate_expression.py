"""Latent space, gene weights, associations and metrics of an expression model beside
PCA/ICA/NMF."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.expression.evaluate import evaluate_expression

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    evaluate_expression(
        h5ad_path=snakemake.input.h5ad,  # noqa: F821
        model_path=snakemake.input.model,  # noqa: F821
        evaluation=snakemake.params.evaluation,  # noqa: F821
        labels=snakemake.params.labels,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    )
