"""Download the syng-bts wheel once and extract its TCGA miRNA tables into the cache."""

from medgen.data.fetch import fetch_syng_bts
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    cfg = snakemake.params.syng_bts  # noqa: F821
    fetch_syng_bts(cfg["version"], cfg["sha256"], cfg["tables"], snakemake.params.cache_dir)  # noqa: F821
