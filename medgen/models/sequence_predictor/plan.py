"""Lightning plan for the sequence predictor: mean squared error, Adam (as the paper)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from medgen.models.sequence_predictor.module import build_network


class PredictorPlan(L.LightningModule):
    """One Adam step per batch of (one-hot (N, L, 4), target (N,)); targets standardised
    on the training split for the 'linear' output (the loaders do it), in [0, 1] for
    'sigmoid'. Validation MSE in the same scale when a val split exists."""

    def __init__(self, hparams: dict[str, Any], length: int) -> None:
        super().__init__()
        self.save_hyperparameters({"hp": dict(hparams), "length": length})
        self.hp = dict(hparams)
        self.net = build_network(hparams)

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any], previous: dict
              ) -> PredictorPlan:
        return cls(hparams, dims["length"])

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self.net(x), y)
        self.log("loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_mse", F.mse_loss(self.net(x), y), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hp["lr"])

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"network": self.net.state_dict()}
