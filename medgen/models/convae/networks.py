"""Convolutional autoencoder: strided convs down to 4 x 4, a dense bottleneck, and back."""

from __future__ import annotations

import torch
from torch import nn

from medgen.models.anogan.networks import n_doublings


class ConvAutoencoder(nn.Module):
    def __init__(self, channels: int, image_size: int, base: int, bottleneck: int) -> None:
        super().__init__()
        n = n_doublings(image_size)
        enc: list[nn.Module] = []
        w_in, w = channels, base
        for _ in range(n):
            enc += [nn.Conv2d(w_in, w, 4, 2, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            w_in, w = w, w * 2
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(w_in * 16, bottleneck))
        self.width = w_in
        self.expand = nn.Linear(bottleneck, w_in * 16)
        dec: list[nn.Module] = []
        w = w_in
        for i in range(n):
            last = i == n - 1
            w_out = channels if last else w // 2
            dec.append(nn.ConvTranspose2d(w, w_out, 4, 2, 1))
            if not last:
                dec += [nn.BatchNorm2d(w_out), nn.ReLU()]
            w = w_out
        self.decoder = nn.Sequential(*dec, nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(self.encoder(x)).view(len(x), self.width, 4, 4)
        return self.decoder(h)
