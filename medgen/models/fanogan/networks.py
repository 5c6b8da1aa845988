"""Residual WGAN-GP generator, critic and izi_f encoder (as in the f-AnoGAN code).

Generator: linear -> 4 x 4 -> residual up-blocks (batch norm, nearest upsampling) -> tanh.
Critic and encoder: residual down-blocks without normalisation (the gradient penalty is per
sample, so no batch norm in the critic); the critic's features feed the izi_f loss.
"""

from __future__ import annotations

import torch
from torch import nn

from medgen.models.anogan.networks import n_doublings


class ResBlock(nn.Module):
    """Pre-activation residual block that doubles ('up') or halves ('down') the resolution."""

    def __init__(self, c_in: int, c_out: int, resample: str, norm: bool) -> None:
        super().__init__()
        up = resample == "up"
        self.resample = nn.Upsample(scale_factor=2) if up else nn.AvgPool2d(2)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)
        self.main = nn.Sequential(
            nn.BatchNorm2d(c_in) if norm else nn.Identity(), nn.ReLU(),
            *( [nn.Upsample(scale_factor=2)] if up else []),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out) if norm else nn.Identity(), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            *([] if up else [nn.AvgPool2d(2)]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(self.resample(x)) + self.main(x)


class ResGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, image_size: int, base: int) -> None:
        super().__init__()
        n = n_doublings(image_size)
        width = base * 2 ** min(n - 1, 3)
        self.width = width
        self.latent_dim = latent_dim
        self.project = nn.Linear(latent_dim, 4 * 4 * width)
        blocks, w = [], width
        for i in range(n):
            w_out = base * 2 ** min(max(n - 2 - i, 0), 3)
            blocks.append(ResBlock(w, w_out, "up", norm=True))
            w = w_out
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Sequential(nn.BatchNorm2d(w), nn.ReLU(),
                                 nn.Conv2d(w, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(len(z), self.width, 4, 4)
        return self.out(self.blocks(h))


class ResCritic(nn.Module):
    """image -> (output (N, out_dim), features (N, F)). Critic: out_dim 1; encoder: latent."""

    def __init__(self, channels: int, image_size: int, base: int, out_dim: int = 1,
                 bounded: bool = False) -> None:
        super().__init__()
        n = n_doublings(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, base, 3, padding=1)]
        w = base
        for i in range(n):
            w_out = base * 2 ** min(i + 1, 3)
            layers.append(ResBlock(w, w_out, "down", norm=False))
            w = w_out
        layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4 * 4 * w, out_dim)
        self.bounded = bounded

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x).flatten(1)
        out = self.head(f)
        if self.bounded:
            out = torch.tanh(out)
        return out.squeeze(1) if out.shape[1] == 1 else out, f


def build_networks(hp: dict, channels: int, image_size: int) -> tuple[nn.Module, ...]:
    """(generator, critic, encoder): residual blocks (paper) or DCGAN-style strided convs.

    The encoder has the critic's architecture with a latent-sized head (izi_f).
    """
    base, latent = hp["channels_base"], hp["latent_dim"]
    if hp["residual_blocks"]:
        return (ResGenerator(latent, channels, image_size, base),
                ResCritic(channels, image_size, base),
                ResCritic(channels, image_size, base, out_dim=latent))
    from medgen.models.anogan.networks import Discriminator, Generator

    return (Generator(latent, channels, image_size, base),
            Discriminator(channels, image_size, base, 0.2, batch_norm=False),
            Discriminator(channels, image_size, base, 0.2, batch_norm=False, out_dim=latent))
