"""Every design scored by the evaluation oracle, beside the training sequences."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.sequence_design.design_evaluation import evaluate_designs

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    evaluate_designs(
        data_path=inputs.data,
        design_dir=Path(inputs.designs).parent,
        oracle_path=inputs.oracle,
        predictor_path=inputs.predictor,
        out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
        target=params.target,
        motifs=inputs.motifs[0] if inputs.motifs else None,
        motif_experiment=params.motif_experiment,
        seed=params.seed,
        num_threads=params.num_threads,
    )
