"""Shared fixtures: a tiny synthetic AnnData in the preprocessed-expression layout."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest


def make_expression(n: int = 80, n_genes: int = 24, seed: int = 0) -> ad.AnnData:
    """X in [0, 1] with a tumour/normal shift in the first genes; patient-level splits."""
    rng = np.random.default_rng(seed)
    tumor = np.arange(n) % 4 != 0
    cancer = np.where(np.arange(n) % 2 == 0, "BRCA", "PRAD")
    x = rng.uniform(0.1, 0.5, size=(n, n_genes))
    x[tumor, : n_genes // 3] += 0.4
    x[cancer == "PRAD", n_genes // 3 : 2 * n_genes // 3] += 0.3
    x = np.clip(x, 0, 1).astype(np.float32)
    split = np.array(["train"] * n, dtype=object)
    split[np.arange(n) % 10 == 7] = "val"
    split[np.arange(n) % 10 == 3] = "test"
    split[np.arange(n) % 10 == 8] = "test"
    obs = pd.DataFrame(
        {
            "split": split,
            "tumor_normal": np.where(tumor, "tumor", "normal"),
            "cancer_type": cancer,
            "patient": [f"TCGA-XX-{i:04d}" for i in range(n)],
            "source": "synthetic",
        },
        index=[f"TCGA.XX.{i:04d}.01A" for i in range(n)],
    )
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]))
    adata.uns["provenance_json"] = json.dumps({"synthetic": True})
    return adata


@pytest.fixture(scope="session")
def expression_h5ad(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "expression.h5ad"
    make_expression().write_h5ad(path)
    return str(path)
