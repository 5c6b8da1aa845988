"""The anomaly task's synthetic-image evaluation (issue 31): images drawn from a trained
AnoGAN / f-AnoGAN generator beside simple image generators fitted on the TRAINING images,
all scored against HELD-OUT real NORMAL images by
:func:`medgen.evaluate.synthetic.evaluate_synthetic`, on images flattened to vectors of
pixel intensities (the prepared images' units, see :mod:`medgen.tasks.anomaly.sampling`).

Held-out images: the test split's normal units (label 0), never the training split; the
validation split's normal units are the ``real_val`` reference (what a perfect generator
scores with that many images). The models train on units of ``anomaly.image_size``: with
``unit: patch`` the evaluation slices are cut into the same normal patches as the training
slices were (``medgen.tasks.anomaly.slices.normal_patches``, same stride, mask fraction and
per-subject cap), so real and synthetic units are alike.

Beside the metrics of :func:`evaluate_synthetic` (per-pixel Wasserstein / KS, pixel-pixel
correlation difference, MMD, precision / recall / density / coverage and the k-NN
two-sample AUROC in a PCA fitted on the training images, DCR and membership AUROC against
the training images), ``intensity_wasserstein``: the Wasserstein-1 distance of the pooled
pixel intensities (the intensity histogram), in intensity units.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from medgen import atomic
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.evaluate.synthetic import WHOLE, evaluate_synthetic, fit_embedding, tidy_table
from medgen.evaluate.synthetic_baselines import NoisyResampleGenerator, PCAGaussianGenerator
from medgen.tasks.anomaly import slices as slicing
from medgen.tasks.anomaly.loaders import TRAIN_FILE
from medgen.tasks.anomaly.prepare import load_split
from medgen.tasks.anomaly.sampling import read_samples, sample_images

log = logging.getLogger(__name__)

GENERATORS = {
    "noisy_resample": NoisyResampleGenerator,  # training images + 0.1 sd noise per pixel
    "pca_gaussian": PCAGaussianGenerator,  # a Gaussian on 10 training PCA components
}
REAL_VAL = "real_val"
BASELINES = (*GENERATORS, REAL_VAL)
MIN_REAL = 10  # held-out units the metrics need (k-NN balls of k = 5, the 5-fold C2ST)
MAX_HELD_OUT = 2000  # held-out units kept (seeded): the k-NN metrics stay seconds
INTENSITY_POINTS = 1_000_000  # pooled pixels each side of the intensity distance
METRICS_TSV = "metrics.tsv"
SAMPLES = "samples.npz"
FIGURES = ("grid.png", "pca.png")
GRID_PER_SET = 16


def normal_units(data: Mapping[str, np.ndarray], anomaly: Mapping[str, Any], size: int,
                 seed: int, name: str) -> np.ndarray:
    """The normal (label 0) units of a prepared evaluation split, as (n, C, size, size):
    the images themselves when they have the training side, else their normal patches cut
    as the training patches were (``unit: patch``).

    Raises
    ------
    MedgenInputError
        No labels, or slices larger than the training units without the masks to cut
        patches from, or units of another size.
    """
    if "y" not in data or "images" not in data:
        raise MedgenInputError(f"{name}: expected 'images' and 'y' (prepared split)")
    normal = np.asarray(data["y"]) == slicing.NORMAL
    images = np.asarray(data["images"])[normal]
    if images.shape[-1] == size:
        return images.astype(np.float32)
    if anomaly.get("unit") != "patch" or not {"masks", "labels_map"} <= set(data):
        raise MedgenInputError(
            f"{name}: images of side {images.shape[-1]}, the model's units {size}; expected "
            "the training units' size, or slices with masks to cut patches from (unit: patch)")
    rng = np.random.default_rng(seed)
    subjects = np.asarray(data["subject"])[normal] if "subject" in data else None
    groups = [np.arange(len(images))] if subjects is None else [
        np.flatnonzero(subjects == s) for s in dict.fromkeys(subjects.tolist())]
    parts = [slicing.normal_patches(
        {"images": images[g], "masks": np.asarray(data["masks"])[normal][g],
         "labels_map": np.asarray(data["labels_map"])[normal][g]}, dict(anomaly), rng)
        for g in groups]
    return np.concatenate(parts) if parts else images[:0]


def _capped(x: np.ndarray, cap: int, seed: int, name: str) -> np.ndarray:
    if len(x) <= cap:
        return x
    log.info("%s: %d of %d units kept (seeded)", name, cap, len(x))
    keep = np.sort(np.random.default_rng(seed).choice(len(x), cap, replace=False))
    return x[keep]


def intensity_wasserstein(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> float:
    """Wasserstein-1 distance between the pooled pixel intensities of two image sets (at
    most ``INTENSITY_POINTS`` pixels each, drawn with ``seed``), in intensity units."""
    rng = np.random.default_rng(seed)
    pools = []
    for x in (real, synthetic):
        flat = np.asarray(x, dtype=np.float64).ravel()
        pools.append(flat if flat.size <= INTENSITY_POINTS
                     else flat[rng.choice(flat.size, INTENSITY_POINTS, replace=False)])
    return float(wasserstein_distance(*pools))


def evaluate_synthetic_images(
    training_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    model_path: str | os.PathLike,
    synthetic: Mapping[str, Any],
    anomaly: Mapping[str, Any],
    seed: int,
    out_dir: str | os.PathLike,
) -> pd.DataFrame:
    """Sample a trained AnoGAN / f-AnoGAN, fit the image baselines on the training images
    and score everything against the held-out normal test units.

    Parameters
    ----------
    training_dir, data_dir
        The prepared training folder (``train.npz``) and evaluation folder (``val.npz``,
        ``test.npz``) of the anomaly task.
    model_path
        ``model.pt`` of an anogan or fanogan run.
    synthetic
        The validated ``anomaly.evaluation.synthetic`` section: ``n_samples`` (0: as many
        as the held-out units) and ``baselines`` (names in ``BASELINES``).
    anomaly
        The ``anomaly`` config section (patch settings when ``unit: patch``).
    seed
        Seeds the generator's draws, the baselines, the subsampling and every metric.
    out_dir
        Output folder: ``samples.npz`` (+ ``.json``, ``.png``: the model's images,
        :func:`~medgen.tasks.anomaly.sampling.sample_images`), ``metrics.tsv`` (method,
        category 'all', metric, value), ``metrics_tidy.tsv`` (``medgen.evaluate.tidy``,
        split 'test'), ``grid.png`` (held-out real vs each method) and ``pca.png``.

    Returns
    -------
    The long metrics table written to ``metrics.tsv``.

    Raises
    ------
    MedgenInputError
        An unknown baseline, fewer than ``MIN_REAL`` held-out normal units, a model of
        another family or task, and the refusals of the metrics.
    """
    out_dir = Path(out_dir)
    unknown = [b for b in synthetic["baselines"] if b not in BASELINES]
    if unknown:
        raise MedgenInputError(f"config key 'anomaly.evaluation.synthetic.baselines' names "
                               f"{unknown}; expected some of {list(BASELINES)}")
    train = load_split(Path(training_dir) / TRAIN_FILE)["images"].astype(np.float32)
    size = train.shape[-1]
    data_dir = Path(data_dir)
    test_path = data_dir / "test.npz"
    held = _capped(normal_units(load_split(test_path), anomaly, size, seed, str(test_path)),
                   MAX_HELD_OUT, seed, f"{test_path} normal units")
    if len(held) < MIN_REAL:
        raise MedgenInputError(f"{test_path}: {len(held)} normal (label 0) units of side "
                               f"{size}; the synthetic evaluation needs at least {MIN_REAL}")
    n = int(synthetic["n_samples"]) or len(held)
    low, high = float(train.min()), float(train.max())
    log.info("synthetic image evaluation: %d training units %s (intensities %.3g..%.3g), "
             "%d held-out normal test units, %d images per generator", len(train),
             train.shape[1:], low, high, len(held), n)

    # (1) the model's images, from z ~ N(0, I)
    samples_path = out_dir / SAMPLES
    info = sample_images(model_path, n, samples_path, seed=seed)
    images, _ = read_samples(samples_path)
    if images.shape[1:] != train.shape[1:]:
        raise MedgenInputError(f"{model_path}: generates images {images.shape[1:]}; the "
                               f"training units of {training_dir} are {train.shape[1:]}")
    family = info["family"]
    sets: dict[str, np.ndarray] = {family: images}
    # (2) the baselines, fitted on the flattened training images, clipped to their range
    flat_train = train.reshape(len(train), -1).astype(np.float64)
    for baseline in synthetic["baselines"]:
        if baseline == REAL_VAL:
            val_path = data_dir / "val.npz"
            val = (normal_units(load_split(val_path), anomaly, size, seed, str(val_path))
                   if val_path.exists() else train[:0])
            if len(val) >= MIN_REAL:
                sets[REAL_VAL] = _capped(val, MAX_HELD_OUT, seed, f"{val_path} normal units")
            else:
                log.warning("%d normal validation units: no %s reference", len(val), REAL_VAL)
            continue
        x, _ = GENERATORS[baseline]().fit(flat_train).sample(n, seed=seed)
        sets[baseline] = np.clip(x, low, high).astype(np.float32).reshape(-1, *train.shape[1:])
    # (3) every metric against the held-out normals, in one PCA of the training images
    flat = {method: x.reshape(len(x), -1).astype(np.float64) for method, x in sets.items()}
    flat_held = held.reshape(len(held), -1).astype(np.float64)
    embedding = fit_embedding(flat_train)
    table = evaluate_synthetic(flat_train, flat_held,
                               {method: (x, None) for method, x in flat.items()},
                               seed=seed, embedding=embedding)
    extra = pd.DataFrame([(method, WHOLE, "intensity_wasserstein",
                           intensity_wasserstein(held, x, seed)) for method, x in sets.items()],
                         columns=table.columns)
    table = pd.concat([table, extra], ignore_index=True)
    table = table.sort_values("method", kind="stable", key=lambda m: m.map(
        {method: i for i, method in enumerate(sets)})).reset_index(drop=True)
    with atomic.atomic_path(out_dir / METRICS_TSV) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.10g", na_rep="NaN",
                     lineterminator="\n")
    tidy.write([tidy_table(table)], out_dir / tidy.FILE)
    # (4) figures
    from medgen.report.plots import synthetic_pca
    from medgen.tasks.anomaly.figures import image_grid

    rng = np.random.default_rng(seed)
    shown = {"held-out (real, test)": held}
    shown.update(sets)
    image_grid(out_dir / "grid.png",
               {label: x[np.sort(rng.choice(len(x), min(GRID_PER_SET, len(x)), replace=False))]
                for label, x in shown.items()},
               title=f"held-out normal units vs {family} and baselines (seed {seed})")
    synthetic_pca(flat_held, flat, embedding, out_dir / "pca.png",
                  f"{family} and baselines vs held-out normals (training PCA, seed {seed})")
    return table
