"""The data module of every expression-inference family (GGAN, D-GEX): standardised
(landmarks, targets) of the prepared file's training samples, served from memory."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from medgen.data.standardise import Standardiser
from medgen.data.training_data import TrainingData, content_hash
from medgen.errors import MedgenInputError
from medgen.seeding import EpochSeededSampler
from medgen.tasks.expression_inference.prepare import read_expression_inference_data


def standardised_loader(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None
                        ) -> DataLoader:
    """Mini-batches of (x, y) float32 tensors: shuffled by (seed, epoch) when ``seed`` is
    given, in order otherwise. A last batch of one sample is dropped in training (batch
    statistics and the discriminator need two)."""
    data = TensorDataset(torch.as_tensor(x, dtype=torch.float32),
                         torch.as_tensor(y, dtype=torch.float32))
    if seed is None:
        return DataLoader(data, batch_size=max(batch_size, 1024), shuffle=False)
    return DataLoader(data, batch_size=batch_size, sampler=EpochSeededSampler(len(data), seed),
                      drop_last=len(data) % batch_size == 1)


def training_data(path: str | os.PathLike, hparams: dict[str, Any], seed: int,
                  family: str) -> TrainingData:
    """Train (shuffled) and val loaders of a prepared expression-inference file.

    Landmarks and targets are standardised per gene on the training samples; the
    signature keeps the ordered gene names and those means and standard deviations, so a
    trained model maps profiles in the training data's units to targets in the same units.

    Raises MedgenInputError for a file without training samples or with non-finite values.
    """
    x, y, obs, uns = read_expression_inference_data(path)
    train = (obs["split"].astype(str) == "train").to_numpy()
    val = (obs["split"].astype(str) == "val").to_numpy()
    if not train.any():
        raise MedgenInputError(f"{path}: no samples with split 'train'")
    sx, sy = Standardiser.fit(x.to_numpy()[train]), Standardiser.fit(y.to_numpy()[train])
    zx, zy = sx.transform(x.to_numpy()), sy.transform(y.to_numpy())
    return TrainingData(
        train=standardised_loader(zx[train], zy[train], hparams["batch_size"], seed),
        val=standardised_loader(zx[val], zy[val], hparams["batch_size"], None) if val.any()
        else None,
        dims={"n_landmarks": x.shape[1], "n_targets": y.shape[1]},
        signature={
            "landmarks": list(map(str, x.columns)), "targets": list(map(str, y.columns)),
            "landmark_mean": sx.mean.tolist(), "landmark_sd": sx.sd.tolist(),
            "target_mean": sy.mean.tolist(), "target_sd": sy.sd.tolist(),
        },
        content_hash=content_hash(x.to_numpy(), y.to_numpy(), list(x.columns),
                                  list(y.columns), list(obs.index), obs["split"].tolist()),
        provenance={"data": uns["provenance"], "units": uns["units"]},
    )

