"""AnoGAN scoring: map each image to a latent z by gradient descent, score the fit.

For an image x (scaled to [-1, 1]) and its own latent z, minimise over Gamma steps

    L(z) = (1 - lambda) * sum |x - G(z)|  +  lambda * sum |f(x) - f(G(z))|

(residual + discrimination loss, f = the discriminator's last feature layer). The anomaly
score is L at the end; |x - G(z)| is the residual map. Batched: every image in a batch has
its own z and its own Adam moments, and G/D run in eval mode (batch norm uses running
statistics), so images never interact and a batch gives the same result as one at a time.
Optionally, an image stops once ``check_every`` steps improve its loss by less than ``tol``
(relative): it leaves the active batch, and later steps are cheaper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


@dataclass
class LatentFit:
    score: torch.Tensor        # (N,) final weighted loss
    residual: torch.Tensor     # (N,) sum |x - G(z)|
    discrimination: torch.Tensor  # (N,) sum |f(x) - f(G(z))|
    reconstruction: torch.Tensor  # (N, C, H, W) G(z) in [-1, 1]
    steps: torch.Tensor        # (N,) steps taken (< Gamma when stopped early)


def _losses(generator: nn.Module, discriminator: nn.Module, x: torch.Tensor,
            fx: torch.Tensor, z: torch.Tensor, lam: float):
    gz = generator(z)
    _, fgz = discriminator(gz)
    residual = (x - gz).abs().flatten(1).sum(1)
    discrimination = (fx - fgz).abs().sum(1)
    return (1 - lam) * residual + lam * discrimination, residual, discrimination, gz


def map_latents(
    generator: nn.Module,
    discriminator: nn.Module,
    x: torch.Tensor,
    steps: int = 500,
    lam: float = 0.1,
    lr: float = 0.1,
    tol: float = 0.0,
    check_every: int = 25,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> LatentFit:
    """Map a batch of images (N, C, H, W) in [-1, 1] to latents; per-image Adam on z.

    ``on_step(step)`` is called after every step (progress reporting).
    """
    generator.eval()
    discriminator.eval()
    for p in (*generator.parameters(), *discriminator.parameters()):
        p.requires_grad_(False)
    n = len(x)
    # image i starts from a z seeded by (seed + i): a batch and a one-at-a-time loop over the
    # same images (seed = the image's position) start from identical latents
    z = torch.stack([
        torch.randn(generator.latent_dim, generator=torch.Generator().manual_seed(seed + i))
        for i in range(n)
    ]).to(x.device)
    m, v = torch.zeros_like(z), torch.zeros_like(z)
    with torch.no_grad():
        _, fx = discriminator(x)
    active = torch.arange(n, device=x.device)
    taken = torch.zeros(n, dtype=torch.long, device=x.device)
    previous = torch.full((n,), float("inf"), device=x.device)
    for step in range(1, steps + 1):
        za = z[active].requires_grad_(True)
        with torch.enable_grad():  # callers (e.g. sliding-window inference) may run no_grad
            loss, *_ = _losses(generator, discriminator, x[active], fx[active], za, lam)
            (grad,) = torch.autograd.grad(loss.sum(), za)  # each z only sees its own loss
        # Adam on each image's z with its own moments (torch.optim would share the step)
        m[active] = ADAM_BETAS[0] * m[active] + (1 - ADAM_BETAS[0]) * grad
        v[active] = ADAM_BETAS[1] * v[active] + (1 - ADAM_BETAS[1]) * grad**2
        t = (taken[active] + 1).unsqueeze(1).float()
        m_hat = m[active] / (1 - ADAM_BETAS[0] ** t)
        v_hat = v[active] / (1 - ADAM_BETAS[1] ** t)
        z[active] = za.detach() - lr * m_hat / (v_hat.sqrt() + ADAM_EPS)
        taken[active] += 1
        if on_step is not None:
            on_step(step)
        if tol > 0 and step % check_every == 0 and step < steps:
            current = loss.detach()
            converged = (previous[active] - current) < tol * current.abs()
            previous[active] = current
            active = active[~converged]
            if len(active) == 0:
                break
    with torch.no_grad():
        score, residual, discrimination, gz = _losses(generator, discriminator, x, fx, z, lam)
    return LatentFit(score, residual, discrimination, gz, taken)
