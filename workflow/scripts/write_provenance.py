"""Resolved config, versions, git revision and input checksums of the whole run."""

from medgen import provenance
from medgen.atomic import write_json
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    config = snakemake.params.config  # noqa: F821
    write_json(
        snakemake.output[0],  # noqa: F821
        provenance.collect(config=config, seed=config["seed"], inputs=list(snakemake.input)),  # noqa: F821
    )
