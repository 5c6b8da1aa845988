"""f-AnoGAN scoring: one encoder pass per image, A(x) = A_R + kappa * A_D.

A_R = mean (x - G(E(x)))^2 over pixels, A_D = mean (f(x) - f(G(E(x))))^2 over the critic's
features (f-AnoGAN eq. 7-8); |x - G(E(x))| is the residual map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medgen.models.fanogan.plan import izif_loss


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
