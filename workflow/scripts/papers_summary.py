"""Each paper's claim beside our mean +- 95% interval and the replicates' verdict."""

from medgen.smk import logged
from medgen.studies import load_studies, summarise_studies

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    studies = load_studies(dict(snakemake.config), snakemake.params.budget)  # noqa: F821
    summarise_studies(studies, snakemake.output.table, snakemake.output.markdown)  # noqa: F821
