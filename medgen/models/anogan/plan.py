"""Lightning training plan for AnoGAN's DCGAN (manual optimisation: two optimisers)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from medgen.models.anogan.networks import Discriminator, Generator


class DCGANPlan(L.LightningModule):
    """Alternating D and G updates on normal images scaled to [-1, 1].

    One iteration:
    1. sample z ~ N(0, I), generate G(z);
    2. update D on real (label ``real_label``, one-sided smoothing) and fake (label 0);
    3. update G with the non-saturating loss -log D(G(z)).
    """

    def __init__(self, hparams: dict[str, Any], channels: int, image_size: int) -> None:
        super().__init__()
        self.save_hyperparameters({"hp": dict(hparams), "channels": channels,
                                   "image_size": image_size})
        self.hp = dict(hparams)
        self.automatic_optimization = False
        self.generator = Generator(hparams["latent_dim"], channels, image_size,
                                   hparams["generator_channels"])
        self.discriminator = Discriminator(channels, image_size,
                                           hparams["discriminator_channels"],
                                           hparams["leaky_slope"])

    def configure_optimizers(self):
        betas = (self.hp["beta1"], 0.999)
        opt_g = torch.optim.Adam(self.generator.parameters(), self.hp["lr_generator"], betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), self.hp["lr_discriminator"],
                                 betas=betas)
        return [opt_g, opt_d]

    def training_step(self, batch, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        x = batch[0] * 2 - 1
        z = torch.randn(len(x), self.hp["latent_dim"], device=x.device)
        fake = self.generator(z)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        real_logit, _ = self.discriminator(x)
        fake_logit, _ = self.discriminator(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            real_logit, torch.full_like(real_logit, self.hp["real_label"])
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()

        # (2) Update G: maximise log D(G(z)) (non-saturating form of min log(1 - D(G(z))))
        fake_logit, _ = self.discriminator(fake)
        loss_g = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()

        # mode-collapse watch: per-pixel spread of the generated batch vs the real batch
        diversity = fake.detach().std(dim=0).mean() / x.std(dim=0).mean().clamp_min(1e-6)
        self.log_dict({"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                       "d_real": torch.sigmoid(real_logit).mean().detach(),
                       "g_diversity": diversity},
                      on_step=False, on_epoch=True, prog_bar=True)
