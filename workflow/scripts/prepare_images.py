"""Read, reorient, mask, normalise and cut the sample sheet's images of some splits (the
training units, or the val/test evaluation data)."""

from medgen.smk import logged
from medgen.tasks.anomaly.prepare import prepare_images

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    imaging = snakemake.params.anomaly  # noqa: F821
    prepare_images(imaging["sample_sheet"], imaging, snakemake.params.seed,  # noqa: F821
                   snakemake.output.data, cache_dir=snakemake.params.cache_dir,  # noqa: F821
                   splits=tuple(snakemake.params.splits))  # noqa: F821
