"""Infer the target genes of new landmark profiles; GCTX and h5ad with their metadata."""

from medgen.smk import logged
from medgen.tasks.expression_inference.infer import infer_targets
from medgen.train import inference_device

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    infer_targets(
        model_path=snakemake.input.model,  # noqa: F821
        cfg=snakemake.params.infer,  # noqa: F821
        out_gctx=snakemake.output.gctx,  # noqa: F821
        out_h5ad=snakemake.output.h5ad,  # noqa: F821
        device=inference_device(snakemake.params.accelerator),  # noqa: F821
    )
