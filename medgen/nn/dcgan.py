"""DCGAN generator and discriminator (Radford et al. 2016) for square (2D) or cubic (3D)
images whose side is a power of two >= 8.

Strided (transposed) convolutions with kernel 4 / stride 2, batch norm, ReLU in G,
LeakyReLU in D, tanh output, N(0, 0.02) init. Layer types come from MONAI's factories, so
``spatial_dims`` picks 2D or 3D layers.

The generator's ``upsampling='nearest'`` replaces each stride-2 transposed convolution by
nearest-neighbour upsampling and a 3^d convolution ("resize-convolution", Odena et al.,
Distill 2016, "Deconvolution and Checkerboard Artifacts"): a kernel divisible by its stride
avoids the uneven overlap, yet briefly trained transposed convolutions still draw a
pixel-scale dither that the residual maps of an anomaly detector then light up.
"""

from __future__ import annotations

import math

import torch
from monai.networks.layers.factories import Conv, Norm
from torch import nn

UPSAMPLING = ("transposed", "nearest")

def n_doublings(image_size: int) -> int:
    """Number of stride-2 layers between 4 (per axis) and ``image_size``.

    Raises ValueError unless ``image_size`` is a power of two >= 8.
    """
    steps = math.log2(image_size) - 2
    if image_size < 8 or steps != int(steps):
        raise ValueError(f"image size must be a power of two >= 8, got {image_size}")
    return int(steps)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv/linear weights N(0, 0.02), batch-norm scales N(1, 0.02),
    zero biases. Use as ``net.apply(dcgan_init)``."""
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (N, latent_dim) -> image (N, C, S, S[, S]) in [-1, 1].

    Parameters
    ----------
    latent_dim, channels, image_size
        Latent size, image channels, image side (power of two >= 8).
    base
        Width of the last hidden layer (DCGAN's ngf); it doubles towards the 4^d start.
    spatial_dims
        2 (images) or 3 (volumes).
    upsampling
        'transposed' (DCGAN: stride-2 transposed convolutions, kernel 4) or 'nearest'
        (nearest-neighbour x2, then a 3^d convolution: no checkerboard dither).

    Raises
    ------
    ValueError
        ``image_size`` is not a power of two >= 8, or ``upsampling`` is neither mode.
    """

    def __init__(self, latent_dim: int, channels: int, image_size: int, base: int,
                 spatial_dims: int = 2, upsampling: str = "transposed") -> None:
        super().__init__()
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {upsampling!r}")
        up, norm = Conv[Conv.CONVTRANS, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        conv = Conv[Conv.CONV, spatial_dims]

        def double(c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
            if upsampling == "transposed":
                return [up(c_in, c_out, 4, 2, 1, bias=bias)]
            return [nn.Upsample(scale_factor=2, mode="nearest"),
                    conv(c_in, c_out, 3, 1, 1, bias=bias)]

        n = n_doublings(image_size)
        width = base * 2 ** (n - 1)
        layers: list[nn.Module] = [
            up(latent_dim, width, 4, 1, 0, bias=False), norm(width), nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [*double(width, width // 2, False), norm(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [*double(width, channels, True), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim
        self.spatial_dims = spatial_dims
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(*z.shape, *[1] * self.spatial_dims))


class Discriminator(nn.Module):
    """image -> (output (N,) or (N, out_dim), features (N, F)).

    The features are the last 4^d layer (AnoGAN's f). ``batch_norm=False`` for a WGAN-GP
    critic (the gradient penalty is per sample); ``out_dim`` > 1 makes it an encoder.
    """

    def __init__(self, channels: int, image_size: int, base: int, slope: float,
                 batch_norm: bool = True, out_dim: int = 1, spatial_dims: int = 2) -> None:
        super().__init__()
        conv, norm = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        n = n_doublings(image_size)
        layers: list[nn.Module] = [conv(channels, base, 4, 2, 1), nn.LeakyReLU(slope, True)]
        width = base
        for _ in range(n - 1):
            layers += [conv(width, width * 2, 4, 2, 1, bias=not batch_norm),
                       norm(width * 2) if batch_norm else nn.Identity(),
                       nn.LeakyReLU(slope, True)]
            width *= 2
        self.features = nn.Sequential(*layers)
        self.head = conv(width, out_dim, 4, 1, 0)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        out = self.head(f).flatten(1)
        return (out[:, 0] if out.shape[1] == 1 else out), f.flatten(1)
