"""Lightning plans for f-AnoGAN: stage 1 WGAN-GP, stage 2 izi_f encoder (G and critic frozen)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from medgen.models.adversarial import AdversarialPlan
from medgen.models.fanogan.module import build_networks, izif_loss


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x_hat D(x_hat)||_2 - 1)^2] on random interpolates x_hat (Gulrajani 2017)."""
    alpha = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out, _ = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class WGANGPPlan(AdversarialPlan):
    """One critic update per batch; one generator update every ``n_critic`` batches.

    1. critic: minimise D(G(z)) - D(x) + gp_weight * GP;
    2. every n_critic-th batch, generator: minimise -D(G(z)).
    """

    def __init__(self, hparams: dict[str, Any], channels: int, image_size: int) -> None:
        super().__init__(hparams, channels=channels, image_size=image_size)
        self.generator_every = hparams["n_critic"]
        # the encoder is built and dropped: its initialisation draws keep the generator's
        # and critic's initial weights the same as the encoder stage's networks
        self.generator, self.critic, _ = build_networks(hparams, channels, image_size)

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
