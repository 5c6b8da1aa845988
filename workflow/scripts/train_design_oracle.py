"""The evaluation oracle of sequence design: another architecture and seed, trained on
every measured sequence."""

from medgen.smk import logged
from medgen.tasks.sequence_design.oracle import train_oracle

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    train_oracle(
        snakemake.input.data,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        seed=params.seed,
        overrides={"max_epochs": params.epochs},
        num_threads=params.num_threads,
        extra_tables=list(snakemake.input.tables),  # noqa: F821
        table=params.table,
        u_policy=params.u_policy,
    )
