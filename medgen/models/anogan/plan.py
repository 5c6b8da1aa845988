"""Lightning plan for AnoGAN's DCGAN: the non-saturating GAN game with one-sided label
smoothing (Radford et al. 2016; Schlegl et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from medgen.models.adversarial import AdversarialPlan
from medgen.models.anogan.module import build_networks


class DCGANPlan(AdversarialPlan):
    """D and G updated once per batch (``AdversarialPlan`` gives the step order)."""

    def __init__(self, hparams: dict[str, Any], channels: int, image_size: int) -> None:
        super().__init__(hparams, channels=channels, image_size=image_size)
        self.generator, self.discriminator = build_networks(hparams, channels, image_size)

    def configure_optimizers(self):
        betas = (self.hp["beta1"], 0.999)
        opt_g = torch.optim.Adam(self.generator.parameters(), self.hp["lr_generator"], betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), self.hp["lr_discriminator"],
                                 betas=betas)
        return [opt_g, opt_d]

    def discriminator_loss(self, x: torch.Tensor, z: torch.Tensor):
        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        fake = self.generator(z)
        real_logit, _ = self.discriminator(x)
        fake_logit, _ = self.discriminator(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            real_logit, torch.full_like(real_logit, self.hp["real_label"])
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        # mode-collapse watch: per-pixel spread of the generated batch vs the real batch
        diversity = fake.detach().std(dim=0).mean() / x.std(dim=0).mean().clamp_min(1e-6)
        logs = {"loss_d": loss_d.detach(), "d_real": torch.sigmoid(real_logit).mean().detach(),
                "g_diversity": diversity}
        return loss_d, logs, fake

    def generator_loss(self, x: torch.Tensor, z: torch.Tensor, fake: torch.Tensor):
        # (2) Update G: maximise log D(G(z)) (non-saturating form of min log(1 - D(G(z))))
        fake_logit, _ = self.discriminator(fake)
        loss_g = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        return loss_g, {"loss_g": loss_g.detach()}

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict()}
