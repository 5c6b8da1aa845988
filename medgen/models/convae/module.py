"""Convolutional autoencoder: strided convs down to 4^d, a dense bottleneck, and back; its
scorer is the mean squared reconstruction error (the anomaly harness's AE baseline)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.networks.layers.factories import Conv, Norm
from torch import nn

from medgen.models.anomaly import Scores, geometry_of
from medgen.nn.dcgan import n_doublings


class ConvAutoencoder(nn.Module):
    """(N, C, S, S[, S]) in [0, 1] -> reconstruction of the same shape in [0, 1] (sigmoid).

    Parameters
    ----------
    channels, image_size
        Image geometry (side: power of two >= 8).
    base
        Width of the first conv layer; doubles at each stride-2 step.
    bottleneck
        Width of the dense code.
    spatial_dims
        2 or 3.
    """

    def __init__(self, channels: int, image_size: int, base: int, bottleneck: int,
                 spatial_dims: int = 2) -> None:
        super().__init__()
        conv, up = Conv[Conv.CONV, spatial_dims], Conv[Conv.CONVTRANS, spatial_dims]
        norm = Norm[Norm.BATCH, spatial_dims]
        n = n_doublings(image_size)
        cells = 4**spatial_dims
        enc: list[nn.Module] = []
        w_in, w = channels, base
        for _ in range(n):
            enc += [conv(w_in, w, 4, 2, 1), norm(w), nn.LeakyReLU(0.2)]
            w_in, w = w, w * 2
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(w_in * cells, bottleneck))
        self.width = w_in
        self.spatial_dims = spatial_dims
        self.expand = nn.Linear(bottleneck, w_in * cells)
        dec: list[nn.Module] = []
        w = w_in
        for i in range(n):
            last = i == n - 1
            w_out = channels if last else w // 2
            dec.append(up(w, w_out, 4, 2, 1))
            if not last:
                dec += [norm(w_out), nn.ReLU()]
            w = w_out
        self.decoder = nn.Sequential(*dec, nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(self.encoder(x)).view(len(x), self.width, *[4] * self.spatial_dims)
        return self.decoder(h)


def build_network(hp: dict[str, Any], channels: int, image_size: int,
                  spatial_dims: int = 2) -> ConvAutoencoder:
    """The autoencoder for ``hp`` (channels_base, bottleneck) and the data's geometry."""
    return ConvAutoencoder(channels, image_size, hp["channels_base"], hp["bottleneck"],
                           spatial_dims)


class ConvAEScorer:
    """Score = mean squared reconstruction error per image."""

    def __init__(self, model: ConvAutoencoder, image_size: int, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device, self.image_size, self.batch_size = device, image_size, 256

    @torch.no_grad()
    def score(self, images) -> Scores:
        """Scores of images (N, C, S, S) in [0, 1]."""
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        recon = torch.cat([self.model(b.to(self.device)).cpu() for b in x.split(self.batch_size)])
        err = ((x - recon) ** 2).flatten(1).mean(1).numpy()
        return Scores(err, {"residual": err}, recon.numpy())


def load_for_inference(checkpoint, device: str = "cpu") -> ConvAEScorer:
    """A :class:`ConvAEScorer` from a ``medgen.checkpoint.Checkpoint`` of this family."""
    channels, size, dims = geometry_of(checkpoint.data)
    model = build_network(checkpoint.hparams, channels, size, dims)
    model.load_state_dict(checkpoint.state["autoencoder"])
    return ConvAEScorer(model, size, device)
