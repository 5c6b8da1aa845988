"""Every anomaly scorer behind one call: trained families (through the registry) and the
PCA baseline, each mapping images in [0, 1] to ``medgen.models.anomaly.Scores``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from medgen import atomic, checkpoint, registry
from medgen.family import resolve
from medgen.models.anomaly import Scores
from medgen.tasks.anomaly.prepare import load_split


class PCAScorer:
    """PCA reconstruction error: project onto the top-k components of the normal images."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, shape: tuple[int, ...]) -> None:
        self.mean, self.components, self.shape = mean, components, shape
        self.image_size = shape[-1]

    def score(self, images) -> Scores:
        """Scores of images (N, C, S, S) in [0, 1]: mean squared error of the projection."""
        x = np.asarray(images, dtype=np.float64).reshape(len(images), -1) - self.mean
        recon = (x @ self.components.T) @ self.components + self.mean
        err = ((x + self.mean - recon) ** 2).mean(1)
        return Scores(err, {"residual": err}, recon.reshape(-1, *self.shape).astype(np.float32))


def fit_pca(data_path: str | os.PathLike, k: int, out_path: str | os.PathLike) -> Path:
    """Fit the PCA baseline (k components, at most N - 1) on the training images of
    ``data_path`` (a prepared train.npz); save mean, components and image shape (.npz)."""
    images = load_split(data_path)["images"]
    pca = PCA(n_components=min(k, len(images) - 1), random_state=0)
    pca.fit(images.reshape(len(images), -1))
    out_path = Path(out_path)
    with atomic.atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, mean=pca.mean_, components=pca.components_,
                 shape=np.array(images.shape[1:]))
    return out_path


def load_scorer(path: str | os.PathLike, device: str = "cpu", data: dict | None = None):
    """A scorer from a trained anomaly family's ``model.pt`` or a PCA ``.npz``.

    ``data``: signature of the images about to be scored (``channels``, ``modalities``);
    raises MedgenInputError when ``path`` holds a model of another task or was trained on
    other channels or modalities.
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as f:
            return PCAScorer(f["mean"], f["components"], tuple(int(s) for s in f["shape"]))
    ckpt = checkpoint.load(path, family=tuple(registry.names("anomaly")), data=data)
    return resolve(registry.get(ckpt.family).load)(ckpt, device)
