"""The data module of the sequence-design families: one-hot sequences of the prepared
``data.npz`` (``medgen.tasks.sequence_design.prepare``), served from memory.

- dna_gan: the training split's one-hot windows (N, L, 4) float32; no validation loader
  (the val and test windows serve the generation evaluation, after training).
- sequence_predictor: (one-hot, measurement) pairs; for the 'linear' output the
  measurements are standardised with the training split's mean and standard deviation
  (stored in the data signature, so predictions come back in the measurement's units), for
  'sigmoid' they are used as they are and must lie in [0, 1].
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from medgen.data.training_data import TrainingData, content_hash
from medgen.errors import MedgenInputError
from medgen.seeding import EpochSeededSampler
from medgen.tasks.sequence_design.prepare import load_prepared

log = logging.getLogger(__name__)


def _loader(tensors: list[np.ndarray], batch_size: int, seed: int | None) -> DataLoader:
    """Mini-batches of float32 tensors: shuffled by (seed, epoch) when ``seed`` is given,
    in order otherwise; in training a last batch of one is dropped (the GAN's and the
    predictor's batch statistics need two)."""
    data = TensorDataset(*(torch.as_tensor(t, dtype=torch.float32) for t in tensors))
    if seed is None:
        return DataLoader(data, batch_size=max(batch_size, 1024), shuffle=False)
    return DataLoader(data, batch_size=batch_size, sampler=EpochSeededSampler(len(data), seed),
                      drop_last=len(data) % batch_size == 1)


def training_data(path: str | os.PathLike, hparams: dict[str, Any], seed: int,
                  family: str) -> TrainingData:
    """Loaders of a prepared ``data.npz`` for ``family`` (module docstring).

    ``dims``: ``length`` (bases). Signature: ``length``, ``channels`` (4) and ``alphabet``;
    for sequence_predictor also ``output``, ``target_mean``, ``target_sd`` and ``value``
    (what the measurement is).

    Raises
    ------
    MedgenInputError
        No training sequences; for sequence_predictor a file without measurements (source
        'fasta'), non-finite measurements, training measurements that are all equal
        ('linear') or outside [0, 1] ('sigmoid').
    """
    arrays, record = load_prepared(path)
    onehot, split = arrays["onehot"], arrays["split"].astype(str)
    train, val = split == "train", split == "val"
    if not train.any():
        raise MedgenInputError(f"{path}: no sequences with split 'train'")
    length = int(onehot.shape[1])
    signature: dict[str, Any] = {"length": length, "channels": 4, "alphabet": "ACGT"}
    reader = record.get("reader", {})
    provenance = {"data": record.get("provenance", {}), "source": record.get("source")}
    if family != "sequence_predictor":  # the generators learn the sequences alone
        if "generator_train" in arrays:  # the design check's low-measurement training set
            train = arrays["generator_train"].astype(bool)
            log.info("%s trains on the %d training sequences below the measurement cut",
                     family, int(train.sum()))
            if not train.any():
                raise MedgenInputError(f"{path}: no sequences in 'generator_train'")
        return TrainingData(
            train=_loader([onehot[train]], hparams["batch_size"], seed), val=None,
            dims={"length": length}, signature=signature,
            content_hash=content_hash(onehot, split), provenance=provenance)

    if "value" not in arrays:
        raise MedgenInputError(
            f"{path} holds sequences without measurements (source "
            f"'{record.get('source', 'fasta')}'); sequence_predictor trains on a "
            "measurement table: set sequence_design.source: table")
    value = arrays["value"].astype(np.float64)
    if not np.isfinite(value).all():
        raise MedgenInputError(f"{path}: measurements ('value') hold NaN or infinite values")
    if hparams["output"] == "sigmoid":
        outside = (value[train] < 0) | (value[train] > 1)
        if outside.any():
            raise MedgenInputError(
                f"{path}: {int(outside.sum())} training measurements lie outside [0, 1] "
                f"(e.g. {value[train][outside][0]:g}); the 'sigmoid' output predicts values "
                "in [0, 1]: set models.sequence_predictor.params.output: linear")
        mean, sd = 0.0, 1.0
    else:
        mean, sd = float(value[train].mean()), float(value[train].std())
        if not sd > 0:
            raise MedgenInputError(
                f"{path}: every training measurement is {mean:g}; nothing to predict")
    log.info("sequence_predictor targets: %s, training mean %.4g, sd %.4g (%s output)",
             reader.get("value", "value"), mean, sd, hparams["output"])
    target = ((value - mean) / sd).astype(np.float32)
    signature.update({"output": hparams["output"], "target_mean": mean, "target_sd": sd,
                      "value": str(reader.get("value", "value"))})
    return TrainingData(
        train=_loader([onehot[train], target[train]], hparams["batch_size"], seed),
        val=_loader([onehot[val], target[val]], hparams["batch_size"], None)
        if val.any() else None,
        dims={"length": length}, signature=signature,
        content_hash=content_hash(onehot, split, value), provenance=provenance)
