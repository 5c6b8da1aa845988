"""A plain convolutional autoencoder: the reconstruction-error baseline of the anomaly harness.

Not a registry family (it is configured under imaging.evaluation); same networks-plan split.
"""

PRESETS = {
    "default": {
        "channels_base": 16,
        "bottleneck": 64,      # a narrow code so the AE cannot copy anomalies through
        "lr": 0.001,
        "batch_size": 64,
        "max_epochs": 20,
    },
}


def baseline_hparams(evaluation: dict) -> dict:
    """The baseline's hyperparameters from ``imaging.evaluation`` (epochs and bottleneck)."""
    return {**PRESETS["default"], "max_epochs": evaluation["convae_epochs"],
            "bottleneck": evaluation["convae_bottleneck"]}
