"""The model card beside one trained model.pt: what it is, its training data, its held-out
metrics beside the baselines (and over the replicates), intended use, limits, how to apply."""

from pathlib import Path

from medgen import model_card, tracking
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    inputs = snakemake.input  # noqa: F821
    card = model_card.build(inputs.model, list(inputs.metrics),
                            inputs.get("summary"), inputs.get("comparisons"))
    model_card.write(card, snakemake.output.md, snakemake.output.json)  # noqa: F821
    # a model trained with tracking on gets its held-out metrics and card in its run too
    tracking.log_evaluation(Path(inputs.model).parent, model_card.tracked_metrics(card),
                            [snakemake.output.md, snakemake.output.json],  # noqa: F821
                            config=snakemake.config)  # noqa: F821
