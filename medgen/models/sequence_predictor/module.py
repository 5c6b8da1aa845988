"""The sequence -> measurement CNN of Killoran, Lee, Delong & Frey 2017 ("Generating and
designing DNA with deep generative models"), and the trained predictor as users apply it.

Network: one-hot or soft sequences (N, L, 4) -> conv1d (``filters`` filters of width
``filter_width``, same padding) -> leaky ReLU -> max- and average-pooling over positions,
concatenated (2 x filters) -> dense layers (``hidden``, leaky ReLU) -> one output: linear (the
standardised measurement) or sigmoid (a measurement in [0, 1], e.g. binding; the paper's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medgen.errors import MedgenInputError

OUTPUTS = ("linear", "sigmoid")
LEAKY_SLOPE = 0.2  # TensorFlow's leaky_relu default (the paper's code is TensorFlow)


class PredictorNet(nn.Module):
    """Sequences (N, L, 4) (one-hot or probabilities) -> (N,) outputs in the network's scale
    (standardised measurement for 'linear', [0, 1] for 'sigmoid'); differentiable in x."""

    def __init__(self, filters: int, filter_width: int, hidden: list[int], output: str
                 ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, filters, filter_width, padding=filter_width // 2)
        layers: list[nn.Module] = []
        width = 2 * filters
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(LEAKY_SLOPE)]
            width = size
        layers.append(nn.Linear(width, 1))
        if output == "sigmoid":
            layers.append(nn.Sigmoid())
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.conv(x.transpose(1, 2)), LEAKY_SLOPE)
        pooled = torch.cat([h.amax(dim=2), h.mean(dim=2)], dim=1)
        return self.head(pooled).squeeze(1)


def build_network(hp: dict[str, Any]) -> PredictorNet:
    """The predictor network of the family's hparams (any sequence length: it pools)."""
    return PredictorNet(hp["filters"], hp["filter_width"], list(hp["hidden"]), hp["output"])


class SequencePredictor:
    """A trained predictor: sequences in, measurements in the training data's units out.

    Attributes
    ----------
    network
        The torch module (eval mode, weights frozen): (N, L, 4) -> (N,) in the network's
        scale.
    length
        Sequence length the model was trained on (bases).
    mean, sd
        The measurement's training-split mean and standard deviation ('linear' output;
        0 and 1 for 'sigmoid'): measurement = network output * sd + mean.
    value
        What the measurement is (e.g. "mean bin of ct_0, ..., ct_9").
    """

    def __init__(self, network: PredictorNet, signature: dict[str, Any], device: str = "cpu"
                 ) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        for parameter in self.network.parameters():  # design moves the input, never the net
            parameter.requires_grad_(False)
        self.length = int(signature["length"])
        self.mean, self.sd = float(signature["target_mean"]), float(signature["target_sd"])
        self.value = signature.get("value", "")

    def predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable prediction: x (N, length, 4) float tensor (one-hot or soft, on
        the model's device) -> (N,) in the measurement's units. Gradients flow back to x
        (design by gradient ascent); the network's weights stay as they are."""
        if x.dim() != 3 or x.shape[1:] != (self.length, 4):
            raise MedgenInputError(
                f"expected sequences of shape (N, {self.length}, 4); got {tuple(x.shape)}")
        return self.network(x) * self.sd + self.mean

    def predict(self, onehot: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Sequences (n, length, 4), one-hot or probabilities -> float64 (n,) predictions in
        the measurement's units, in batches of ``batch_size``.

        Raises MedgenInputError for another shape or non-finite values.
        """
        x = np.asarray(onehot, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.length, 4):
            raise MedgenInputError(
                f"expected sequences of shape (n, {self.length}, 4); got {x.shape}")
        if not np.isfinite(x).all():
            raise MedgenInputError("sequences hold NaN or infinite values")
        out = np.empty(len(x), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                batch = torch.from_numpy(x[start:start + batch_size]).to(self.device)
                out[start:start + len(batch)] = self.predict_tensor(batch).cpu().numpy()
        return out


def load_for_inference(checkpoint, device: str = "cpu") -> SequencePredictor:
    """A :class:`SequencePredictor` from a ``medgen.checkpoint.Checkpoint`` of this family."""
    network = build_network(checkpoint.hparams)
    network.load_state_dict(checkpoint.state["network"])
    return SequencePredictor(network, checkpoint.data, device)
