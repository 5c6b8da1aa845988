"""Read the preprocessed expression ``.h5ad`` and serve it as in-memory tensors: the data
module of every expression family (Tybalt; GGAN next).

Layout (written by medgen's expression preprocessing): ``X`` float samples x genes in
[0, 1], ``obs['split']`` in {train, val, test}, label columns in ``obs``, gene names as
``var`` index, ``uns['provenance_json']``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from medgen.data.training_data import TrainingData, content_hash
from medgen.errors import MedgenInputError
from medgen.seeding import EpochSeededSampler

SPLIT_KEY = "split"
SPLITS = ("train", "val", "test")
VAL_BATCH_SIZE = 1024  # evaluation only: larger batches, fewer steps


@dataclass
class ExpressionData:
    """The h5ad's matrix, annotations and split masks."""

    adata: ad.AnnData
    x: np.ndarray  # float32 samples x genes
    genes: list[str]

    def mask(self, split: str) -> np.ndarray:
        return (self.adata.obs[SPLIT_KEY].astype(str) == split).to_numpy()

    @property
    def provenance(self) -> dict[str, Any]:
        raw = self.adata.uns.get("provenance_json")
        return json.loads(raw) if isinstance(raw, str) else {}


def read_expression(path: str | os.PathLike, need_train: bool = True) -> ExpressionData:
    """Read and check the h5ad; bad layout raises MedgenInputError naming the problem.

    ``need_train``: refuse a file without training samples (False for new data that a
    trained model is applied to).
    """
    try:
        adata = ad.read_h5ad(path)
    except (OSError, FileNotFoundError) as err:
        raise MedgenInputError(f"cannot read expression file {path}: {err}") from None
    if SPLIT_KEY not in adata.obs:
        raise MedgenInputError(f"{path}: obs has no '{SPLIT_KEY}' column (train/val/test)")
    unknown = set(adata.obs[SPLIT_KEY].astype(str)) - set(SPLITS)
    if unknown:
        raise MedgenInputError(
            f"{path}: obs['{SPLIT_KEY}'] has values {sorted(unknown)}; expected {list(SPLITS)}"
        )
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise MedgenInputError(f"{path}: X has NaN or infinite values")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise MedgenInputError(
            f"{path}: X must be min-max scaled to [0, 1] (binary cross-entropy targets); "
            f"found values in [{x.min():.3g}, {x.max():.3g}]"
        )
    data = ExpressionData(adata=adata, x=x, genes=[str(g) for g in adata.var_names])
    if need_train and not data.mask("train").any():
        raise MedgenInputError(f"{path}: no samples with obs['{SPLIT_KEY}'] == 'train'")
    return data


JOINT = "/"  # joins several columns into one category, e.g. tumor/BRCA

def condition_name(column: str | Sequence[str] | None) -> str | None:
    """The condition's name, an obs column name of the samples written: the column, or
    several joined with '+' (``["tumor_normal", "cancer_type"]`` ->
    ``"tumor_normal+cancer_type"``; h5ad keys may not hold '/')."""
    if column is None or isinstance(column, str):
        return column
    return "+".join(map(str, column))


def condition_values(obs: pd.DataFrame, column: str | Sequence[str],
                     family: str = "tybalt") -> np.ndarray:
    """Each sample's condition as a string (object array): the obs column's value, or the
    values of several columns joined with '/' (``tumor/BRCA``: cancer type x tumour/normal).

    Raises MedgenInputError naming ``models.<family>.params.condition_on`` when a column is
    not in ``obs``.
    """
    columns = [column] if isinstance(column, str) else list(column)
    missing = [c for c in columns if c not in obs]
    if missing or not columns:
        raise MedgenInputError(
            f"config key 'models.{family}.params.condition_on' is {column!r}: "
            f"{', '.join(map(repr, missing)) or 'no column'} is not an obs column; "
            f"available: {', '.join(map(str, obs.columns))}")
    frame = obs[columns]
    if frame.isna().any().any():
        bad = [c for c in columns if obs[c].isna().any()]
        raise MedgenInputError(f"obs column(s) {bad} have missing values; cannot condition")
    return frame.astype(str).agg(JOINT.join, axis=1).to_numpy(dtype=object)


def condition_categories(data: ExpressionData, column: str | Sequence[str] | None,
                         family: str = "tybalt") -> list[str]:
    """Sorted categories of the condition on the train split ([] when None); ``column``
    is an obs column or a list of them (categories joined with '/', see
    :func:`condition_values`).

    Raises MedgenInputError naming ``models.<family>.params.condition_on`` when a column
    is not in ``obs``, and when it has missing values.
    """
    if column is None:
        return []
    values = condition_values(data.adata.obs, column, family)
    return sorted(set(values[data.mask("train")]))


