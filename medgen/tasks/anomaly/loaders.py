"""Training loader of prepared images (``train.npz``): the data module of every anomaly
family."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from medgen.data.training_data import TrainingData, content_hash
from medgen.errors import MedgenInputError
from medgen.nn.dcgan import n_doublings
from medgen.seeding import EpochSeededSampler
from medgen.tasks.anomaly.prepare import load_split, prepared_modalities

TRAIN_FILE = "train.npz"


def image_geometry(images: np.ndarray, data_path: str | os.PathLike) -> tuple[int, int]:
    """(channels, side) of images (N, C, S, S); MedgenInputError naming ``data_path`` unless
    the side is a power of two >= 8 (what the networks are built for)."""
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise MedgenInputError(f"{data_path}: expected images (N, C, S, S), got {images.shape}")
    try:
        n_doublings(images.shape[-1])
    except ValueError:
        raise MedgenInputError(
            f"{data_path}: image side {images.shape[-1]} is not a power of two >= 8; "
            "set anomaly.image_size (unit 'slice': anomaly.slice_size) accordingly"
        ) from None
    return images.shape[1], images.shape[-1]


def training_data(path: str | os.PathLike, hparams: dict[str, Any], seed: int,
                  family: str) -> TrainingData:
    """Shuffled (seeded by seed and epoch) batches of the normal training images in [0, 1]
    of ``path``: a prepared ``train.npz``, or the prepared folder holding it.

    No validation loader: the anomaly families are model-selected on the val split's
    scores after training, not on a loss during it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRAIN_FILE
    images = load_split(path)["images"]
    channels, size = image_geometry(images, path)
    dataset = TensorDataset(torch.as_tensor(images, dtype=torch.float32))
    loader = DataLoader(dataset, batch_size=hparams["batch_size"],
                        sampler=EpochSeededSampler(len(dataset), seed),
                        drop_last=len(dataset) > hparams["batch_size"])
    signature = {"channels": channels, "image_size": size, "spatial_dims": 2}
    modalities = prepared_modalities(path.parent)
    if modalities is not None:
        signature["modalities"] = modalities
    return TrainingData(
        train=loader, val=None,
        dims={"channels": channels, "image_size": size},
        signature=signature,
        content_hash=content_hash(images),
    )
