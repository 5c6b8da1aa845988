"""D-GEX network (Chen et al., Bioinformatics 2016): fully connected tanh layers with
dropout, a linear output per target gene; inputs and outputs standardised per gene."""

from __future__ import annotations

from typing import Any

from torch import nn


class DGEXNet(nn.Module):
    """Landmarks (N, l) -> targets (N, t), both standardised per gene."""

    def __init__(self, n_landmarks: int, n_targets: int, hidden: list[int],
                 dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = n_landmarks
        for width in hidden:
            layers += [nn.Linear(n_in, width), nn.Tanh(), nn.Dropout(dropout)]
            n_in = width
        self.net = nn.Sequential(*layers, nn.Linear(n_in, n_targets))

    def forward(self, x):
        return self.net(x)

    @classmethod
    def from_hparams(cls, hp: dict[str, Any], n_landmarks: int, n_targets: int) -> DGEXNet:
        return cls(n_landmarks, n_targets, list(hp["hidden"]), hp["dropout"])
