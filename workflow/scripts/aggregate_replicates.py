"""One task's tidy metric tables over the replicates: summary, comparisons with verdicts,
critical-difference diagram."""

from pathlib import Path

from medgen.evaluate.replicates import aggregate
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    inputs = snakemake.input  # noqa: F821
    tables = {int(name.removeprefix("seed")): list(inputs[name]) for name in inputs.keys()}
    aggregate(tables, snakemake.wildcards.task,  # noqa: F821
              Path(snakemake.output.comparisons).parent,  # noqa: F821
              diagram=snakemake.output.diagram)  # noqa: F821
