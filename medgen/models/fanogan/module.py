"""f-AnoGAN networks, the izi_f loss and scoring (Schlegl et al., Medical Image Analysis 2019).

Networks: a WGAN-GP generator and critic (residual blocks as in the paper's code, or
DCGAN-style strided convolutions) and an encoder E with the critic's architecture and a
latent-sized head. Score A(x) = A_R + kappa * A_D from one encoder pass, with
A_R = mean (x - G(E(x)))^2 over pixels and A_D = mean (f(x) - f(G(E(x))))^2 over the
critic's features (eq. 7-8); |x - G(E(x))| is the residual map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from medgen.models.anomaly import Scores, geometry_of
from medgen.nn.dcgan import Discriminator, Generator
from medgen.nn.residual import ResCritic, ResGenerator


def build_networks(hp: dict[str, Any], channels: int, image_size: int,
                   spatial_dims: int = 2) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(generator, critic, encoder): residual blocks (paper) or DCGAN-style strided convs
    (``upsampling``: the DCGAN generator's 'transposed' or 'nearest', ``medgen.nn.dcgan``).

    The encoder has the critic's architecture with a latent-sized head (izi_f).
    """
    base, latent, d = hp["channels_base"], hp["latent_dim"], spatial_dims
    if hp["residual_blocks"]:
        return (ResGenerator(latent, channels, image_size, base, d),
                ResCritic(channels, image_size, base, spatial_dims=d),
                ResCritic(channels, image_size, base, out_dim=latent, spatial_dims=d))
    # checkpoints from before 'upsampling' existed used transposed convolutions
    return (Generator(latent, channels, image_size, base, d,
                      hp.get("upsampling", "transposed")),
            Discriminator(channels, image_size, base, 0.2, batch_norm=False, spatial_dims=d),
            Discriminator(channels, image_size, base, 0.2, batch_norm=False, out_dim=latent,
                          spatial_dims=d))


def izif_loss(encoder, generator, critic, x: torch.Tensor, kappa: float):
    """izi_f: MSE(x, G(E(x))) + kappa * MSE(f(x), f(G(E(x)))) per image -> (N,), (N,), recon."""
    z = encoder(x)[0]
    recon = generator(z)
    _, f_real = critic(x)
    _, f_fake = critic(recon)
    a_r = ((x - recon) ** 2).flatten(1).mean(1)
    a_d = ((f_real - f_fake) ** 2).mean(1)
    return a_r, kappa * a_d, recon


@dataclass
class EncoderFit:
    score: torch.Tensor
    residual: torch.Tensor
    discrimination: torch.Tensor
    reconstruction: torch.Tensor


@torch.no_grad()
def encode_scores(encoder, generator, critic, x: torch.Tensor, kappa: float) -> EncoderFit:
    """Score a batch (N, C, H, W) in [-1, 1]."""
    for module in (encoder, generator, critic):
        module.eval()
    a_r, a_d, recon = izif_loss(encoder, generator, critic, x, kappa)
    return EncoderFit(a_r + a_d, a_r, a_d, recon)


class FAnoGANScorer:
    """Scores images with a trained f-AnoGAN: one encoder pass per image."""

    def __init__(self, generator: nn.Module, critic: nn.Module, encoder: nn.Module,
                 hp: dict[str, Any], image_size: int, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.generator, self.critic, self.encoder = (
            m.to(self.device).eval() for m in (generator, critic, encoder))
        self.hp, self.image_size = hp, image_size
        self.batch_size = hp["score_batch_size"]

    def score(self, images: np.ndarray | torch.Tensor) -> Scores:
        """Scores of images (N, C, S, S) in [0, 1]."""
        x_all = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        parts = []
        for start in range(0, len(x_all), self.batch_size):
            x = x_all[start:start + self.batch_size].to(self.device) * 2 - 1
            parts.append(encode_scores(self.encoder, self.generator, self.critic, x,
                                       self.hp["kappa"]))
        cat = lambda name: torch.cat([getattr(p, name) for p in parts]).cpu().numpy()  # noqa: E731
        return Scores(score=cat("score"),
                      terms={"residual": cat("residual"), "discrimination": cat("discrimination")},
                      reconstruction=(cat("reconstruction") + 1) / 2)


def load_for_inference(checkpoint, device: str = "cpu") -> FAnoGANScorer:
    """An :class:`FAnoGANScorer` from a ``medgen.checkpoint.Checkpoint`` of this family."""
    channels, size, dims = geometry_of(checkpoint.data)
    generator, critic, encoder = build_networks(checkpoint.hparams, channels, size, dims)
    for name, network in (("generator", generator), ("critic", critic), ("encoder", encoder)):
        network.load_state_dict(checkpoint.state[name])
    return FAnoGANScorer(generator, critic, encoder, checkpoint.hparams, size, device)
