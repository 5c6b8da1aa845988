"""D-GEX (Chen, Li, Narayan, Subramanian & Xie, Bioinformatics 2016): a multilayer
perceptron that infers target genes from landmark genes; the deep-learning baseline of
GGAN (Wang et al. 2018). Task 'expression_inference', trained on the same standardised
data as GGAN (``medgen.tasks.expression_inference.loaders``).

Presets are flat dicts of plain values:
- 'paper': the paper's best model, D-GEX-10%-9000x3 (three hidden layers of 9,000 tanh
  units, 10% dropout, MSE, SGD with momentum 0.5, learning rate 5e-4, mini-batches of 200,
  200 epochs). Sized for the 100,000-profile GEO compendium on a GPU.
- 'default': one hidden layer of 1,000 tanh units, trainable on 2 CPU cores. With 50 to 1,500
  training profiles the paper's learning rate barely moves SGD in 200 epochs, so 'default'
  uses momentum 0.9 and a learning rate of 0.01 (still plain SGD, as the paper).
"""

from __future__ import annotations

from typing import Any

from medgen.family import FamilySpec, Stage

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "hidden": [9000, 9000, 9000],
        "dropout": 0.1,
        "lr": 0.0005,
        "momentum": 0.5,
        "batch_size": 200,
        "max_epochs": 200,
    },
    "default": {
        "hidden": [1000],
        "dropout": 0.1,
        "lr": 0.01,
        "momentum": 0.9,
        "batch_size": 32,
        "max_epochs": 200,
    },
}

FAMILY = FamilySpec(
    name="dgex",
    task="expression_inference",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.dgex.plan:DGEXPlan"),),
    load="medgen.models.expression_inference:load_for_inference",
    description="D-GEX multilayer perceptron (Chen et al. 2016): landmark -> target genes.",
    resources={"mem_mb": 8000, "runtime": 120},
    positive=("hidden", "lr", "batch_size"),
    limitations=(
        "A wide dropout MLP: with a few hundred training samples it can fall below ridge "
        "regression; check the evaluation before preferring it.",
    ),
)

__all__ = ["FAMILY", "PRESETS"]
