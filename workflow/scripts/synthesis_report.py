"""The report's synthesis section: per-subject metric table, mid-slices of each test
subject, training curves of every auto-context level."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.synthesis.figures import synthesis_report

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    synthesis_report(
        eval_dir=Path(snakemake.input.metrics).parent,  # noqa: F821
        prepared=snakemake.input.data,  # noqa: F821
        models=dict(snakemake.params.models),  # noqa: F821
        out_dir=Path(snakemake.output.table).parent,  # noqa: F821
        subjects=list(snakemake.params.subjects),  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
    )
