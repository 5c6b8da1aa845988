"""AnoGAN networks and scoring (Schlegl et al., IPMI 2017): a DCGAN, and latent mapping.

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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from medgen.models.anomaly import Scores, geometry_of
from medgen.nn.dcgan import Discriminator, Generator

log = logging.getLogger(__name__)

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def build_networks(hp: dict[str, Any], channels: int, image_size: int,
                   spatial_dims: int = 2) -> tuple[Generator, Discriminator]:
    """(generator, discriminator) of the DCGAN for ``hp`` (an anogan preset)."""
    return (Generator(hp["latent_dim"], channels, image_size, hp["generator_channels"],
                      spatial_dims),
            Discriminator(channels, image_size, hp["discriminator_channels"],
                          hp["leaky_slope"], spatial_dims=spatial_dims))


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


class AnoGANScorer:
    """Scores images with a trained AnoGAN by latent mapping (``map_latents``).

    ``batch_size`` images are mapped at once, each with its own z; ``steps`` (Gamma),
    ``tol`` (early stop) and ``progress`` (a bar over mapping steps) may be changed by
    callers such as the scoring benchmark.
    """

    def __init__(self, generator: Generator, discriminator: Discriminator,
                 hp: dict[str, Any], image_size: int, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.discriminator = discriminator.to(self.device).eval()
        self.hp, self.image_size = hp, image_size
        self.batch_size = hp["score_batch_size"]
        self.steps = hp["score_steps"]
        self.tol = hp["score_early_stop_tol"]
        # mapping takes minutes to hours: a bar on a terminal (None: tqdm's own test), else
        # one log line per batch; False: neither (sliding windows draw their own bar)
        self.progress: bool | None = None

    def score(self, images: np.ndarray | torch.Tensor) -> Scores:
        """Scores of images (N, C, S, S) in [0, 1]."""
        x_all = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        parts = []
        n_batches = -(-len(x_all) // self.batch_size)
        # progress in mapping steps: Gamma per batch; a batch that stops early jumps ahead
        bar = tqdm(total=n_batches * self.steps, unit="step", mininterval=5,
                   desc=f"AnoGAN latent mapping ({len(x_all)} images, {self.batch_size} at once)",
                   disable=None if self.progress is None else not self.progress)
        with bar:
            for start in range(0, len(x_all), self.batch_size):
                x = x_all[start:start + self.batch_size].to(self.device) * 2 - 1
                fit = map_latents(self.generator, self.discriminator, x, self.steps,
                                  self.hp["score_lambda"], self.hp["score_lr"], self.tol,
                                  seed=start, on_step=lambda _: bar.update())
                bar.update(self.steps - int(fit.steps.max()))
                parts.append(fit)
                if bar.disable and self.progress is not False:
                    log.info("AnoGAN latent mapping: batch %d/%d done",
                             start // self.batch_size + 1, n_batches)
        cat = lambda name: torch.cat([getattr(p, name) for p in parts]).cpu().numpy()  # noqa: E731
        return Scores(score=cat("score"),
                      terms={"residual": cat("residual"), "discrimination": cat("discrimination")},
                      reconstruction=(cat("reconstruction") + 1) / 2, steps=cat("steps"))


def load_for_inference(checkpoint, device: str = "cpu") -> AnoGANScorer:
    """An :class:`AnoGANScorer` from a ``medgen.checkpoint.Checkpoint`` of this family."""
    channels, size, dims = geometry_of(checkpoint.data)
    generator, discriminator = build_networks(checkpoint.hparams, channels, size, dims)
    generator.load_state_dict(checkpoint.state["generator"])
    discriminator.load_state_dict(checkpoint.state["discriminator"])
    return AnoGANScorer(generator, discriminator, checkpoint.hparams, size, device)
