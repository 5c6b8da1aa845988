"""Generated DNA of the trained generators and the i.i.d. and Markov baselines, scored
against the held-out test windows."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.sequence_design.evaluate import evaluate_generation

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    evaluation = params.evaluation
    evaluate_generation(
        data_path=snakemake.input.data,  # noqa: F821
        model_paths=dict(zip(params.families, snakemake.input.models)),  # noqa: F821
        out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
        n_samples=evaluation["n_samples"],
        seed=params.seed,
        markov_orders=evaluation["markov_orders"],
        motifs=evaluation["motifs"] or None,
        n_motifs=evaluation["n_motifs"],
        num_threads=params.num_threads,
    )
