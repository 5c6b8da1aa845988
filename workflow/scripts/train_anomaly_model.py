"""Train AnoGAN, f-AnoGAN or the conv-autoencoder baseline on the normal training images."""

from pathlib import Path

from medgen.models.anomaly import train_anomaly_model
from medgen.smk import logged, trainer_settings

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    train_anomaly_model(
        snakemake.wildcards.family,  # noqa: F821
        Path(snakemake.input.data) / "train.npz",  # noqa: F821
        snakemake.params.hparams,  # noqa: F821
        trainer_settings(snakemake),  # noqa: F821
        snakemake.params.seed,  # noqa: F821
        Path(snakemake.output.model).parent,  # noqa: F821
    )
