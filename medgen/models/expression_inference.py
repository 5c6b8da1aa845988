"""A trained expression-inference model as users apply it: landmark profiles in the
training data's units in, target genes in the same units out, matched by gene name.

Every 'expression_inference' family (GGAN, D-GEX) stores its network as ``network`` (the
generator for GGAN) and the data signature written by
``medgen.tasks.expression_inference.loaders.training_data``: ordered landmark and target genes and
the per-gene means and standard deviations fitted on the training samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medgen import checkpoint, registry
from medgen.data.gene_matching import average, match_genes
from medgen.data.standardise import Standardiser
from medgen.errors import MedgenInputError
from medgen.family import resolve

INFERENCE_BATCH = 4096  # profiles per forward pass: bounded memory, full matmul efficiency


class GeneInferenceModel:
    """Landmarks -> targets with the model's own standardisation.

    Attributes
    ----------
    network
        Standardised landmarks (N, l) -> standardised targets (N, t), eval mode.
    landmarks, targets
        Gene names in the network's input and output order.
    x_scaler, y_scaler
        Per-gene standardisation fitted on the training samples.
    """

    def __init__(self, network: nn.Module, landmarks: list[str], targets: list[str],
                 x_scaler: Standardiser, y_scaler: Standardiser, device: str = "cpu") -> None:
        self.network = network.to(device).eval()
        self.landmarks, self.targets = list(landmarks), list(targets)
        self.x_scaler, self.y_scaler = x_scaler, y_scaler
        self.y_sd32 = y_scaler.sd.astype(np.float32)
        self.y_mean32 = y_scaler.mean.astype(np.float32)
        self.device = device

    def align(self, profiles: pd.DataFrame, duplicates: str = "refuse") -> np.ndarray:
        """The landmark columns of ``profiles`` (samples x genes) in the model's order,
        matched by ``medgen.data.gene_matching.match_genes`` (a landmark named by several
        columns: refused, or averaged with ``duplicates: mean``).

        Raises MedgenInputError naming the first missing landmarks, duplicated landmark
        names, or non-finite values.
        """
        positions, missing = match_genes(profiles.columns, self.landmarks, duplicates,
                                         "the profiles")
        if missing:
            raise MedgenInputError(
                f"{len(missing)} of the model's {len(self.landmarks)} landmark genes are not "
                f"in the profiles (first: {missing[:5]}); was the model trained on another "
                "gene set?")
        x = average(profiles.to_numpy(dtype=np.float64), positions)
        if not np.isfinite(x).all():
            rows = profiles.index[~np.isfinite(x).all(axis=1)].tolist()
            raise MedgenInputError(f"NaN or infinite landmark values in profiles {rows[:5]}")
        return x

    @torch.no_grad()
    def predict_standardised(self, z: np.ndarray) -> np.ndarray:
        """Standardised landmarks (N, l) -> standardised targets (N, t), float32, in
        batches of INFERENCE_BATCH."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != len(self.landmarks):
            raise MedgenInputError(f"expected (profiles, {len(self.landmarks)}) landmark "
                                   f"values, got shape {z.shape}")
        out = np.empty((len(z), len(self.targets)), dtype=np.float32)
        for start in range(0, len(z), INFERENCE_BATCH):
            batch = torch.from_numpy(z[start:start + INFERENCE_BATCH]).to(self.device)
            out[start:start + len(batch)] = self.network(batch).cpu().numpy()
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Landmarks (N, l) in the training data's units -> targets (N, t) float32, same
        units."""
        return self.to_data_units(self.predict_standardised(self.x_scaler.transform(x)))

    def to_data_units(self, z: np.ndarray) -> np.ndarray:
        """Standardised targets (N, t) float32 -> the training data's units, in place: a
        float64 copy of 9,520 outputs per profile cost more than the network itself."""
        z *= self.y_sd32
        z += self.y_mean32
        return z


def scalers(signature: dict[str, Any]) -> tuple[Standardiser, Standardiser]:
    """The (landmark, target) standardisers stored in a checkpoint's data signature."""
    return tuple(Standardiser(np.asarray(signature[f"{side}_mean"], np.float64),
                              np.asarray(signature[f"{side}_sd"], np.float64))
                 for side in ("landmark", "target"))


def load_for_inference(checkpoint, device: str = "cpu") -> GeneInferenceModel:
    """The trained model of an expression-inference ``medgen.checkpoint.Checkpoint``: the
    family's stage plan rebuilds the network, which gets the stored ``network`` weights."""
    data = checkpoint.data
    dims = {"n_landmarks": len(data["landmarks"]), "n_targets": len(data["targets"])}
    stage = registry.get(checkpoint.family).stages[-1]
    plan = resolve(stage.plan).build(checkpoint.hparams, dims, {})
    network = plan.prediction_network()
    network.load_state_dict(checkpoint.state["network"])
    x_scaler, y_scaler = scalers(data)
    return GeneInferenceModel(network, data["landmarks"], data["targets"], x_scaler,
                              y_scaler, device)


def load(path, device: str = "cpu", data: dict[str, Any] | None = None) -> GeneInferenceModel:
    """The model in ``path`` (a ``model.pt``) when an expression-inference family wrote it;
    ``data``: signature keys to check (``landmarks``, ``targets``). MedgenInputError for
    another family's file, naming it, or another gene set."""
    ckpt = checkpoint.load(path, family=tuple(registry.names("expression_inference")),
                           data=data)
    return load_for_inference(ckpt, device)
