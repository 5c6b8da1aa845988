"""Training patches of a prepared synthesis folder: the data module of every 'synthesis'
family (``TaskSpec.training_data`` of the synthesis task).

Each epoch draws ``samples_per_volume`` cubic patches from every training subject, centred
on random in-mask voxels (MONAI's ``RandCropByPosNegLabeld`` with the mask as label and
precomputed foreground indices), from volumes decoded once into memory. The crops depend
on (seed, epoch, item) only, so a resumed run draws the same patches. Each item carries
the target's coverage (1 where the target is known; 0 outside a resampled target's field of
view), which the training losses and ``val_mae`` weight voxels by.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import FgBgToIndicesd, RandCropByPosNegLabeld, SpatialPadd
from torch.utils.data import DataLoader, Dataset

from medgen.data.training_data import TrainingData, content_hash
from medgen.errors import MedgenInputError
from medgen.seeding import EpochSeededSampler, epoch_seed
from medgen.tasks.synthesis.pairs import check_patch_fits
from medgen.tasks.synthesis.prepare import load_subject, read_manifest

VAL_PATCHES_PER_VOLUME = 16  # fixed validation crops per val subject (same every epoch)
KEYS = ("source", "target", "coverage")
# preparation settings stored with a model: what preparing new subjects for it needs
PREPARATION_KEYS = ("normalisation", "target_normalisation", "ct_window", "mask",
                    "resample_target")


class PatchDataset(Dataset):
    """(source (C, P, P, P), target (1, P, P, P), coverage (1, P, P, P)) patches centred
    inside the mask; coverage is 1.0 where the target is known, 0.0 outside its field of
    view (and in padding beyond the volume).

    Parameters
    ----------
    volumes
        Per subject {'source', 'target', 'mask'} arrays (channel first), optionally
        'coverage' (all ones when absent).
    patch_size
        Side P of the cubic patches (voxels).
    samples_per_volume
        Items per subject per epoch; item i is subject ``(i % len) // samples_per_volume``.
    seed
        With the item index (which carries the epoch, ``EpochOffsetSampler``) it seeds
        each crop.
    """

    def __init__(self, volumes: list[dict[str, np.ndarray]], patch_size: int,
                 samples_per_volume: int, seed: int) -> None:
        self.patch_size = patch_size
        self.samples_per_volume = samples_per_volume
        self.seed = seed
        pad = SpatialPadd(keys=[*KEYS, "mask"], spatial_size=[patch_size] * 3)
        indices = FgBgToIndicesd(keys="mask")
        # boxes smaller than a patch (a small brain after cropping) are padded with zeros
        self.volumes = [indices(pad({k: torch.as_tensor(_array(v, k)) for k in (*KEYS, "mask")}))
                        for v in volumes]
        self.crop = RandCropByPosNegLabeld(
            keys=list(KEYS), label_key="mask", spatial_size=[patch_size] * 3, pos=1.0,
            neg=0.0, num_samples=1, fg_indices_key="mask_fg_indices",
            bg_indices_key="mask_bg_indices")

    def __len__(self) -> int:
        return len(self.volumes) * self.samples_per_volume

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        subject = (index % len(self)) // self.samples_per_volume
        self.crop.set_random_state(seed=epoch_seed(self.seed, index))
        patch = self.crop(self.volumes[subject])[0]
        return tuple(torch.as_tensor(patch[k]).float() for k in KEYS)


def _array(volume: dict[str, np.ndarray], key: str) -> np.ndarray:
    # a target that covers the whole grid is stored without a coverage map
    if key == "coverage" and key not in volume:
        return np.ones_like(volume["mask"], dtype=np.uint8)
    return volume[key]


class EpochOffsetSampler(EpochSeededSampler):
    """Shuffled indices of epoch e shifted by e * n, so every epoch crops new patches."""

    def __iter__(self):
        return (self.epoch * self.n + i for i in super().__iter__())


def read_volumes(prepared: str | os.PathLike, split: str) -> tuple[list[str],
                                                                   list[dict[str, np.ndarray]]]:
    """(subjects, cached arrays) of one split of a prepared folder, in manifest order."""
    manifest = read_manifest(prepared)
    subjects = [s for s, info in manifest["subjects"].items() if info["split"] == split]
    return subjects, [load_subject(prepared, s) for s in subjects]


def patch_loader(volumes: list[dict[str, np.ndarray]], patch_size: int,
                 samples_per_volume: int, batch_size: int, seed: int) -> DataLoader:
    """Training patches of ``volumes``: ``samples_per_volume`` in-mask crops per subject
    (``PatchDataset``), reshuffled each epoch from ``seed`` (``EpochOffsetSampler``)."""
    dataset = PatchDataset(volumes, patch_size, samples_per_volume, seed)
    # a last batch of one patch breaks batch norm
    return DataLoader(dataset, batch_size=batch_size,
                      sampler=EpochOffsetSampler(len(dataset), seed),
                      drop_last=len(dataset) > batch_size)


def val_patch_loader(volumes: list[dict[str, np.ndarray]], patch_size: int, batch_size: int,
                     seed: int) -> DataLoader:
    """Fixed validation crops of ``volumes`` (``VAL_PATCHES_PER_VOLUME`` each, drawn from
    ``seed + 1``): the same patches every epoch, so val_mae compares epochs."""
    return DataLoader(PatchDataset(volumes, patch_size, VAL_PATCHES_PER_VOLUME, seed + 1),
                      batch_size=batch_size)


def training_data(path: str | os.PathLike, hparams: dict[str, Any], seed: int,
                  family: str) -> TrainingData:
    """Patch loaders of a prepared synthesis folder (``synthesis_prepare``).

    ``hparams``: ``patch_size``, ``samples_per_volume``, ``batch_size``. The validation
    loader holds fixed crops of the 'val' subjects (None without one).

    Raises
    ------
    MedgenInputError
        Not a prepared folder, no training subject, no target, or a patch larger than a
        volume.
    """
    path = Path(path)
    manifest = read_manifest(path)
    patch = int(hparams["patch_size"])
    subjects, train = read_volumes(path, "train")
    if not train:
        raise MedgenInputError(f"{path}: no subject in split 'train'")
    for subject, volume in zip(subjects, train):
        if "target" not in volume:
            raise MedgenInputError(f"{path}: training subject '{subject}' has no target")
        check_patch_fits(manifest["subjects"][subject]["shape"], patch, f"subject '{subject}'")
    loader = patch_loader(train, patch, hparams["samples_per_volume"], hparams["batch_size"],
                          seed)
    val_subjects, val = read_volumes(path, "val")
    val_loader = val_patch_loader(val, patch, hparams["batch_size"], seed) if val else None
    channels = int(train[0]["source"].shape[0])
    signature = {"channels": channels, "spatial_dims": 3, "modalities": manifest["sources"],
                 "target": manifest["target"], "level": manifest["level"],
                 "normalisation": manifest["settings"].get("normalisation"),
                 "target_normalisation": (manifest["settings"].get("target_normalisation")
                                          or manifest["settings"].get("normalisation")),
                 # how new subjects are prepared for this model (medgen.apply)
                 "preparation": {k: manifest["settings"].get(k) for k in PREPARATION_KEYS}}
    return TrainingData(
        train=loader, val=val_loader,
        dims={"channels": channels, "patch_size": patch},
        signature=signature,
        content_hash=content_hash(*[v[k] for v in train + val for k in sorted(v)],
                                  subjects, val_subjects),
        provenance={"prepared": str(path), "level": manifest["level"],
                    "context_models": manifest["context_models"],
                    "context_sha256": manifest.get("context_sha256", []),
                    "validation_subjects": val_subjects},
    )
