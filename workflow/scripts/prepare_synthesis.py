"""Read, check, normalise and cache the synthesis pairs of the sample sheet."""

from medgen.smk import logged
from medgen.tasks.synthesis.pairs import read_pairs
from medgen.tasks.synthesis.prepare import prepare_synthesis

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    settings = snakemake.params.settings  # noqa: F821
    pairs = read_pairs(settings["sample_sheet"], settings["sources"], settings["target"],
                       settings["data_root"], settings["validation_subject"])
    prepare_synthesis(pairs, settings, snakemake.output.data)  # noqa: F821
