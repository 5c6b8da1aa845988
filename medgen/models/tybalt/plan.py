"""Lightning training plan for Tybalt: KL warm-up, Adam, per-epoch loss terms.

Kept lean because at Tybalt's batch size (50) a step is a few milliseconds and
per-step framework overhead shows: loss terms are summed into one tensor on the device
and logged once per epoch instead of calling ``self.log`` at every step.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch

from medgen.models.tybalt.module import TybaltVAE

LOSS_TERMS = ("reconstruction", "kl", "total")


def kl_weight(epoch: int, beta: float, kappa: float) -> float:
    """Warm-up of the KL weight: 0 at epoch 0, rising by kappa per epoch up to 1, times beta.

    As the reference's callback (beta starts at 0, ``beta += kappa`` after each epoch while
    below 1), written as a function of the epoch so that a resumed run gets the same value.
    """
    if kappa <= 0:
        return float(beta)
    return float(beta) * min(1.0, epoch * float(kappa))


def make_adam(params: Any, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused (or multi-tensor) kernel: the per-parameter loop of the default
    implementation is about 30% of a Tybalt step on CPU."""
    params = list(params)
    if "fused" in inspect.signature(torch.optim.Adam).parameters:
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, ValueError):  # fused unsupported for this device/dtype
            pass
    return torch.optim.Adam(params, lr=lr, foreach=True)


class TybaltPlan(L.LightningModule):
    """Trains a :class:`TybaltVAE`.

    Each training step:
    1. kl_weight = beta * min(1, epoch * kappa) (warm-up, fixed within an epoch);
    2. loss = sum_genes BCE(x, decode(z)) + kl_weight * KL(q(z | x) || N(0, I)), z ~ q(z | x);
    3. one Adam step.

    Parameters
    ----------
    n_genes, n_conditions
        Input size and categories of the conditioning label (0: plain VAE).
    hparams
        The resolved preset (plain values only, so checkpoints load with
        ``weights_only=True``).
    """

    def __init__(self, n_genes: int, n_conditions: int, hparams: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.hp = dict(hparams)
        self.module = TybaltVAE.from_hparams(n_genes, n_conditions, hparams)
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    @classmethod
    def build(cls, hparams: dict[str, Any], dims: dict[str, Any], previous: dict) -> TybaltPlan:
        """The plan for ``dims`` (n_genes, n_conditions); one stage: no ``previous``."""
        return cls(n_genes=dims["n_genes"], n_conditions=dims["n_conditions"], hparams=hparams)

    def export_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"vae": self.module.state_dict()}

    @property
    def current_kl_weight(self) -> float:
        return kl_weight(self.current_epoch, self.hp["beta"], self.hp["kappa"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_adam(self.module.parameters(), self.hp["lr"])

    # -- steps ------------------------------------------------------------------------------
    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, c = batch
        terms = self.module.loss(x, c, kl_weight=self.current_kl_weight)
        self._accumulate(stage, terms, x.shape[0])
        return terms.total

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        self._step(batch, "val")

    # -- per-epoch logging ------------------------------------------------------------------
    def _accumulate(self, stage: str, terms: Any, n: int) -> None:
        # One stacked tensor per stage: no host sync and no logger call per step.
        values = torch.stack([getattr(terms, name).detach() for name in LOSS_TERMS]) * n
        self._sums[stage] = self._sums[stage] + values if stage in self._sums else values
        self._counts[stage] = self._counts.get(stage, 0) + n

    def _log_epoch(self, stage: str) -> None:
        if stage not in self._sums:
            return
        means = (self._sums.pop(stage) / self._counts.pop(stage)).tolist()
        metrics = {f"{stage}_{name}": value for name, value in zip(LOSS_TERMS, means)}
        if stage == "train":
            metrics["kl_weight"] = self.current_kl_weight
        self.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_epoch("val")
        else:
            self._sums.pop("val", None)
            self._counts.pop("val", None)
