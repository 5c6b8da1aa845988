"""Synthetic profiles of an expression model beside simple generators, scored against the
held-out split."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.expression.synthetic import evaluate_synthetic_expression

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    evaluate_synthetic_expression(
        h5ad_path=snakemake.input.h5ad,  # noqa: F821
        model_path=snakemake.input.model,  # noqa: F821
        synthetic=snakemake.params.synthetic,  # noqa: F821
        labels=snakemake.params.labels,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    )
