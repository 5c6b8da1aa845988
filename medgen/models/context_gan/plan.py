"""Lightning plan of the context-aware synthesis GAN: one discriminator and one generator
update per batch of (source, target) patches (``AdversarialPlan`` gives the step order).
With adversarial_weight 0 the discriminator is never trained: the 'l1_only' ablation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from medgen.models.adversarial import AdversarialPlan
from medgen.models.context_gan import check_hparams
from medgen.models.context_gan.module import build_networks, centre, generator_loss


class ContextGANPlan(AdversarialPlan):
    """Training of one auto-context stage on patches of ``channels`` source channels."""

    def __init__(self, hparams: dict[str, Any], channels: int, patch_size: int) -> None:
        super().__init__(hparams, channels=channels, patch_size=patch_size)
        # the config was checked when validated; plans built from code are checked here
        check_hparams({**hparams, "patch_size": patch_size})
        self.generator, self.discriminator = build_networks(hparams, channels)
        self.margin = self.generator.margin

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any],
              previous: dict) -> ContextGANPlan:
        return cls(hparams, dims["channels"], dims["patch_size"])

    @property
    def discriminator_active(self) -> bool:
        return self.hp["adversarial_weight"] > 0

    def prediction_network(self) -> torch.nn.Module:
        """Normalised source (N, C, P, P, P) -> normalised target (N, 1, P - 2m, ...);
        exported as ``generator``."""
        return self.generator

    def configure_optimizers(self):
        betas = (self.hp["beta1"], 0.999)
        return [torch.optim.Adam(self.generator.parameters(), self.hp["lr"], betas=betas),
                torch.optim.Adam(self.discriminator.parameters(), self.hp["lr"], betas=betas)]

    def split_batch(self, batch):
        source, target = batch
        return (source, centre(target, self.margin)), None

    def discriminator_loss(self, data, z):
        # (1) Update D: maximise log D(y) + log(1 - D(G(x)))
        x, y = data
        with torch.no_grad():
            fake = self.generator(x)
        real, synthetic = self.discriminator(y), self.discriminator(fake)
        loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(synthetic, torch.zeros_like(synthetic)))
        return loss, {"loss_d": loss.detach()}, None

    def generator_loss(self, data, z, cache):
        # (2) Update G: l2 * L2 + l1 * L1 + gdl * GDL + adversarial * BCE(D(G(x)), 1)
        x, y = data
        terms = generator_loss(self.generator(x), y,
                               self.discriminator if self.discriminator_active else None,
                               self.hp)
        logs = {"l2": terms.l2.detach(), "l1": terms.l1.detach(), "gdl": terms.gdl.detach(),
                "adversarial": terms.adversarial.detach()}
        return terms.total, logs

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_mae", (self.generator(x) - centre(y, self.margin)).abs().mean(),
                 prog_bar=True)

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict()}
