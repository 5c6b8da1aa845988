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
