"""Lightning plan for GGAN: conditional adversarial training of the target-gene generator
(``AdversarialPlan`` gives the step order); with adversarial_weight 0 the discriminator is
never trained, which is the L1-only ablation (plus the consistency term if its weight > 0)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from medgen.models.adversarial import AdversarialPlan
from medgen.models.ggan.module import build_networks, generator_loss


class GGANPlan(AdversarialPlan):
    """One discriminator and one generator update per batch of (landmarks, targets)."""

    def __init__(self, hparams: dict[str, Any], n_landmarks: int, n_targets: int) -> None:
        super().__init__(hparams, n_landmarks=n_landmarks, n_targets=n_targets)
        self.generator, self.discriminator = build_networks(hparams, n_landmarks, n_targets)

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any], previous: dict) -> GGANPlan:
        return cls(hparams, dims["n_landmarks"], dims["n_targets"])

    @property
    def discriminator_active(self) -> bool:
        return self.hp["adversarial_weight"] > 0

    def prediction_network(self) -> torch.nn.Module:
        """Standardised landmarks (N, l) -> standardised targets (N, t); its weights are
        exported as ``network``."""
        return self.generator

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_mae", (self.generator(x) - y).abs().mean(), prog_bar=True)

    def configure_optimizers(self):
        betas = (self.hp["beta1"], 0.999)
        return [torch.optim.Adam(self.generator.parameters(), self.hp["lr"], betas=betas),
                torch.optim.Adam(self.discriminator.parameters(), self.hp["lr"], betas=betas)]

    def split_batch(self, batch):
        return (batch[0], batch[1]), None

    def discriminator_loss(self, data, z):
        # (1) Update D: maximise log D(x, y) + log(1 - D(x, G(x)))
        x, y = data
        with torch.no_grad():
            y_hat = self.generator(x)
        real, fake = self.discriminator(x, y), self.discriminator(x, y_hat)
        loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        return loss, {"loss_d": loss.detach()}, None

    def generator_loss(self, data, z, cache):
        # (2) Update G: L1 + adversarial + consistency (module docstring)
        x, y = data
        terms = generator_loss(self.generator,
                               self.discriminator if self.discriminator_active else None,
                               x, y, self.hp)
        logs = {"l1": terms.l1.detach(), "adversarial": terms.adversarial.detach(),
                "consistency": terms.consistency.detach()}
        return terms.total, logs

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        # "network": the generator under the name every expression-inference family uses
        return {"network": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict()}
