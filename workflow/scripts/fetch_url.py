"""Download one table by URL into the cache, resumable and checksum-verified."""

from pathlib import Path

from medgen.data.fetch import download
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    target = Path(snakemake.output.table)  # noqa: F821
    url = snakemake.params.url  # noqa: F821
    download(url["url"], url["sha256"], target.parent, target.name)
