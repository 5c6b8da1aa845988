"""Lightning plans for f-AnoGAN: stage 1 WGAN-GP, stage 2 izi_f encoder (G and critic frozen)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from medgen.models.adversarial import WGANGPPlan as AdversarialWGANGPPlan
from medgen.models.fanogan.module import build_networks, izif_loss


class WGANGPPlan(AdversarialWGANGPPlan):
    """Stage 1: the shared WGAN-GP plan (``medgen.models.adversarial.WGANGPPlan``) on
    f-AnoGAN's generator and critic (images in [0, 1], scaled to [-1, 1])."""

    def __init__(self, hparams: dict[str, Any], channels: int, image_size: int) -> None:
        super().__init__(hparams, channels=channels, image_size=image_size)
        # the encoder is built and dropped: its initialisation draws keep the generator's
        # and critic's initial weights the same as the encoder stage's networks
        self.generator, self.critic, _ = build_networks(hparams, channels, image_size)


class EncoderPlan(L.LightningModule):
    """izi_f encoder training: minimise A_R + kappa * A_D with G and the critic frozen."""

    def __init__(self, hparams: dict[str, Any], channels: int, image_size: int,
                 gan_state: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"hp": dict(hparams), "channels": channels,
                                   "image_size": image_size})
        self.hp = dict(hparams)
        self.generator, self.critic, self.encoder = build_networks(hparams, channels, image_size)
        if gan_state is not None:
            self.generator.load_state_dict(gan_state["generator"])
            self.critic.load_state_dict(gan_state["critic"])
        for module in (self.generator, self.critic):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any], previous: dict) -> EncoderPlan:
        """Stage 2: the encoder on the GAN that stage 1 exported (``previous``)."""
        return cls(hparams, dims["channels"], dims["image_size"], previous)

    def train(self, mode: bool = True):
        super().train(mode)
        self.generator.eval()  # frozen: batch norm keeps G's running statistics
        self.critic.eval()
        return self

    def configure_optimizers(self):
        params = self.encoder.parameters()
        if self.hp["encoder_optimizer"] == "rmsprop":
            return torch.optim.RMSprop(params, self.hp["encoder_lr"])
        return torch.optim.Adam(params, self.hp["encoder_lr"])

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] * 2 - 1
        a_r, a_d, _ = izif_loss(self.encoder, self.generator, self.critic, x, self.hp["kappa"])
        loss = (a_r + a_d).mean()
        self.log_dict({"izif": loss.detach(), "izif_residual": a_r.mean().detach()},
                      on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"encoder": self.encoder.state_dict()}
