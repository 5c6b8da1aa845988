"""Every auto-context level of the activated synthesis families and the baselines on the
test and validation subjects: per-subject metrics table, means per split, synthetic volumes."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.synthesis.evaluate import evaluate_synthesis

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    evaluate_synthesis(
        snakemake.input.data,  # noqa: F821
        dict(params.models), Path(snakemake.output.metrics).parent,  # noqa: F821
        list(params.evaluation["baselines"]), params.seed, params.evaluation["unet"],
        window=params.inference["window"], overlap=params.inference["overlap"],
        num_threads=params.num_threads, generator=params.generator)
