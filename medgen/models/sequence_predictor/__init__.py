"""Sequence -> measurement CNN (Killoran, Lee, Delong & Frey 2017, "Generating and designing
DNA with deep generative models"): the predictor that design back-propagates through
(sequences that raise a predicted protein binding or expression). Task 'sequence_design',
trained on (sequence, measurement) pairs of a measurement table.

Presets are flat dicts of plain values:
- 'paper': 100 filters of width 15, leaky ReLU, max- and average-pooling over positions,
  two dense layers of 200, MSE, Adam 5e-5. The paper's output is a sigmoid (binding in
  [0, 1]); here ``output`` is 'linear' with targets standardised on the training split
  (sort-seq mean bins and other real-valued measurements), 'sigmoid' for values in [0, 1].
- 'default': the same network, Adam 1e-3 and 30 epochs: trains in minutes on 2 CPU cores.
- 'oracle': the design evaluation's oracle (``medgen.tasks.sequence_design.oracle``): another
  architecture than the design predictor (128 filters of width 9, one dense layer of 64), so
  that designs exploiting the predictor's quirks do not carry over.
"""

from __future__ import annotations

from typing import Any

from medgen.errors import MedgenInputError
from medgen.family import FamilySpec, Stage

# medgen.models.sequence_predictor.module.OUTPUTS, spelt out: family modules stay torch-free
OUTPUTS = ("linear", "sigmoid")

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "filters": 100,
        "filter_width": 15,
        "hidden": [200, 200],
        "output": "linear",   # the paper: sigmoid (binding scores in [0, 1])
        "lr": 0.00005,
        "batch_size": 128,    # not stated in the paper
        "max_epochs": 100,    # not stated in the paper
    },
    "default": {
        "filters": 100,
        "filter_width": 15,
        "hidden": [200, 200],
        "output": "linear",
        "lr": 0.001,          # 20x the paper's: converges in tens of epochs on CPU
        "batch_size": 128,
        "max_epochs": 30,
    },
    "oracle": {
        "filters": 128,
        "filter_width": 9,
        "hidden": [64],
        "output": "linear",
        "lr": 0.001,
        "batch_size": 128,
        "max_epochs": 20,
    },
}


def check_hparams(hparams: dict[str, Any], key: str = "models.sequence_predictor.params"
                  ) -> None:
    """Refuse an ``output`` the network cannot build.

    Raises
    ------
    MedgenInputError
        ``output`` is not one of 'linear', 'sigmoid'.
    """
    if hparams["output"] not in OUTPUTS:
        raise MedgenInputError(f"config key '{key}.output' is {hparams['output']!r}; "
                               f"expected one of {list(OUTPUTS)}")


FAMILY = FamilySpec(
    name="sequence_predictor",
    task="sequence_design",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.sequence_predictor.plan:PredictorPlan"),),
    load="medgen.models.sequence_predictor.module:load_for_inference",
    description="Sequence -> measurement CNN (Killoran et al. 2017), the predictor that "
                "design optimises.",
    resources={"mem_mb": 8000, "runtime": 120},
    check=check_hparams,
    positive=("filters", "filter_width", "hidden", "lr", "batch_size"),
    limitations=(
        "Predicts for sequences of the training length only; far from the measured "
        "sequences (as designed ones become) its predictions are extrapolations.",
    ),
)

__all__ = ["FAMILY", "OUTPUTS", "PRESETS"]
