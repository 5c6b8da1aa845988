"""QC, normalise, split by patient, select genes and scale: one .h5ad for every model."""

from medgen.data.expression import preprocess_expression
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    expression = snakemake.params.expression  # noqa: F821
    preprocess_expression(
        tables=snakemake.params.tables,  # noqa: F821
        cfg=expression,
        seed=snakemake.params.seed,  # noqa: F821
        out_h5ad=snakemake.output.h5ad,  # noqa: F821
        out_split_tsv=snakemake.output.split,  # noqa: F821
        metadata_path=expression["metadata"]["path"],
    )
