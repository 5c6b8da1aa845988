"""Expression-inference families beside mean, ridge and KNN (and ablations) on one split."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.expression_inference.evaluate import evaluate_expression_inference

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    params = snakemake.params  # noqa: F821
    evaluate_expression_inference(
        data_path=snakemake.input.data,  # noqa: F821
        models=dict(zip(params.families, snakemake.input.models)),  # noqa: F821
        hparams=params.hparams,
        evaluation=params.evaluation,
        seed=params.seed,
        out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
        ablations={name: tuple(spec) for name, spec in params.ablations.items()},
        num_threads=params.num_threads,
    )
