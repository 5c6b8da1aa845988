"""Train one registered model family (every stage; resumes from the last checkpoint)."""

from pathlib import Path

from medgen.smk import logged, trainer_settings
from medgen.train import train_model

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    train_model(
        family=snakemake.wildcards.family,  # noqa: F821
        data_path=snakemake.input.data,  # noqa: F821
        hparams=snakemake.params.hparams,  # noqa: F821
        training=trainer_settings(snakemake),  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_dir=Path(snakemake.output.model).parent,  # noqa: F821
        config=snakemake.config,  # noqa: F821
    )
