"""Per-image anomaly scores and residual maps of one method on the val and test images."""

from medgen.smk import logged
from medgen.tasks.anomaly.inference import score_splits
from medgen.train import inference_device

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    score_splits(
        snakemake.wildcards.method,  # noqa: F821
        snakemake.input.model or None,  # noqa: F821 - trivial scores need no model
        snakemake.input.data,  # noqa: F821
        snakemake.output.scores,  # noqa: F821
        snakemake.params.scoring,  # noqa: F821
        snakemake.params.kind,  # noqa: F821
        inference_device(snakemake.params.accelerator),  # noqa: F821
    )
