"""Baselines of the synthesis task, in the same harness (prepared folder, split, metrics):

- a constant: the median of the training subjects' in-mask target intensities, everywhere in
  the mask (the MAE-optimal constant; the trivial floor every model must clear);
- voxel-wise regression on 3x3x3 neighbourhoods of every source channel (scikit-learn's
  ``LinearRegression`` and ``HistGradientBoostingRegressor``), fitted on in-mask voxels
  sampled from the training subjects: what a model without spatial context beyond one
  voxel's neighbours achieves (the issue's reference numbers);
- a MONAI ``UNet`` trained with L1 on the same patches as the GAN (Lightning), applied
  with the same sliding-window inference;
- the context-aware GAN's own generator trained with L1 only (no adversarial term, no GDL,
  one level: no auto-context), with the configured preset's architecture, patches and
  budget: what the adversarial term, the GDL and auto-context add (Nie et al. 2017's
  ablation). When the preset selects on validation (``select_on_val``) it is selected as
  the family is: on the validation subject's fixed patches, lowest ``val_mae``; without a
  validation subject it keeps its last epoch (logged).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from monai.networks.nets import UNet
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from torch.utils.data import DataLoader

from medgen.models.context_gan.module import weighted_mean
from medgen.models.context_gan.plan import ContextGANPlan
from medgen.models.synthesis import Synthesiser
from medgen.seeding import seed_all
from medgen.tasks.synthesis.loaders import (
    EpochOffsetSampler,
    PatchDataset,
    patch_loader,
    val_patch_loader,
)
from medgen.tasks.synthesis.prepare import scored_mask
from medgen.train import fit_in_memory

log = logging.getLogger(__name__)
OFFSETS = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
VOXELS_PER_SUBJECT = 20_000  # sampled in-mask training voxels per subject
PREDICT_CHUNK = 500_000  # voxels featurised at a time (bounds memory: ~54 floats each)
# what turns a context_gan preset into its L1-only ablation: every other loss term off, and
# one level (auto-context would feed it its own output, which is not the ablation)
L1_ONLY = {"l1_weight": 1.0, "l2_weight": 0.0, "gdl_weight": 0.0, "adversarial_weight": 0.0,
           "auto_context_levels": 1}


def fit_constant(volumes: list[dict[str, np.ndarray]]) -> float:
    """Median of the in-mask target voxels of ``volumes`` (training subjects: 'target' and
    'mask', each (1, X, Y, Z), normalised; voxels outside a target's field of view,
    'coverage' 0, left out): the constant with the lowest training MAE."""
    return float(np.median(np.concatenate(
        [v["target"][0][scored_mask(v)] for v in volumes])))


def predict_constant(value: float, mask: np.ndarray) -> np.ndarray:
    """(X, Y, Z) volume of ``value`` inside ``mask``, 0 outside (as every method's output)."""
    return np.where(mask != 0, np.float32(value), np.float32(0))


def neighbourhood_features(source: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """(N, C * 27) intensities of the 3x3x3 neighbourhoods of ``coords`` (N, 3) in
    ``source`` (C, X, Y, Z); zero beyond the volume edge."""
    padded = np.pad(source, [(0, 0)] + [(1, 1)] * 3)
    centre = coords + 1
    columns = [padded[c][tuple((centre + o).T)] for c in range(source.shape[0])
               for o in OFFSETS]
    return np.stack(columns, axis=1).astype(np.float32)


def fit_voxel_regression(volumes: list[dict[str, np.ndarray]],
                         kind: Literal["linear", "hgb"], seed: int = 0,
                         voxels_per_subject: int = VOXELS_PER_SUBJECT):
    """Fit a voxel-wise regressor target ~ 3x3x3 source neighbourhood.

    Parameters
    ----------
    volumes
        Training subjects: {'source' (C, X, Y, Z), 'target' (1, X, Y, Z), 'mask'
        (1, X, Y, Z)}, normalised (a prepared synthesis folder).
    kind
        'linear' (ordinary least squares) or 'hgb' (histogram gradient boosting).
    seed
        Voxel sampling and boosting seed.

    Returns
    -------
    The fitted scikit-learn estimator.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for v in volumes:
        coords = np.argwhere(scored_mask(v))  # the target's known voxels only
        pick = coords[rng.choice(len(coords), min(voxels_per_subject, len(coords)),
                                 replace=False)]
        xs.append(neighbourhood_features(v["source"], pick))
        ys.append(v["target"][0][tuple(pick.T)])
    model = (LinearRegression() if kind == "linear"
             else HistGradientBoostingRegressor(random_state=seed))
    return model.fit(np.concatenate(xs), np.concatenate(ys))


def predict_voxel_regression(model, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(X, Y, Z) prediction of a fitted voxel regressor inside ``mask`` (0 outside)."""
    coords = np.argwhere(mask != 0)
    out = np.zeros(mask.shape, np.float32)
    for start in range(0, len(coords), PREDICT_CHUNK):
        chunk = coords[start:start + PREDICT_CHUNK]
        out[tuple(chunk.T)] = model.predict(neighbourhood_features(source, chunk))
    return out


class UNetL1Plan(L.LightningModule):
    """MONAI ``UNet`` (3D, residual units) trained with L1 on (source, target) patches.

    With validation patches it keeps the weights of the epoch with the lowest ``val_mae``
    (ties: the earliest), the rule the synthesis family and 'generator_l1' follow
    (``select_on_val``), so that every trained method is selected alike.
    """

    def __init__(self, in_channels: int, channels: list[int], lr: float) -> None:
        super().__init__()
        self.net = UNet(spatial_dims=3, in_channels=in_channels, out_channels=1,
                        channels=channels, strides=[2] * (len(channels) - 1), num_res_units=1)
        self.lr = lr
        self.best: dict[str, Any] | None = None  # {'epoch', 'val_mae', 'state'}
        self._val_error: torch.Tensor | None = None

    def training_step(self, batch, batch_idx):
        source, target, coverage = batch  # coverage 0: outside the target's field of view
        loss = weighted_mean((self.net(source) - target).abs(), coverage)
        self.log("l1", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        source, target, coverage = batch
        error = (self.net(source) - target).abs() * coverage
        step = torch.stack([error.sum(dtype=torch.float64), coverage.sum(dtype=torch.float64)])
        self._val_error = step if self._val_error is None else self._val_error + step

    def on_validation_epoch_end(self) -> None:
        if self._val_error is None:
            return
        total, voxels = self._val_error
        self._val_error = None
        val_mae = float(total / voxels)
        self.log("val_mae", val_mae)
        if self.trainer.sanity_checking or not math.isfinite(val_mae):
            return
        if self.best is None or val_mae < self.best["val_mae"]:
            state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.best = {"epoch": int(self.current_epoch), "val_mae": val_mae, "state": state}

    def selection(self) -> dict[str, Any]:
        """The kept epoch, as ``ContextGANPlan.selection`` reports it."""
        trained = int(self.trainer.current_epoch)
        if self.best is not None:
            return {"rule": "lowest val_mae", "epoch": self.best["epoch"],
                    "val_mae": self.best["val_mae"], "epochs_trained": trained}
        return {"rule": "last epoch", "epoch": trained - 1, "val_mae": None,
                "epochs_trained": trained, "reason": "no validation patches"}

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.lr)


def train_unet_l1(volumes: list[dict[str, np.ndarray]], hparams: dict[str, Any], seed: int,
                  num_threads: int | None = None,
                  val_volumes: list[dict[str, np.ndarray]] | None = None) -> Synthesiser:
    """Train the L1 UNet baseline on patches of ``volumes`` (as the GAN's loader draws
    them) and return it ready for ``Synthesiser.predict``.

    ``hparams``: ``channels`` (UNet widths, e.g. [16, 32, 64, 128]), ``patch_size``
    (divisible by 2 ** (len(channels) - 1)), ``samples_per_volume``, ``batch_size``,
    ``max_epochs``, ``lr``. ``val_volumes``: validation subjects; given, the epoch with the
    lowest ``val_mae`` on their fixed patches (``val_patch_loader``) is kept, as the family
    keeps its own (``select_on_val``); without them the last epoch. The choice is in the
    returned ``Synthesiser.data['model_selection']``.
    """
    dataset = PatchDataset(volumes, hparams["patch_size"], hparams["samples_per_volume"], seed)
    loader = DataLoader(dataset, batch_size=hparams["batch_size"],
                        sampler=EpochOffsetSampler(len(dataset), seed))
    in_channels = int(volumes[0]["source"].shape[0])
    seed_all(seed)  # the initial weights too: the same seed gives the same baseline
    plan = UNetL1Plan(in_channels, list(hparams["channels"]), hparams["lr"])
    val_loader = (val_patch_loader(val_volumes, hparams["patch_size"], hparams["batch_size"],
                                   seed) if val_volumes else None)
    fit_in_memory(plan, loader, hparams["max_epochs"], seed, num_threads, val_loader=val_loader)
    selection = plan.selection()
    if plan.best is not None:
        plan.net.load_state_dict(plan.best["state"])
    log.info("unet_l1: kept epoch %s of %s (%s, val_mae %s)", selection["epoch"],
             selection["epochs_trained"], selection["rule"], selection["val_mae"])
    return Synthesiser(plan.net.eval(), 0, {"channels": in_channels, "family": "unet_l1",
                                            "model_selection": selection})


def generator_l1_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """A context_gan preset's hyperparameters with its losses replaced by L1 alone
    (``L1_ONLY``): same architecture, patches, epochs, batch and learning rate."""
    return {**hparams, **L1_ONLY}


def train_generator_l1(volumes: list[dict[str, np.ndarray]], hparams: dict[str, Any],
                       seed: int, num_threads: int | None = None,
                       val_volumes: list[dict[str, np.ndarray]] | None = None) -> Synthesiser:
    """Train the context_gan generator with L1 only on patches of ``volumes`` and return it
    ready for ``Synthesiser.predict`` (the same sliding-window inference as the GAN).

    Parameters
    ----------
    volumes
        Training subjects of a level-1 prepared folder: {'source' (C, X, Y, Z), 'target'
        (1, X, Y, Z), 'mask' (1, X, Y, Z)}, normalised.
    hparams
        The configured context_gan hyperparameters (preset plus overrides, with
        ``training.max_epochs`` applied): ``patch_size``, ``padding``,
        ``generator_channels``, ``generator_kernels``, ``norm``, ``samples_per_volume``,
        ``batch_size``, ``lr``, ``beta1``, ``max_epochs``; the loss weights are replaced
        (``generator_l1_hparams``).
    seed
        Initialisation and patch sampling.
    val_volumes
        Validation subjects (as ``volumes``). With ``select_on_val`` in ``hparams`` the
        generator of the epoch with the lowest ``val_mae`` on their fixed patches is kept
        (the crops ``medgen.train`` validates the family on); without them, the last
        epoch's. The choice is in the returned ``Synthesiser.data['model_selection']``.

    Raises
    ------
    MedgenInputError
        A patch size the generator's valid convolutions leave no output for
        (``medgen.models.context_gan.check_hparams``).
    """
    hp = generator_l1_hparams(hparams)
    loader = patch_loader(volumes, hp["patch_size"], hp["samples_per_volume"],
                          hp["batch_size"], seed)
    in_channels = int(volumes[0]["source"].shape[0])
    seed_all(seed)  # the initial weights too: the same seed gives the same baseline
    plan = ContextGANPlan(hp, in_channels, hp["patch_size"])
    val_loader = None
    if plan.select_on_val and val_volumes:
        # the same fixed crops as the family's validation loader
        val_loader = val_patch_loader(val_volumes, hp["patch_size"], hp["batch_size"], seed)
    fit_in_memory(plan, loader, hp["max_epochs"], seed, num_threads, val_loader=val_loader)
    plan.restore_selected()
    selection = plan.selection()
    log.info("generator_l1: kept epoch %s of %s (%s, val_mae %s)", selection["epoch"],
             selection["epochs_trained"], selection["rule"], selection["val_mae"])
    return Synthesiser(plan.generator.eval(), plan.generator.margin,
                       {"channels": in_channels, "family": "generator_l1",
                        "model_selection": selection})
