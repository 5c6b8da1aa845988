"""Lightning plan of the context-aware synthesis GAN: one discriminator and one generator
update per batch of (source, target) patches (``AdversarialPlan`` gives the step order).
With adversarial_weight 0 the discriminator is never trained: the 'l1_only' ablation.

Model selection (``select_on_val``): after each epoch's validation the plan keeps a copy of
both networks when the epoch's ``val_mae`` (the validation subject's fixed patches) is the
lowest so far (ties: the earliest epoch); ``export_state`` then returns that copy instead of
the last epoch's networks. The copy, its epoch and its ``val_mae`` travel in every Lightning
checkpoint (``SELECTION_KEY``), so a run resumed from ``last.ckpt`` exports exactly what an
uninterrupted run does.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
import torch.nn.functional as F

from medgen.models.adversarial import AdversarialPlan
from medgen.models.context_gan import check_hparams
from medgen.models.context_gan.module import (
    build_networks,
    centre,
    fill_uncovered,
    generator_loss,
)

log = logging.getLogger(__name__)
SELECTION_KEY = "medgen_selection"  # Lightning checkpoint entry: the kept networks
NETWORKS = ("generator", "discriminator")


class ContextGANPlan(AdversarialPlan):
    """Training of one auto-context level on patches of ``channels`` source channels."""

    def __init__(self, hparams: dict[str, Any], channels: int, patch_size: int) -> None:
        super().__init__(hparams, channels=channels, patch_size=patch_size)
        # the config was checked when validated; plans built from code are checked here
        check_hparams({**hparams, "patch_size": patch_size})
        self.generator, self.discriminator = build_networks(hparams, channels)
        self.margin = self.generator.margin
        # models trained before the option existed exported their last epoch
        self.select_on_val = bool(hparams.get("select_on_val", False))
        # {'epoch', 'val_mae', 'state': {network: state dict}} of the best epoch so far
        self.best: dict[str, Any] | None = None
        self._val_error: torch.Tensor | None = None  # (sum |error|, voxels) of this epoch

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
        # coverage: 0 where the target is unknown (outside a resampled target's FOV)
        source, target, coverage = batch
        return (source, centre(target, self.margin), centre(coverage, self.margin)), None

    def discriminator_loss(self, data, z):
        # (1) Update D: maximise log D(y) + log(1 - D(G(x)))
        x, y, w = data
        with torch.no_grad():
            fake = fill_uncovered(self.generator(x), y, w)
        real, synthetic = self.discriminator(y), self.discriminator(fake)
        loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(synthetic, torch.zeros_like(synthetic)))
        return loss, {"loss_d": loss.detach()}, None

    def generator_loss(self, data, z, cache):
        # (2) Update G: l2 * L2 + l1 * L1 + gdl * GDL + adversarial * BCE(D(G(x)), 1)
        x, y, w = data
        terms = generator_loss(self.generator(x), y,
                               self.discriminator if self.discriminator_active else None,
                               self.hp, weight=w)
        logs = {"l2": terms.l2.detach(), "l1": terms.l1.detach(), "gdl": terms.gdl.detach(),
                "adversarial": terms.adversarial.detach()}
        return terms.total, logs

    def validation_step(self, batch, batch_idx):
        x, y, w = batch
        w = centre(w, self.margin)  # voxels outside the target's field of view do not count
        error = (self.generator(x) - centre(y, self.margin)).abs() * w
        batch_error = torch.stack([error.sum(dtype=torch.float64),
                                   w.sum(dtype=torch.float64)])
        self._val_error = batch_error if self._val_error is None else self._val_error + batch_error

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's ``val_mae`` (mean absolute error over the covered voxels of the
        fixed validation patches) and keep the networks when it is the lowest so far."""
        if self._val_error is None:
            return
        total, voxels = self.trainer.strategy.reduce(self._val_error, reduce_op="sum")
        self._val_error = None
        val_mae = float(total / voxels)
        self.log("val_mae", val_mae, prog_bar=True)
        if self.trainer.sanity_checking or not self.select_on_val or not math.isfinite(val_mae):
            return
        if self.best is None or val_mae < self.best["val_mae"]:  # ties: the earliest stays
            self.best = {"epoch": int(self.current_epoch), "val_mae": val_mae,
                         "state": {name: _copy(getattr(self, name).state_dict())
                                   for name in NETWORKS}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.best is not None:
            checkpoint[SELECTION_KEY] = self.best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(SELECTION_KEY)
        self.best = None if saved is None else {
            "epoch": int(saved["epoch"]), "val_mae": float(saved["val_mae"]),
            "state": {name: _copy(sd) for name, sd in saved["state"].items()}}

    def on_fit_end(self) -> None:
        if self.select_on_val and self.best is None:
            log.info("select_on_val: no validation subject (or no finite val_mae): the last "
                     "epoch's generator is exported")

    def selection(self) -> dict[str, Any]:
        """Which epoch's networks ``export_state`` returns (written to ``model.pt``'s
        provenance as ``model_selection``): ``epoch`` (0-based, as the ``epoch`` column of
        ``metrics.csv``), its ``val_mae`` (None when not selected on it), ``epochs_trained``
        and ``rule``: 'lowest val_mae', or 'last epoch' with the ``reason``."""
        trained = int(self.trainer.current_epoch) if self._trainer is not None else None
        if self.best is not None:
            return {"rule": "lowest val_mae", "epoch": self.best["epoch"],
                    "val_mae": self.best["val_mae"], "epochs_trained": trained}
        reason = ("no validation data (or no finite val_mae)" if self.select_on_val
                  else "select_on_val is false")
        return {"rule": "last epoch", "epoch": None if trained is None else trained - 1,
                "val_mae": None, "epochs_trained": trained, "reason": reason}

    def export_provenance(self) -> dict[str, Any]:
        """Added to ``model.pt``'s provenance by ``medgen.train.train_model``."""
        return {"model_selection": self.selection()}

    def restore_selected(self) -> None:
        """Load the kept networks into ``generator`` and ``discriminator`` (in-memory
        fits, e.g. the 'generator_l1' baseline); no-op without a selection."""
        if self.best is not None:
            for name in NETWORKS:
                getattr(self, name).load_state_dict(self.best["state"][name])

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """The networks of the selected epoch (``select_on_val``), else of the last one."""
        if self.best is not None:
            return {name: dict(sd) for name, sd in self.best["state"].items()}
        return {name: getattr(self, name).state_dict() for name in NETWORKS}


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (later steps must not change it)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
