"""The sequence-design data: FASTA windows or a measurement table, one-hot, split by identity."""

from medgen.smk import logged
from medgen.tasks.sequence_design.prepare import prepare

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    prepare(
        snakemake.params.section,  # noqa: F821
        snakemake.output.data,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
    )
