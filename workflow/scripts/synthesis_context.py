"""Auto-context: level k's training data = the pairs plus level k-1's whole-volume output."""

from medgen.smk import logged
from medgen.tasks.synthesis.auto_context import context_inputs
from medgen.tasks.synthesis.inference import load
from medgen.train import inference_device

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    device = inference_device(snakemake.params.accelerator)  # noqa: F821
    window = snakemake.params.inference  # noqa: F821
    context_inputs(snakemake.input.data, load(snakemake.input.model, device),  # noqa: F821
                   snakemake.input.model, snakemake.output.data,  # noqa: F821
                   window=window["window"], overlap=window["overlap"])
