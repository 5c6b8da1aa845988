"""A plain convolutional autoencoder: the reconstruction-error baseline of the anomaly harness.

A registered family marked ``baseline``: it is configured under ``anomaly.evaluation``
(``convae_epochs``, ``convae_bottleneck``), not under ``models``, and ``training.max_epochs``
does not shorten it.
"""

from typing import Any

from medgen.family import FamilySpec, Stage

PRESETS = {
    "default": {
        "channels_base": 16,
        "bottleneck": 64,      # a narrow code so the AE cannot copy anomalies through
        "lr": 0.001,
        "batch_size": 64,
        "max_epochs": 20,
    },
}


def baseline_hparams(config: dict[str, Any]) -> dict[str, Any]:
    """The baseline's hyperparameters from a resolved config's ``anomaly.evaluation``."""
    evaluation = config["anomaly"]["evaluation"]
    return {**PRESETS["default"], "max_epochs": evaluation["convae_epochs"],
            "bottleneck": evaluation["convae_bottleneck"]}


FAMILY = FamilySpec(
    name="convae",
    task="anomaly",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.convae.plan:ConvAEPlan"),),
    load="medgen.models.convae.module:load_for_inference",
    description="Convolutional autoencoder, the reconstruction-error baseline.",
    baseline=True,
    config_hparams=baseline_hparams,
    positive=("channels_base", "bottleneck", "lr", "batch_size"),
    limitations=(
        "A baseline: a small autoencoder also reconstructs anomalies once trained long, which "
        "lowers its reconstruction-error contrast.",
    ),
)
