"""Download the syng-bts wheel once and extract its TCGA miRNA tables into the cache.

Two rules run this script. fetch_syng_bts creates missing tables. verify_syng_bts (its
inputs are the cached tables, so it reruns when one changes) hashes every table against the
cache's manifest, rebuilds a damaged one, and writes the checksums the run read. Checksums
are only ever computed here, inside a job, never while Snakemake builds its DAG.
"""

from medgen.data.fetch import fetch_syng_bts, verify_syng_bts
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    cfg = snakemake.params.syng_bts  # noqa: F821
    cache_dir = snakemake.params.cache_dir  # noqa: F821
    if "checksums" in snakemake.output.keys():  # noqa: F821
        verify_syng_bts(
            cfg["version"], cfg["sha256"], cfg["tables"], cache_dir,
            snakemake.output.checksums,  # noqa: F821
        )
    else:
        fetch_syng_bts(cfg["version"], cfg["sha256"], cfg["tables"], cache_dir)
