"""Training plan for the autoencoder baseline: mean squared reconstruction error on [0, 1]."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from medgen.models.convae.module import build_network


class ConvAEPlan(L.LightningModule):
    """One Adam step per batch on MSE(AE(x), x)."""

    def __init__(self, hparams: dict[str, Any], channels: int, image_size: int) -> None:
        super().__init__()
        self.save_hyperparameters({"hp": dict(hparams), "channels": channels,
                                   "image_size": image_size})
        self.hp = dict(hparams)
        self.autoencoder = build_network(hparams, channels, image_size)

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any], previous: dict) -> ConvAEPlan:
        return cls(hparams, dims["channels"], dims["image_size"])

    def configure_optimizers(self):
        return torch.optim.Adam(self.autoencoder.parameters(), self.hp["lr"])

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0]
        loss = ((self.autoencoder(x) - x) ** 2).mean()
        self.log("loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"autoencoder": self.autoencoder.state_dict()}
