"""Read, check, normalise and cache the synthesis pairs of the sample sheet."""

from medgen.data.imaging.pairs import read_pairs
from medgen.data.imaging.synthesis_prepare import prepare_synthesis
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    settings = snakemake.params.settings  # noqa: F821
    pairs = read_pairs(settings["sample_sheet"], settings["sources"], settings["target"],
                       settings["data_root"], settings["validation_subject"])
    prepare_synthesis(pairs, settings, snakemake.output.data)  # noqa: F821
