"""DNA WGAN-GP networks (Killoran, Lee, Delong & Frey 2017, "Generating and designing DNA with
deep generative models", after the paper's code) and the trained generator as users sample it.

Sequences are one-hot arrays (N, L, 4), channels A, C, G, T (``medgen.data.sequence.one_hot``);
the networks convolve over positions internally as (N, channels, L).

- Generator: z ~ N(0, I) of ``latent_dim`` -> linear to ``channels`` x L -> ``n_blocks``
  residual blocks -> 1x1 convolution to 4 channels -> softmax over the bases at each
  position: (N, L, 4) probabilities.
- Critic: 1x1 convolution 4 -> ``channels`` -> ``n_blocks`` residual blocks -> linear to one
  score. No batch norm in either (the gradient penalty is per sample).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

RESIDUAL_SCALE = 0.3  # the paper's code adds 0.3 x the block's output back to its input
KERNEL = 5  # width of the residual blocks' convolutions (the paper's code)
BASES = 4  # A, C, G, T


class ResBlock1d(nn.Module):
    """x + 0.3 * conv(relu(conv(relu(x)))): two width-5 convolutions of ``channels``
    channels, length-preserving (padding 2); (N, channels, L) -> the same shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ReLU(), nn.Conv1d(channels, channels, KERNEL, padding=KERNEL // 2),
            nn.ReLU(), nn.Conv1d(channels, channels, KERNEL, padding=KERNEL // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.main(x)


class DNAGenerator(nn.Module):
    """z (N, latent_dim) -> base probabilities (N, length, 4), each position summing to 1."""

    def __init__(self, latent_dim: int, channels: int, length: int, n_blocks: int) -> None:
        super().__init__()
        self.latent_dim, self.channels, self.length = latent_dim, channels, length
        self.linear = nn.Linear(latent_dim, channels * length)
        self.blocks = nn.Sequential(*(ResBlock1d(channels) for _ in range(n_blocks)))
        self.to_bases = nn.Conv1d(channels, BASES, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(len(z), self.channels, self.length)
        logits = self.to_bases(self.blocks(h))  # (N, 4, L)
        return torch.softmax(logits, dim=1).transpose(1, 2)


class DNACritic(nn.Module):
    """Sequences (N, length, 4), one-hot or soft -> (scores (N,), features (N, channels * L))."""

    def __init__(self, channels: int, length: int, n_blocks: int) -> None:
        super().__init__()
        self.from_bases = nn.Conv1d(BASES, channels, 1)
        self.blocks = nn.Sequential(*(ResBlock1d(channels) for _ in range(n_blocks)))
        self.linear = nn.Linear(channels * length, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.blocks(self.from_bases(x.transpose(1, 2))).flatten(1)
        return self.linear(features).squeeze(1), features


def build_networks(hp: dict[str, Any], length: int) -> tuple[DNAGenerator, DNACritic]:
    """(generator, critic) for sequences of ``length`` bases from the family's hparams."""
    return (DNAGenerator(hp["latent_dim"], hp["channels"], length, hp["n_blocks"]),
            DNACritic(hp["channels"], length, hp["n_blocks"]))


class SequenceGenerator:
    """A trained DNA generator, ready to sample.

    Attributes
    ----------
    generator
        The torch module, eval mode, weights frozen: z (N, latent_dim) -> probabilities
        (N, length, 4), differentiable in z (latent-space design back-propagates through it).
    latent_dim, length
        Sizes of z and of the sequences (bases).
    """

    def __init__(self, generator: DNAGenerator, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        for parameter in self.generator.parameters():  # design moves z, never the weights
            parameter.requires_grad_(False)
        self.latent_dim, self.length = generator.latent_dim, generator.length

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` sequences as base probabilities, float32 (n, length, 4), channels A, C, G,
        T, each position summing to 1; ``medgen.data.sequence.decode`` turns them into
        strings (argmax per position). The same ``seed`` gives the same sequences (z is
        drawn on the CPU whatever the device)."""
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return self.generator(z.to(self.device)).cpu().numpy()


def load_for_inference(checkpoint, device: str = "cpu") -> SequenceGenerator:
    """A :class:`SequenceGenerator` from a ``medgen.checkpoint.Checkpoint`` of this family
    (the critic, also stored, is not needed to sample)."""
    generator, _ = build_networks(checkpoint.hparams, checkpoint.data["length"])
    generator.load_state_dict(checkpoint.state["generator"])
    return SequenceGenerator(generator, device)
