"""Designed sequences of every design method and baseline (the predictor's objective, and
the motif experiment when configured)."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.sequence_design.design_evaluation import design_sequences

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    design_sequences(
        data_path=inputs.data,
        predictor_path=inputs.predictor,
        out_dir=Path(snakemake.output.designs).parent,  # noqa: F821
        settings=params.settings,
        seed=params.seed,
        generator_path=inputs.generator[0] if inputs.generator else None,
        motifs=inputs.motifs[0] if inputs.motifs else None,
        num_threads=params.num_threads,
    )
