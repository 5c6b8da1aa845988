"""Per-gene standardisation fitted on training data only, kept with a model and inverted on
its outputs, so predictions come back in the training data's units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medgen.errors import MedgenInputError


@dataclass(frozen=True)
class Standardiser:
    """z = (x - mean) / sd per gene; genes constant in training get sd 1 (offset only)."""

    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray) -> Standardiser:
        """Fit on (samples, genes); MedgenInputError for NaN or infinite values."""
        train = np.asarray(train, dtype=np.float64)
        if not np.isfinite(train).all():
            raise MedgenInputError("training values hold NaN or infinite entries")
        sd = train.std(axis=0)
        return cls(train.mean(axis=0), np.where(sd > 0, sd, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.sd

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.sd + self.mean
