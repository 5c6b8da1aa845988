"""Landmark and target matrices (gene sets, probe collapse, folds) for expression inference."""

from medgen.smk import logged
from medgen.tasks.expression_inference.prepare import prepare_expression_inference

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    prepare_expression_inference(
        cfg=snakemake.params.section,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_h5ad=snakemake.output.h5ad,  # noqa: F821
        expression_h5ad=snakemake.params.expression_h5ad,  # noqa: F821
    )
