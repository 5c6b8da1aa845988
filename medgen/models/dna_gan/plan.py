"""Lightning plan for the DNA WGAN-GP: the shared WGAN-GP plan on one-hot sequences."""

from __future__ import annotations

from typing import Any

import torch

from medgen.models.adversarial import WGANGPPlan
from medgen.models.dna_gan.module import build_networks


class DNAGANPlan(WGANGPPlan):
    """WGAN-GP (``medgen.models.adversarial.WGANGPPlan``) on one-hot windows (N, L, 4):
    the critic sees real one-hot windows and the generator's softmax probabilities."""

    def __init__(self, hparams: dict[str, Any], length: int) -> None:
        super().__init__(hparams, length=length)
        self.generator, self.critic = build_networks(hparams, length)

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any], previous: dict) -> DNAGANPlan:
        """The plan for windows of ``dims['length']`` bases (one stage: no ``previous``)."""
        return cls(hparams, dims["length"])

    def split_batch(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(one-hot windows as they are, z ~ N(0, I) of ``latent_dim``)."""
        x = batch[0]
        return x, torch.randn(len(x), self.hp["latent_dim"], device=x.device)
