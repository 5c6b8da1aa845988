"""The expression task's synthetic-data evaluation (issue 31): profiles decoded from a
trained model's prior beside simple generators fitted on the TRAINING split, all scored
against the real HELD-OUT (test) split by :func:`medgen.evaluate.synthetic.evaluate_synthetic`
in the units of the preprocessed h5ad's ``X`` (min-max scaled log1p CPM for count tables;
see :mod:`medgen.tasks.expression.sampling`).

Categories: a conditional model's condition column (``condition_on``); for an
unconditional model the joint of the task's labels (e.g. ``BRCA/tumor``), which the
baselines are fitted per category on and which the held-out counts are drawn at. An
unconditional model's profiles have no category, so it gets no per-category or utility
rows (the baselines do).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from medgen import atomic
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.evaluate.synthetic import evaluate_synthetic, fit_embedding, tidy_table
from medgen.evaluate.synthetic_baselines import (
    GaussianGenerator,
    NoisyResampleGenerator,
    PCAGaussianGenerator,
)
from medgen.tasks.expression import figures
from medgen.tasks.expression.evaluate import load_model
from medgen.tasks.expression.loaders import JOINT, condition_name, read_expression
from medgen.tasks.expression.sampling import sample_expression, split_count

log = logging.getLogger(__name__)

POSTERIOR_SAMPLES = "synthetic_aggregate_posterior.h5ad"
POSTERIOR_SUFFIX = "_aggregate_posterior"  # the method name of the model's second set

GENERATORS = {
    "gaussian": lambda: GaussianGenerator(lower=0.0),
    "pca_gaussian": lambda: PCAGaussianGenerator(lower=0.0),
    "noisy_resample": lambda: NoisyResampleGenerator(lower=0.0),
}
REAL_VAL = "real_val"  # the validation split's real profiles: what a perfect generator gets
BASELINES = (*GENERATORS, REAL_VAL)
METRICS_TSV = "metrics.tsv"
SAMPLES = "synthetic.h5ad"
FIGURES = ("pca.png", "gene_moments.png", "correlation_difference.png", "augmentation.png")
DATA_MAX = 1.0  # X is min-max scaled to [0, 1]: baseline draws are clipped to it


def category_labels(obs: pd.DataFrame, condition_on: str | Sequence[str] | None,
                    labels: Sequence[str]) -> tuple[str, np.ndarray]:
    """The evaluation's category column name and each sample's category: the model's
    condition, else the task's labels joined with '/' (in the order given).

    Raises
    ------
    MedgenInputError
        A label that is not an obs column, or no labels at all for an unconditional model.
    """
    columns = (([condition_on] if isinstance(condition_on, str) else list(condition_on))
               if condition_on else list(labels))
    if not columns:
        raise MedgenInputError("config key 'expression.labels' is empty; the synthetic "
                               "evaluation of an unconditional model needs a label")
    missing = [c for c in columns if c not in obs]
    if missing:
        raise MedgenInputError(f"labels {missing} are not obs columns; available: "
                               f"{', '.join(map(str, obs.columns))}")
    values = obs[columns].astype(str).agg(JOINT.join, axis=1).to_numpy(dtype=object)
    return JOINT.join(columns), values


def _held_out_request(held_labels: np.ndarray, n_samples: int) -> dict[str, int]:
    names, counts = np.unique(held_labels.astype(str), return_counts=True)
    shares = {str(k): int(v) for k, v in zip(names, counts)}
    return shares if n_samples == 0 else split_count(n_samples, shares)


def evaluate_synthetic_expression(
    h5ad_path: str | os.PathLike,
    model_path: str | os.PathLike,
    synthetic: Mapping[str, Any],
    labels: Sequence[str],
    seed: int,
    out_dir: str | os.PathLike,
) -> pd.DataFrame:
    """Sample a trained expression model, fit the baselines on the training split and
    score everything against the held-out (test) split.

    Parameters
    ----------
    h5ad_path, model_path
        The preprocessed data and the trained model (``model.pt``).
    synthetic
        The validated ``expression.evaluation.synthetic`` config section: ``n_samples``
        (0: as many as the test split, else split by the test category shares) and
        ``baselines`` (names in ``BASELINES``).
    labels
        The task's labels (``expression.labels``), joined into the categories of an
        unconditional model.
    seed
        Seeds the model's draws, the baselines and every metric.
    out_dir
        Output folder: ``synthetic.h5ad`` (the model's profiles from its prior),
        ``synthetic_aggregate_posterior.h5ad`` (from a Gaussian mixture on the training
        profiles' latent means, method ``<family>_aggregate_posterior``), ``metrics.tsv`` (method,
        category, metric, value), ``metrics_tidy.tsv`` (the whole-set rows in
        ``medgen.evaluate.tidy``'s layout, split 'test'), and the figures ``FIGURES``.

    Returns
    -------
    The long metrics table written to ``metrics.tsv``.

    Raises
    ------
    MedgenInputError
        An unknown baseline, no test or training samples, a label that is not an obs
        column, a model of another task, and the refusals of the sampling and metrics.
    """
    out_dir = Path(out_dir)
    unknown = [b for b in synthetic["baselines"] if b not in BASELINES]
    if unknown:
        raise MedgenInputError(f"config key 'expression.evaluation.synthetic.baselines' "
                               f"names {unknown}; expected some of {list(BASELINES)}")
    data = read_expression(h5ad_path)
    _, ckpt = load_model(model_path, genes=data.genes)
    train, test, val = data.mask("train"), data.mask("test"), data.mask("val")
    if not test.any():
        raise MedgenInputError(f"{h5ad_path}: no samples with obs['split'] == 'test'")
    column = ckpt.data.get("condition_on")
    name, categories = category_labels(data.adata.obs, column, labels)
    request = _held_out_request(categories[test], int(synthetic["n_samples"]))
    log.info("synthetic evaluation of %s: categories of %s; %d held-out (test) profiles, "
             "synthetic sets of %s; baselines fitted on the %d training profiles; units: X "
             "of %s", ckpt.family, name, int(test.sum()), request, int(train.sum()), h5ad_path)

    # (1) the model's profiles, from the prior (per category when it is conditional)
    samples_path = out_dir / SAMPLES
    sample_expression(model_path, request if column else sum(request.values()), samples_path,
                      seed=seed)
    samples = ad.read_h5ad(samples_path)
    label_column = condition_name(column)
    sets: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
        ckpt.family: (np.asarray(samples.X, dtype=np.float64),
                      samples.obs[label_column].astype(str).to_numpy(dtype=object) if column
                      else None)}
    # the same model sampled from its aggregate posterior (a mixture on the training
    # profiles' latent means): how much of the gap to real data is the prior's
    posterior_path = out_dir / POSTERIOR_SAMPLES
    sample_expression(model_path, request if column else sum(request.values()),
                      posterior_path, seed=seed, data_path=h5ad_path,
                      latent="aggregate_posterior")
    posterior = ad.read_h5ad(posterior_path)
    sets[f"{ckpt.family}{POSTERIOR_SUFFIX}"] = (
        np.asarray(posterior.X, dtype=np.float64),
        posterior.obs[label_column].astype(str).to_numpy(dtype=object) if column else None)
    if not column:
        log.info("%s is unconditional: its profiles have no category, so no per-category "
                 "or utility rows for it", ckpt.family)
    # (2) the baselines, fitted on the training split only, drawn at the same counts
    x_train = data.x[train].astype(np.float64)
    for baseline in synthetic["baselines"]:
        if baseline == REAL_VAL:
            if val.any():
                sets[REAL_VAL] = (data.x[val].astype(np.float64), categories[val])
            else:
                log.warning("no validation samples: no %s reference", REAL_VAL)
            continue
        generator = GENERATORS[baseline]().fit(x_train, categories[train])
        x, y = generator.sample(request, seed=seed)
        sets[baseline] = (np.minimum(x, DATA_MAX), y)
    # (3) every metric against the held-out split, in one fixed embedding
    embedding = fit_embedding(x_train)
    table = evaluate_synthetic(x_train, data.x[test].astype(np.float64), sets,
                               categories[train], categories[test], seed=seed,
                               embedding=embedding)
    with atomic.atomic_path(out_dir / METRICS_TSV) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.10g", na_rep="NaN",
                     lineterminator="\n")
    tidy.write([tidy_table(table)], out_dir / tidy.FILE)
    # (4) figures
    figures.synthetic_figures(x_train, data.x[test].astype(np.float64),
                              {method: x for method, (x, _) in sets.items()}, table,
                              embedding, out_dir,
                              title=f"{ckpt.family} and baselines vs held-out (seed {seed})")
    return table
