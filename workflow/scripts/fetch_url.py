"""Download one table by URL into the cache, resumable and checksum-verified."""

from pathlib import Path

from medgen.data.fetch import download
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    target = Path(snakemake.output.table)  # noqa: F821
    download(snakemake.params.url["url"], snakemake.params.url["sha256"], target.parent, target.name)  # noqa: F821