def one_hot(data: ExpressionData, column: str | Sequence[str] | None,
            categories: list[str]) -> np.ndarray:
    """One-hot code (samples x categories) of the condition ``column`` (an obs column or a
    list of them); zero columns when unconditional."""
    n = data.adata.n_obs
    if column is None:
        return np.zeros((n, 0), dtype=np.float32)
    values = condition_values(data.adata.obs, column)
    index = {cat: i for i, cat in enumerate(categories)}
    unseen = sorted(set(values) - set(index))
    if unseen:
        raise MedgenInputError(
            f"condition {condition_name(column)!r} has categories {unseen} that the model was "
            f"not trained on; known: {categories}"
        )
    codes = np.zeros((n, len(categories)), dtype=np.float32)
    codes[np.arange(n), [index[v] for v in values]] = 1.0
    return codes


class TensorPairDataset(torch.utils.data.Dataset):
    """(x, c) rows ``rows`` of two in-memory tensors, fetched a whole batch at a time.

    Indexing the full matrices through ``rows`` avoids a copy of the training split (a few
    hundred MB at Tybalt's scale). ``__getitems__`` lets the DataLoader index the tensors once
    per batch instead of collating ``batch_size`` single rows.
    """

    def __init__(self, x: torch.Tensor, c: torch.Tensor, rows: torch.Tensor) -> None:
        self.x, self.c, self.rows = x, c, rows

    def __len__(self) -> int:
        return self.rows.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = self.rows[i]
        return self.x[row], self.c[row]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.rows[torch.as_tensor(indices)]
        return self.x[idx], self.c[idx]


def _keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch


def _dataset(x: np.ndarray, c: np.ndarray, mask: np.ndarray) -> TensorPairDataset:
    rows = torch.from_numpy(np.flatnonzero(mask))
    return TensorPairDataset(torch.from_numpy(x), torch.from_numpy(c), rows)


def train_loader(
    x: np.ndarray, c: np.ndarray, mask: np.ndarray, batch_size: int, seed: int
) -> torch.utils.data.DataLoader:
    """Shuffled (seeded by seed and epoch) mini-batches of the rows where ``mask`` is True."""
    dataset = _dataset(x, c, mask)
    n = len(dataset)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSeededSampler(n, seed),
        collate_fn=_keep_batch,
        # BatchNorm cannot train on a batch of one sample; drop such a last batch only.
        drop_last=n % batch_size == 1,
    )


def eval_loader(
    x: np.ndarray, c: np.ndarray, mask: np.ndarray
) -> torch.utils.data.DataLoader | None:
    """Sequential batches of the rows where ``mask`` is True (None when there are none)."""
    if not mask.any():
        return None
    return torch.utils.data.DataLoader(
        _dataset(x, c, mask), batch_size=VAL_BATCH_SIZE, shuffle=False, collate_fn=_keep_batch
    )


def scaling_ranges(data: ExpressionData) -> dict[str, list[float]]:
    """The per-gene min-max ranges preprocessing fitted on the training split (``var``
    columns ``scale_min``/``scale_max``), kept with a model so new data can be scaled alike."""
    var = data.adata.var
    if not {"scale_min", "scale_max"} <= set(var.columns):
        return {}
    return {"scale_min": var["scale_min"].astype(float).tolist(),
            "scale_max": var["scale_max"].astype(float).tolist()}


def training_data(path: str | os.PathLike, hparams: dict[str, Any], seed: int,
                  family: str) -> TrainingData:
    """Loaders of the train (shuffled, seeded) and val splits of a preprocessed h5ad.

    ``hparams['condition_on']`` (optional) names an obs column whose train categories are
    one-hot coded as the condition. The signature holds the ordered gene list and the
    condition's categories; the content hash covers X, genes, samples, splits and codes.
    """
    data = read_expression(path)
    column = hparams.get("condition_on")
    categories = condition_categories(data, column, family)
    codes = one_hot(data, column, categories)
    train, val = data.mask("train"), data.mask("val")
    return TrainingData(
        train=train_loader(data.x, codes, train, hparams["batch_size"], seed),
        val=eval_loader(data.x, codes, val),
        dims={"n_genes": len(data.genes), "n_conditions": len(categories)},
        signature={"genes": list(data.genes), "condition_on": column,
                   "condition_categories": categories, **scaling_ranges(data)},
        content_hash=content_hash(data.x, codes, list(data.genes),
                                  list(map(str, data.adata.obs_names)),
                                  data.adata.obs[SPLIT_KEY].astype(str).tolist()),
        provenance={"input": data.provenance},
    )
