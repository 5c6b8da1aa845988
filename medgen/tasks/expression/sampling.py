"""Synthetic expression profiles from a trained expression VAE (Tybalt): latents drawn from
the prior N(0, I), decoded, and written as an AnnData h5ad in row chunks (issue 31 item 1).

Units: the model decodes into the units of the preprocessed training h5ad's ``X``: each
gene min-max scaled to [0, 1] with its TRAINING range, of log1p(counts normalised to the
library size ``expression.target_sum``, 1e6 = counts per million) for count tables, or of
the input's own log values (``expression.data_type: log_expression``). When the model
stores the scaling ranges (every model trained by medgen's preprocessing), the layer
``log_expression`` holds the same profiles with the scaling undone: log1p(CPM) for counts,
as the training h5ad's layer of that name. ``uns['units']`` says which.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from medgen import atomic, checkpoint, provenance
from medgen.data.expression import LOG_LAYER
from medgen.errors import MedgenInputError
from medgen.synthetic_output import check_count, check_room
from medgen.tasks.expression.evaluate import decode, load_model
from medgen.tasks.expression.loaders import (
    JOINT,
    condition_name,
    condition_values,
    read_expression,
)

log = logging.getLogger(__name__)

CHUNK_ROWS = 4096  # profiles decoded and written at a time: 4096 x 5000 genes = 80 MB
SAMPLE_PREFIX = "synthetic"  # obs names synthetic0, synthetic1, ...
SYNTHETIC_KEY = "synthetic"  # uns flag and obs column


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise MedgenInputError(f"{name} is {value!r}; expected a whole number > 0")
    return int(value)


def split_count(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """``total`` split over the categories in proportion to ``shares`` (largest remainders,
    ties to the first category), leaving out categories that get none.

    Raises
    ------
    MedgenInputError
        total <= 0, or no positive share.
    """
    total = _count(total, "number of samples")
    names = [name for name, share in shares.items() if share > 0]
    if not names:
        raise MedgenInputError(f"no category with a positive share in {dict(shares)}")
    weight = np.array([float(shares[name]) for name in names])
    exact = total * weight / weight.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return {name: int(k) for name, k in zip(names, counts) if k > 0}


def training_shares(data_path: str | os.PathLike,
                    column: str | Sequence[str]) -> dict[str, int]:
    """Training-split sample counts of each category of the condition ``column`` (an obs
    column or several, joined as the model joins them) in a preprocessed h5ad (the shares a
    plain N is split by)."""
    data = read_expression(data_path)
    columns = [column] if isinstance(column, str) else list(column)
    if any(c not in data.adata.obs for c in columns):
        raise MedgenInputError(f"{data_path}: obs lacks the model's condition {column!r}; "
                               "give the h5ad the model was trained on")
    values = pd.Series(condition_values(data.adata.obs, column)[data.mask("train")])
    return {str(k): int(v) for k, v in values.value_counts(sort=False).sort_index().items()}


def sample_request(ckpt: checkpoint.Checkpoint, n: int | Mapping[str, int],
                   data_path: str | os.PathLike | None = None) -> dict[str | None, int]:
    """The profiles to draw per category: {category: count} of a conditional model (a plain
    N split by the training shares of ``data_path``), {None: N} of an unconditional one.

    Raises
    ------
    MedgenInputError
        N or a count <= 0 (or not a whole number), or more than
        ``medgen.synthetic_output.MAX_SAMPLES`` in all; counts per category for an
        unconditional model; a category the model never saw (the known ones listed); a
        plain N for a conditional model without the training data to split it by.
    """
    column = ckpt.data.get("condition_on")
    known = list(ckpt.data.get("condition_categories") or [])
    if isinstance(n, Mapping):
        if column is None:
            raise MedgenInputError(
                f"the {ckpt.family} model is unconditional (trained without condition_on): "
                f"ask for a number of profiles, not counts per category {dict(n)}")
        if not n:
            raise MedgenInputError("an empty request; expected {category: count} with at "
                                   f"least one of the model's categories {known}")
        unknown = [str(c) for c in n if str(c) not in known]
        if unknown:
            raise MedgenInputError(
                f"categories {unknown} of {column!r} were never seen by the model; "
                f"known: {known}")
        request = {str(c): _count(k, f"count of {c!r}") for c, k in n.items()}
        check_count(sum(request.values()), "profiles")
        return request
    total = check_count(_count(n, "number of samples"), "profiles")
    if column is None:
        return {None: total}
    if data_path is None:
        raise MedgenInputError(
            f"the {ckpt.family} model is conditional on {column!r} ({known}): give counts "
            "per category, or the training h5ad to split a plain N by its training shares")
    shares = training_shares(data_path, column)
    unseen = sorted(set(shares) - set(known))
    if unseen:
        raise MedgenInputError(f"{data_path}: training categories {unseen} of {column!r} "
                               f"are not the model's {known}; give the model's training h5ad")
    return split_count(total, shares)


LATENTS = ("prior", "aggregate_posterior")
MIXTURE_COMPONENTS = 10  # per category; fewer when a category has few training profiles


class LatentMixture:
    """A Gaussian mixture fitted on the training profiles' posterior means, per category
    (``sklearn.mixture.GaussianMixture``, full covariances): the aggregate posterior a VAE's
    decoder has actually seen, sampled instead of its N(0, I) prior ("ex-post density
    estimation", Ghosh et al. 2020, "From variational to deterministic autoencoders"). A
    VAE trained with a small KL weight (Tybalt's beta) leaves its posterior far from the
    prior, and prior samples decode off the data.

    ``draw(category, size, rng)`` -> (size, latent_dim), drawn with the caller's numpy
    Generator (component, then Gaussian), so chunked draws equal one draw.
    """

    def __init__(self, module, data_path: str | os.PathLike, ckpt: checkpoint.Checkpoint,
                 seed: int) -> None:
        from sklearn.mixture import GaussianMixture

        from medgen.tasks.expression.evaluate import encode_means

        data = read_expression(data_path)
        if list(data.genes) != list(ckpt.data["genes"]):
            raise MedgenInputError(f"{data_path}: its genes are not the model's; give the "
                                   "h5ad the model was trained on")
        train = data.mask("train")
        column = ckpt.data.get("condition_on")
        categories = list(ckpt.data.get("condition_categories") or [])
        labels = (condition_values(data.adata.obs, column, ckpt.family)[train] if column
                  else np.full(int(train.sum()), None, dtype=object))
        codes = np.zeros((int(train.sum()), len(categories)), dtype=np.float32)
        for i, label in enumerate(labels):
            if label is not None:
                codes[i, categories.index(label)] = 1.0
        means = encode_means(module, data.x[train].astype(np.float32), codes)
        self.mixtures = {}
        for category in dict.fromkeys(labels.tolist()):
            z = means[labels == category] if category is not None else means
            k = max(1, min(MIXTURE_COMPONENTS, len(z) // (2 * z.shape[1] + 2)))
            mixture = GaussianMixture(k, covariance_type="full", reg_covar=1e-4,
                                      random_state=seed).fit(z)
            self.mixtures[category] = (mixture.weights_, mixture.means_,
                                       np.linalg.cholesky(mixture.covariances_))
            log.info("aggregate posterior of %s: %d components on %d training profiles",
                     "every profile" if category is None else category, k, len(z))

    def draw(self, category: str | None, size: int, rng: np.random.Generator) -> np.ndarray:
        if category not in self.mixtures:
            raise MedgenInputError(f"no training profiles of {category!r} to fit its "
                                   "aggregate posterior")
        weights, means, chol = self.mixtures[category]
        component = rng.choice(len(weights), size=size, p=weights / weights.sum())
        noise = rng.standard_normal((size, means.shape[1]))
        return means[component] + np.einsum("nij,nj->ni", chol[component], noise)


def units(ckpt: checkpoint.Checkpoint) -> dict[str, str]:
    """What ``X`` and the ``log_expression`` layer of a sample file hold (as the training
    h5ad), from the model's training config."""
    expression = ckpt.config.get("expression", {})
    data_type = expression.get("data_type", "counts")
    if data_type == "counts":
        library = float(expression.get("target_sum", 1e6))
        logged = ("log1p(counts per million)" if library == 1e6
                  else f"log1p(counts normalised to {library:g} per sample)")
    else:
        logged = "the input's log expression values (used as given)"
    out = {"X": f"each gene min-max scaled to [0, 1] with its training range, of {logged}",
           "data_type": str(data_type)}
    if {"scale_min", "scale_max"} <= set(ckpt.data):
        out[LOG_LAYER] = logged
    return out


def _unscale(scaled: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Undo the training min-max scaling (a gene constant in training maps back to its
    value, as ``minmax_apply`` mapped it to 0)."""
    span = np.where(high > low, high - low, 1.0)
    return scaled * span + low


def _new_dataset(group: h5py.Group, name: str, shape: tuple[int, int], rows: int):
    dataset = group.create_dataset(name, shape=shape, dtype="float32",
                                   chunks=(max(1, min(rows, shape[0])), shape[1]))
    # anndata's dense-array encoding, so read_h5ad reads what was filled in chunks
    dataset.attrs["encoding-type"] = "array"
    dataset.attrs["encoding-version"] = "0.2.0"
    return dataset


def sample_expression(
    model_path: str | os.PathLike,
    n: int | Mapping[str, int],
    out_path: str | os.PathLike,
    seed: int = 0,
    data_path: str | os.PathLike | None = None,
    chunk_rows: int = CHUNK_ROWS,
    device: str = "cpu",
    latent: str = "prior",
) -> dict[str, Any]:
    """Decode N synthetic profiles from the prior (or the aggregate posterior) of a trained
    expression model.

    Parameters
    ----------
    model_path
        ``model.pt`` of an expression family that decodes (Tybalt).
    n
        The number of profiles; for a conditional model split over its categories by their
        training shares (needs ``data_path``), or {category: count}, e.g.
        ``{"BRCA": 300, "PRAD": 100}`` (drawn in the order given).
    out_path
        The h5ad written (atomically): ``X`` (profiles x the model's genes, float32, units
        in the module docstring), layer ``log_expression`` when the model holds its scaling
        ranges, ``obs`` with ``synthetic`` (True) and the condition column of a conditional
        model, ``uns``: ``synthetic`` True, ``units``, ``model`` (path, sha256, family,
        condition), ``seed``, ``request_json`` ({category: count}) and
        ``provenance_json`` (medgen.provenance).
    seed
        Seeds the latent draws (numpy): the same seed gives the same profiles, whatever
        ``chunk_rows``.
    data_path
        The preprocessed training h5ad (only for a plain N with a conditional model).
    chunk_rows
        Profiles decoded and written at a time: the profiles' memory stays bounded for any
        N (``obs``, a name and a category per profile, is built whole).
    device
        Torch device of the decoder.
    latent
        'prior': z ~ N(0, I), the VAE's generative model as trained; 'aggregate_posterior':
        z from a Gaussian mixture fitted on the training profiles' posterior means, per
        category (:class:`LatentMixture`; needs ``data_path``, the training h5ad).

    Returns
    -------
    The request and units: {'counts': {category or 'all': count}, 'n': N, 'units': ...}.

    Raises
    ------
    MedgenInputError
        A model of another family or task (or not a model file), and every refusal of
        :func:`sample_request`.
    """
    chunk_rows = _count(chunk_rows, "chunk_rows")
    if latent not in LATENTS:
        raise MedgenInputError(f"latent is {latent!r}; expected one of {list(LATENTS)}")
    if latent == "aggregate_posterior" and data_path is None:
        raise MedgenInputError("sampling the aggregate posterior needs the training h5ad "
                               "(data_path): its posterior means are what is fitted")
    module, ckpt = load_model(model_path)
    if not hasattr(module, "decode"):
        raise MedgenInputError(f"{model_path}: the {ckpt.family} model has no decoder to "
                               "sample from")
    request = sample_request(ckpt, n, data_path)
    if latent != "prior" and data_path is None:
        raise MedgenInputError(f"latent {latent!r} is fitted on the training profiles: give "
                               "the training h5ad (--training-data, sampling.training_data)")
    genes = list(ckpt.data["genes"])
    column = ckpt.data.get("condition_on")
    categories = list(ckpt.data.get("condition_categories") or [])
    latent_dim = int(ckpt.hparams["latent_dim"])
    total = sum(request.values())
    unit_text = units(ckpt)
    scaling = ({key: np.asarray(ckpt.data[key], dtype=np.float64)
                for key in ("scale_min", "scale_max")} if LOG_LAYER in unit_text else None)
    # float32 X (and the log layer): refused before drawing when the disk cannot hold it
    check_room(out_path, total * len(genes) * 4 * (2 if scaling else 1), "the profiles")
    log.info("sampling %d profiles x %d genes from the %s of %s (%s%s), seed %d, in "
             "chunks of %d; X: %s", total, len(genes), latent.replace("_", " "), model_path,
             ckpt.family,
             f", conditional on {column}: {request}" if column else ", unconditional",
             seed, chunk_rows, unit_text["X"])

    obs = pd.DataFrame({SYNTHETIC_KEY: np.ones(total, dtype=bool)},
                       index=pd.Index([f"{SAMPLE_PREFIX}{i}" for i in range(total)]))
    if column is not None:
        labels = np.repeat(np.array(list(request), dtype=object), list(request.values()))
        obs[condition_name(column)] = pd.Categorical(labels, categories=categories)
        if not isinstance(column, str):  # and each column of a joint condition, as in the data
            parts = [str(label).split(JOINT) for label in labels]
            for i, name in enumerate(column):
                obs[name] = pd.Categorical([part[i] for part in parts])
    model_sha = provenance.sha256_file(model_path)
    counts = {("all" if c is None else c): k for c, k in request.items()}
    uns = {
        SYNTHETIC_KEY: True,
        "units": unit_text,
        "model": {"path": str(model_path), "sha256": model_sha, "family": ckpt.family,
                  "condition_on": condition_name(column) or ""},
        "seed": int(seed),
        # category names may hold '/' (tumor/BRCA), which h5ad keys may not: a JSON string
        "request_json": json.dumps(counts),
        "provenance_json": json.dumps(
            provenance.collect(config={"n": counts, "seed": seed, "chunk_rows": chunk_rows,
                                       "latent": latent,
                                       "training_data": str(data_path) if data_path else ""},
                               seed=seed, inputs=[model_path, *([data_path] if data_path
                                                                 else [])]),
            sort_keys=True, default=str),
    }
    skeleton = ad.AnnData(obs=obs, var=pd.DataFrame(index=pd.Index(genes)), uns=uns)
    mixture = LatentMixture(module, data_path, ckpt, seed) if latent != "prior" else None
    uns["latent"] = latent
    rng = np.random.default_rng(seed)
    with atomic.atomic_path(out_path) as tmp:
        skeleton.write_h5ad(tmp)
        with h5py.File(tmp, "r+") as handle:
            x = _new_dataset(handle, "X", (total, len(genes)), chunk_rows)
            layer = (_new_dataset(handle["layers"], LOG_LAYER, (total, len(genes)),
                                  chunk_rows) if scaling else None)
            start = 0
            for category, count in request.items():
                code = np.zeros((1, len(categories)), dtype=np.float32)
                if category is not None:
                    code[0, categories.index(category)] = 1.0
                for size in _chunks(count, chunk_rows):
                    # one numpy stream drawn in order: the same profiles for any chunk size
                    z = (rng.standard_normal((size, latent_dim)) if mixture is None
                         else mixture.draw(category, size, rng))
                    profiles = decode(module, z, np.repeat(code, size, axis=0))
                    x[start:start + size] = profiles.astype(np.float32)
                    if layer is not None:
                        layer[start:start + size] = _unscale(
                            profiles, scaling["scale_min"], scaling["scale_max"]
                        ).astype(np.float32)
                    start += size
    log.info("wrote %s: %d synthetic profiles (model sha256 %s)", out_path, total,
             model_sha[:12])
    return {"counts": counts, "n": total, "units": unit_text}


def _chunks(count: int, size: int):
    for start in range(0, count, size):
        yield min(size, count - start)
