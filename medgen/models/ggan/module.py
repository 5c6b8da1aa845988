"""GGAN networks and loss terms (Wang, Ghasedi Dizaji & Huang, Bioinformatics 2018): a
generator that infers target genes from landmark genes, and a discriminator that tells
(landmarks, measured targets) from (landmarks, inferred targets).

The paper gives neither layer sizes nor loss weights; ours (presets in ``__init__``):
fully connected layers with LeakyReLU and dropout; inputs and outputs standardised per gene
on the training data. Generator loss:

    L_G = l1_weight * |y_hat - y|  +  adversarial_weight * BCE(D(x, y_hat), 1)
          + consistency_weight * |G(x + u) - G(x + u')|,   u, u' ~ N(0, noise_sd^2)

(the consistency term: two noisy copies of the same landmarks must give the same targets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def mlp(n_in: int, hidden: list[int], n_out: int, dropout: float, slope: float = 0.2
        ) -> nn.Sequential:
    """Linear -> LeakyReLU -> Dropout per hidden width, then a linear output layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.LeakyReLU(slope), nn.Dropout(dropout)]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class Generator(nn.Module):
    """Landmarks (N, l) -> targets (N, t), both standardised per gene."""

    def __init__(self, n_landmarks: int, n_targets: int, hidden: list[int],
                 dropout: float) -> None:
        super().__init__()
        self.net = mlp(n_landmarks, hidden, n_targets, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Discriminator(nn.Module):
    """(landmarks (N, l), targets (N, t)) -> logit (N,) that the targets were measured."""

    def __init__(self, n_landmarks: int, n_targets: int, hidden: list[int],
                 dropout: float) -> None:
        super().__init__()
        self.net = mlp(n_landmarks + n_targets, hidden, 1, dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, y], dim=1))[:, 0]


@dataclass
class GeneratorLoss:
    """Per-batch means of the generator's loss terms (unweighted) and their weighted sum."""

    l1: torch.Tensor
    adversarial: torch.Tensor
    consistency: torch.Tensor
    total: torch.Tensor


def generator_loss(generator: Generator, discriminator: Discriminator | None,
                   x: torch.Tensor, y: torch.Tensor, hp: dict[str, Any]) -> GeneratorLoss:
    """The generator's loss terms for one batch (see the module docstring)."""
    noisy = lambda: x + hp["noise_sd"] * torch.randn_like(x)  # noqa: E731
    y_hat = generator(noisy())
    l1 = (y_hat - y).abs().mean()
    zero = torch.zeros((), device=x.device)
    adversarial = consistency = zero
    if discriminator is not None and hp["adversarial_weight"] > 0:
        logit = discriminator(x, y_hat)
        adversarial = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
    if hp["consistency_weight"] > 0:
        consistency = (y_hat - generator(noisy())).abs().mean()
    total = (hp["l1_weight"] * l1 + hp["adversarial_weight"] * adversarial
             + hp["consistency_weight"] * consistency)
    return GeneratorLoss(l1, adversarial, consistency, total)


def build_networks(hp: dict[str, Any], n_landmarks: int, n_targets: int
                   ) -> tuple[Generator, Discriminator]:
    """(generator, discriminator) for ``hp`` (a ggan preset)."""
    return (Generator(n_landmarks, n_targets, list(hp["generator_hidden"]), hp["dropout"]),
            Discriminator(n_landmarks, n_targets, list(hp["discriminator_hidden"]),
                          hp["dropout"]))
