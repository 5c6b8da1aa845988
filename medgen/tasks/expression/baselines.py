"""Linear baselines for a latent space: PCA, ICA (FastICA) and NMF from scikit-learn.

Each is fitted on the training split at the model's latent dimension, seeded, and exposes
``encode`` (samples -> latent) and ``reconstruct`` (samples -> expression), so every metric
treats them and the VAE the same way.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
from sklearn.decomposition import NMF, PCA, FastICA
from sklearn.exceptions import ConvergenceWarning

from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

BaselineName = Literal["pca", "ica", "nmf"]
BASELINES: tuple[str, ...] = ("pca", "ica", "nmf")
# FastICA converges in under 200 iterations on TCGA top-1,000 genes at 100 components;
# NMF keeps scikit-learn's default (200): each iteration costs ~0.2 s there, and further
# iterations barely change its reconstruction error.
ICA_MAX_ITER = 500
NMF_MAX_ITER = 200


class Baseline:
    """A fitted scikit-learn decomposition with a common interface.

    Parameters
    ----------
    name
        'pca', 'ica' (FastICA) or 'nmf'.
    n_components
        Latent dimension; capped at min(train samples, genes), with a warning.
    seed
        random_state of the decomposition.
    """

    def __init__(self, name: str, n_components: int, seed: int) -> None:
        if name not in BASELINES:
            raise MedgenInputError(
                f"config key 'evaluation.baselines' has {name!r}; "
                f"expected any of: {', '.join(BASELINES)}"
            )
        self.name = name
        self.n_components = n_components
        self.seed = seed
        self.model: PCA | FastICA | NMF | None = None

    def fit(self, x_train: np.ndarray) -> Baseline:
        k = min(self.n_components, *x_train.shape)
        if k < self.n_components:
            log.warning(
                "%s: %d components requested but the training matrix is %s; using %d",
                self.name, self.n_components, x_train.shape, k,
            )
        self.n_components = k
        if self.name == "pca":
            self.model = PCA(n_components=k, random_state=self.seed)
        elif self.name == "ica":
            self.model = FastICA(
                n_components=k, random_state=self.seed, max_iter=ICA_MAX_ITER,
                whiten="unit-variance",
            )
        else:
            if x_train.min() < 0:
                raise MedgenInputError("nmf baseline needs non-negative input (scaled to [0, 1])")
            self.model = NMF(
                n_components=k, init="nndsvda", random_state=self.seed, max_iter=NMF_MAX_ITER
            )
        with warnings.catch_warnings():
            # Non-convergence is recorded in the log, not fatal: the fit is still a baseline.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x_train.astype(np.float64))
        return self

    def _fitted(self) -> PCA | FastICA | NMF:
        if self.model is None:
            raise RuntimeError(f"baseline {self.name} is not fitted")
        return self.model

    def encode(self, x: np.ndarray) -> np.ndarray:
        model = self._fitted()
        x = x.astype(np.float64)
        if self.name == "nmf":
            x = np.clip(x, 0.0, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.transform(x)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self._fitted().inverse_transform(self.encode(x))


def fit_baselines(
    names: list[str], x_train: np.ndarray, n_components: int, seed: int
) -> dict[str, Baseline]:
    """Fit each named baseline on the training matrix (order kept, duplicates dropped)."""
    return {name: Baseline(name, n_components, seed).fit(x_train) for name in dict.fromkeys(names)}
