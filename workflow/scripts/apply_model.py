"""Apply a trained model to new data: preprocessing as in training, inference, evaluation."""

from medgen.apply import apply_model
from medgen.smk import logged
from medgen.train import inference_device

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    apply_model(
        params.model,
        {"tasks": params.tasks, "expression": params.expression, "anomaly": params.anomaly,
         "synthesis": params.synthesis, "sequence_design": params.sequence_design,
         "seed": params.seed},
        snakemake.output[0],  # noqa: F821
        inference_device(params.accelerator),
    )
