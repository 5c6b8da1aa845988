"""DCGAN generator and discriminator for square images whose side is a power of two >= 8.

Strided (transposed) convolutions with kernel 4 / stride 2 (kernel divisible by stride: no
checkerboard), batch norm, ReLU in G, LeakyReLU in D, tanh output, N(0, 0.02) init.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def n_doublings(image_size: int) -> int:
    """Number of stride-2 layers between 4 x 4 and image_size."""
    steps = math.log2(image_size) - 2
    if image_size < 8 or steps != int(steps):
        raise ValueError(f"image size must be a power of two >= 8, got {image_size}")
    return int(steps)


def dcgan_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (N, latent) -> image (N, C, S, S) in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, base: int) -> None:
        super().__init__()
        n = n_doublings(image_size)
        width = base * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """image -> (logit (N,), features (N, F)); features are the last 4 x 4 layer (AnoGAN's f)."""

    def __init__(self, channels: int, image_size: int, base: int, slope: float,
                 batch_norm: bool = True, out_dim: int = 1) -> None:
        super().__init__()
        n = n_doublings(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1), nn.LeakyReLU(slope, True)]
        width = base
        for _ in range(n - 1):
            # no batch norm in a WGAN-GP critic: the gradient penalty is per sample
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch_norm),
                       nn.BatchNorm2d(width * 2) if batch_norm else nn.Identity(),
                       nn.LeakyReLU(slope, True)]
            width *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, out_dim, 4, 1, 0)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        out = self.head(f).flatten(1)
        return (out[:, 0] if out.shape[1] == 1 else out), f.flatten(1)
