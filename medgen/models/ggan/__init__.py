"""GGAN (Wang, Ghasedi Dizaji & Huang, Bioinformatics 2018): a conditional GAN that infers
target genes from landmark genes (task 'expression_inference': its data, evaluation and
apply step are the task's, ``medgen.tasks.expression_inference``).

Presets are flat dicts of plain values. Layer sizes and loss weights are not in the paper:
'paper' follows D-GEX's scale (3 x 3,000 units) for the generator; 'default' is sized to
train on 2 CPU cores.
"""

from __future__ import annotations

from typing import Any

from medgen.family import FamilySpec, Stage

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "generator_hidden": [3000, 3000, 3000],
        "discriminator_hidden": [1000],
        "dropout": 0.1,
        "l1_weight": 1.0,
        "adversarial_weight": 0.01,   # small: the L1 term sets the scale of the targets
        "consistency_weight": 0.1,
        "noise_sd": 0.1,              # in standardised units
        "lr": 0.0005,
        "beta1": 0.5,
        "batch_size": 64,
        "max_epochs": 200,
    },
    "default": {
        "generator_hidden": [1024],
        "discriminator_hidden": [256],
        "dropout": 0.1,
        "l1_weight": 1.0,
        "adversarial_weight": 0.01,
        "consistency_weight": 0.1,
        "noise_sd": 0.1,
        "lr": 0.001,
        "beta1": 0.5,
        "batch_size": 32,
        "max_epochs": 150,
    },
}

FAMILY = FamilySpec(
    name="ggan",
    task="expression_inference",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.ggan.plan:GGANPlan"),),
    load="medgen.models.expression_inference:load_for_inference",
    description="GGAN conditional GAN (Wang et al. 2018): landmark -> target genes.",
    resources={"mem_mb": 8000, "runtime": 120},
    positive=("generator_hidden", "discriminator_hidden", "lr", "batch_size"),
    limitations=(
        "The adversarial term trades mean accuracy for realistic variance: where MAE matters "
        "most, compare with its L1-only ablation (ggan_l1_only) in the evaluation.",
    ),
)

__all__ = ["FAMILY", "PRESETS"]
