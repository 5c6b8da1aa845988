"""Lightning plan for D-GEX: mean squared error, SGD with momentum (as the paper)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from medgen.models.dgex.module import DGEXNet


class DGEXPlan(L.LightningModule):
    """One SGD step per batch of (landmarks, targets); validation MAE when a val split
    exists (standardised units)."""

    def __init__(self, hparams: dict[str, Any], n_landmarks: int, n_targets: int) -> None:
        super().__init__()
        self.save_hyperparameters({"hparams": dict(hparams), "n_landmarks": n_landmarks,
                                   "n_targets": n_targets})
        self.hp = dict(hparams)
        self.net = DGEXNet.from_hparams(hparams, n_landmarks, n_targets)

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any], previous: dict) -> DGEXPlan:
        return cls(hparams, dims["n_landmarks"], dims["n_targets"])

    def prediction_network(self) -> torch.nn.Module:
        """Standardised landmarks (N, l) -> standardised targets (N, t); its weights are
        exported as ``network``."""
        return self.net

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self.net(x), y)
        self.log("loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_mae", (self.net(x) - y).abs().mean(), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=self.hp["lr"],
                               momentum=self.hp["momentum"])

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"network": self.net.state_dict()}
