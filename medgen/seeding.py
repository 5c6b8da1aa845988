"""Seeds: every random draw of training and scoring depends on (seed, epoch) only.

Kept apart from ``medgen.train`` so that data loaders (``medgen.data``) can shuffle
reproducibly without importing the trainer.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch of one run: distinct per (seed, epoch), in [0, 2**31 - 1)."""
    return (seed * 1_000_003 + epoch) % (2**31 - 1)


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class EpochSeededSampler(torch.utils.data.Sampler[int]):
    """Shuffles ``range(n)`` with a generator seeded by (seed, epoch); Lightning calls
    ``set_epoch``, so a run resumed at an epoch boundary sees the same order."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n
