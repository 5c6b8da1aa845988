"""Train the Tybalt VAE (Lightning; resumes from the last checkpoint when rerun)."""

from pathlib import Path

from medgen.models.tybalt.workflow import train_tybalt
from medgen.smk import logged, trainer_settings

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    train_tybalt(
        h5ad_path=snakemake.input.h5ad,  # noqa: F821
        hparams=snakemake.params.hparams,  # noqa: F821
        training=trainer_settings(snakemake),  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_dir=Path(snakemake.output.model).parent,  # noqa: F821
    )
