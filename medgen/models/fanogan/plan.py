"""Lightning plans for f-AnoGAN: stage 1 WGAN-GP, stage 2 izi_f encoder (G and critic frozen)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


from medgen.models.fanogan.networks import build_networks


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x_hat D(x_hat)||_2 - 1)^2] on random interpolates x_hat (Gulrajani 2017)."""
    alpha = torch.rand(len(real), 1, 1, 1, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out, _ = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class WGANGPPlan(L.LightningModule):
    """One critic update per batch; one generator update every ``n_critic`` batches.

    1. critic: minimise D(G(z)) - D(x) + gp_weight * GP;
    2. every n_critic-th batch, generator: minimise -D(G(z)).
    """

    def __init__(self, hparams: dict[str, Any], channels: int, image_size: int) -> None:
        super().__init__()
        self.save_hyperparameters({"hp": dict(hparams), "channels": channels,
                                   "image_size": image_size})
        self.hp = dict(hparams)
        self.automatic_optimization = False
        self.generator, self.critic, _ = build_networks(hparams, channels, image_size)

    def configure_optimizers(self):
        betas = (self.hp["beta1"], self.hp["beta2"])
        return [torch.optim.Adam(self.generator.parameters(), self.hp["lr"], betas=betas),
                torch.optim.Adam(self.critic.parameters(), self.hp["lr"], betas=betas)]

    def training_step(self, batch, batch_idx: int) -> None:
        opt_g, opt_c = self.optimizers()
        x = batch[0] * 2 - 1
        z = torch.randn(len(x), self.hp["latent_dim"], device=x.device)

        # (1) Update critic: minimise D(G(z)) - D(x) + lambda * (||grad D(x_hat)|| - 1)^2
        with torch.no_grad():
            fake = self.generator(z)
        real_out, _ = self.critic(x)
        fake_out, _ = self.critic(fake)
        wasserstein = real_out.mean() - fake_out.mean()
        gp = gradient_penalty(self.critic, x, fake)
        loss_c = -wasserstein + self.hp["gp_weight"] * gp
        opt_c.zero_grad()
        self.manual_backward(loss_c)
        opt_c.step()
        self.log_dict({"wasserstein": wasserstein.detach(), "gp": gp.detach()},
                      on_step=False, on_epoch=True, prog_bar=True)

        # (2) Update G every n_critic critic steps: minimise -D(G(z))
        if (batch_idx + 1) % self.hp["n_critic"] == 0:
            for p in self.critic.parameters():
                p.requires_grad_(False)
            out, _ = self.critic(self.generator(z))
            loss_g = -out.mean()
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()
            for p in self.critic.parameters():
                p.requires_grad_(True)
            self.log("loss_g", loss_g.detach(), on_step=False, on_epoch=True)


def izif_loss(encoder, generator, critic, x: torch.Tensor, kappa: float):
    """izi_f: MSE(x, G(E(x))) + kappa * MSE(f(x), f(G(E(x)))) per image -> (N,), (N,), recon."""
    z = encoder(x)[0]
    recon = generator(z)
    _, f_real = critic(x)
    _, f_fake = critic(recon)
    a_r = ((x - recon) ** 2).flatten(1).mean(1)
    a_d = ((f_real - f_fake) ** 2).mean(1)
    return a_r, kappa * a_d, recon


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
