"""Residual WGAN-GP blocks, generator and critic (Gulrajani et al. 2017, as in the
f-AnoGAN code), for 2D or 3D data (``spatial_dims``).

Generator: linear -> 4^d -> residual up-blocks (batch norm, nearest upsampling) -> tanh.
Critic: residual down-blocks without normalisation (the gradient penalty is per sample),
2x2 average pooling; in 3D the same 2^3 block mean as a reshape (``BlockMean``), because
``AvgPool3d``'s CUDA backward raises in deterministic mode (``medgen.nn.deterministic``).
"""

from __future__ import annotations

import torch
from monai.networks.layers.factories import Conv, Norm, Pool
from torch import nn

from medgen.nn.dcgan import n_doublings
from medgen.nn.deterministic import BlockMean


def halve(spatial_dims: int) -> nn.Module:
    """2x average pooling: ``AvgPool{1,2}d(2)``, in 3D ``BlockMean`` (same values; its
    backward is deterministic on CUDA, ``AvgPool3d``'s raises under deterministic training)."""
    return BlockMean() if spatial_dims == 3 else Pool[Pool.AVG, spatial_dims](2)


class ResBlock(nn.Module):
    """Pre-activation residual block that doubles ('up') or halves ('down') the resolution;
    ``norm``: batch norm before each activation (generator) or none (critic)."""

    def __init__(self, c_in: int, c_out: int, resample: str, norm: bool,
                 spatial_dims: int = 2) -> None:
        super().__init__()
        conv, bn = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        up = resample == "up"
        self.resample = nn.Upsample(scale_factor=2) if up else halve(spatial_dims)
        self.shortcut = conv(c_in, c_out, 1)
        self.main = nn.Sequential(
            bn(c_in) if norm else nn.Identity(), nn.ReLU(),
            *([nn.Upsample(scale_factor=2)] if up else []),
            conv(c_in, c_out, 3, padding=1),
            bn(c_out) if norm else nn.Identity(), nn.ReLU(),
            conv(c_out, c_out, 3, padding=1),
            *([] if up else [halve(spatial_dims)]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(self.resample(x)) + self.main(x)


class ResGenerator(nn.Module):
    """z (N, latent_dim) -> image (N, C, S, S[, S]) in [-1, 1] through residual up-blocks."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, base: int,
                 spatial_dims: int = 2) -> None:
        super().__init__()
        conv, bn = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        n = n_doublings(image_size)
        width = base * 2 ** min(n - 1, 3)
        self.width = width
        self.latent_dim = latent_dim
        self.spatial_dims = spatial_dims
        self.project = nn.Linear(latent_dim, 4**spatial_dims * width)
        blocks, w = [], width
        for i in range(n):
            w_out = base * 2 ** min(max(n - 2 - i, 0), 3)
            blocks.append(ResBlock(w, w_out, "up", norm=True, spatial_dims=spatial_dims))
            w = w_out
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Sequential(bn(w), nn.ReLU(), conv(w, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(len(z), self.width, *[4] * self.spatial_dims)
        return self.out(self.blocks(h))


class ResCritic(nn.Module):
    """image -> (output (N,) or (N, out_dim), features (N, F)). Critic: out_dim 1; an
    encoder: out_dim = latent size (``bounded``: tanh on the output)."""

    def __init__(self, channels: int, image_size: int, base: int, out_dim: int = 1,
                 bounded: bool = False, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        n = n_doublings(image_size)
        layers: list[nn.Module] = [conv(channels, base, 3, padding=1)]
        w = base
        for i in range(n):
            w_out = base * 2 ** min(i + 1, 3)
            layers.append(ResBlock(w, w_out, "down", norm=False, spatial_dims=spatial_dims))
            w = w_out
        layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4**spatial_dims * w, out_dim)
        self.bounded = bounded

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x).flatten(1)
        out = self.head(f)
        if self.bounded:
            out = torch.tanh(out)
        return out.squeeze(1) if out.shape[1] == 1 else out, f
