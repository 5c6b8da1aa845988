"""Synthetic images of an anomaly GAN beside simple image generators, scored against the
held-out normal units."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.anomaly.synthetic import evaluate_synthetic_images

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    evaluate_synthetic_images(
        training_dir=snakemake.input.training,  # noqa: F821
        data_dir=snakemake.input.data,  # noqa: F821
        model_path=snakemake.input.model,  # noqa: F821
        synthetic=snakemake.params.synthetic,  # noqa: F821
        anomaly=snakemake.params.anomaly,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    )
