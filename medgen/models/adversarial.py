"""One Lightning plan for every GAN (as scvi-tools' ``AdversarialTrainingPlan``): two
optimisers, manual optimisation, the alternating step, and the hyperparameters a checkpoint
needs. Families supply the two losses and the networks.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn


class AdversarialPlan(L.LightningModule):
    """Alternating discriminator / generator updates (images, volumes or expression).

    One training step, on a batch split by ``split_batch`` into the real data x and the
    generator's input z (by default: images in [0, 1] scaled to [-1, 1], and z ~ N(0, I) of
    size ``latent_dim``; GGAN's (landmarks, targets), context_gan's (source, target) patches
    override it):
    1. (x, z) <- split_batch(batch);
    2. update D (or the critic) on ``discriminator_loss(x, z)``, every batch;
    3. every ``generator_every``-th batch, update G on ``generator_loss(x, z, cache)`` with
       D's parameters frozen (``cache``: what step 2 computed and step 3 may reuse).

    Subclasses set ``self.generator`` and ``self.discriminator`` and implement
    ``discriminator_loss`` -> (loss, logs, cache), ``generator_loss`` -> (loss, logs) and
    ``configure_optimizers`` -> [optimiser of G, optimiser of D].

    Parameters
    ----------
    hparams
        The resolved preset (plain values: checkpoints load with ``weights_only=True``).
    dims
        The data sizes the networks are built for (images: ``channels``, ``image_size``;
        expression inference: ``n_landmarks``, ``n_targets``), saved with the hparams.
    """

    generator: nn.Module
    discriminator: nn.Module
    generator_every: int = 1

    def __init__(self, hparams: dict[str, Any], **dims: int) -> None:
        super().__init__()
        self.save_hyperparameters({"hp": dict(hparams), **dims})
        self.hp = dict(hparams)
        self.automatic_optimization = False

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any],
              previous: dict) -> AdversarialPlan:
        """The plan for data of ``dims`` (channels, image_size); a first stage: no ``previous``."""
        return cls(hparams, dims["channels"], dims["image_size"])  # image GANs

    def discriminator_loss(self, x: torch.Tensor, z: torch.Tensor):
        raise NotImplementedError

    def generator_loss(self, x: torch.Tensor, z: torch.Tensor, cache: Any):
        raise NotImplementedError

    def split_batch(self, batch) -> tuple[Any, torch.Tensor | None]:
        """(real data, generator noise) of a batch: images in [0, 1] -> [-1, 1] and
        z ~ N(0, I). Conditional GANs override it (e.g. (landmarks, targets), no z)."""
        x = batch[0] * 2 - 1
        return x, torch.randn(len(x), self.hp["latent_dim"], device=x.device)

    @property
    def discriminator_active(self) -> bool:
        """False when the generator's loss has no adversarial term (an ablation): then D is
        not trained and its optimiser never steps."""
        return True

    def training_step(self, batch, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        x, z = self.split_batch(batch)

        cache = None
        if self.discriminator_active:
            loss_d, logs, cache = self.discriminator_loss(x, z)
            opt_d.zero_grad()
            self.manual_backward(loss_d)
            opt_d.step()
            self.log_dict(logs, on_step=False, on_epoch=True, prog_bar=True)

        if (batch_idx + 1) % self.generator_every == 0:
            for p in self.discriminator.parameters():
                p.requires_grad_(False)  # G's loss must not leave gradients in D
            loss_g, logs = self.generator_loss(x, z, cache)
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
            self.log_dict(logs, on_step=False, on_epoch=True)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x_hat D(x_hat)||_2 - 1)^2] on random interpolates x_hat (Gulrajani 2017).

    ``critic(x)`` returns (scores, features); ``real`` and ``fake`` have one shape (N, ...),
    one interpolation weight per sample. Returns a scalar tensor (differentiable: the
    critic's loss back-propagates through it)."""
    alpha = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out, _ = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class WGANGPPlan(AdversarialPlan):
    """WGAN-GP (Gulrajani et al. 2017): one critic update per batch, one generator update
    every ``n_critic`` batches; Adam(``lr``, betas (``beta1``, ``beta2``)) for both.

    1. critic: minimise D(G(z)) - D(x) + gp_weight * GP;
    2. every n_critic-th batch, generator: minimise -D(G(z)).

    Subclasses build ``self.generator`` and ``self.critic`` (``critic(x)`` -> (scores,
    features)) after calling this ``__init__``, and override ``split_batch`` for data other
    than images in [0, 1].
    """

    def __init__(self, hparams: dict[str, Any], **dims: int) -> None:
        super().__init__(hparams, **dims)
        self.generator_every = hparams["n_critic"]

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.critic  # the base plan's name for it

    def configure_optimizers(self):
        betas = (self.hp["beta1"], self.hp["beta2"])
        return [torch.optim.Adam(self.generator.parameters(), self.hp["lr"], betas=betas),
                torch.optim.Adam(self.critic.parameters(), self.hp["lr"], betas=betas)]

    def discriminator_loss(self, x: torch.Tensor, z: torch.Tensor):
        # (1) Update critic: minimise D(G(z)) - D(x) + lambda * (||grad D(x_hat)|| - 1)^2
        with torch.no_grad():
            fake = self.generator(z)
        real_out, _ = self.critic(x)
        fake_out, _ = self.critic(fake)
        wasserstein = real_out.mean() - fake_out.mean()
        gp = gradient_penalty(self.critic, x, fake)
        loss_c = -wasserstein + self.hp["gp_weight"] * gp
        return loss_c, {"wasserstein": wasserstein.detach(), "gp": gp.detach()}, None

    def generator_loss(self, x: torch.Tensor, z: torch.Tensor, cache: None):
        # (2) Update G every n_critic critic steps: minimise -D(G(z))
        out, _ = self.critic(self.generator(z))
        loss_g = -out.mean()
        return loss_g, {"loss_g": loss_g.detach()}

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"generator": self.generator.state_dict(), "critic": self.critic.state_dict()}
