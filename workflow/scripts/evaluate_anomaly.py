"""Thresholds, AUROC/AUPRC, pixel metrics and figures for every method side by side."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.anomaly.evaluate import evaluate_anomaly

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    score_dirs = dict(zip(snakemake.params.methods, snakemake.input.scores))  # noqa: F821
    evaluate_anomaly(score_dirs, snakemake.input.data, snakemake.params.anomaly,  # noqa: F821
                     Path(snakemake.output.metrics).parent, snakemake.params.seed,  # noqa: F821
                     train_path=Path(snakemake.input.training) / "train.npz")  # noqa: F821
