"""Baselines, latent metrics and the Tybalt evaluation outputs."""

from __future__ import annotations

import json
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from medgen.errors import MedgenInputError
from medgen.tasks.expression.associations import node_associations
from medgen.tasks.expression.baselines import Baseline, fit_baselines
from medgen.tasks.expression.latent import (
    knn_scores,
    latent_metrics,
    silhouette,
    zscore_with_train,
)
from medgen.tasks.expression.reconstruction import bce, reconstruction_metrics

EVALUATION = {
    "knn_k": 5, "baselines": ["pca", "ica", "nmf"], "traversal_node": 1,
    "traversal_steps": 5, "n_prior_samples": 7,
}
LABELS = ["tumor_normal", "cancer_type"]
OUTPUTS = [
    "latent.h5ad", "latent.tsv", "gene_weights.tsv", "node_associations.tsv",
    "prior_samples.tsv", "traversal.tsv", "metrics.json", "metrics.tsv",
    "training_curves.png", "latent_umap.png", "metrics.png",
]


def test_bce_floor_zero_for_perfect_reconstruction():
    x = np.random.default_rng(0).uniform(0, 1, (10, 6))
    m = reconstruction_metrics(x, x)
    assert m["test_mse"] == 0
    assert m["test_bce_above_floor"] == pytest.approx(0, abs=1e-12)
    assert m["test_bce_floor"] == pytest.approx(bce(x, x)) and m["test_bce_floor"] > 0
    worse = reconstruction_metrics(x, np.full_like(x, 0.5))
    assert worse["test_bce_above_floor"] > 0
    assert bce(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0, abs=1e-6)


def test_knn_and_silhouette_known_answers():
    rng = np.random.default_rng(1)
    y = np.array(["a", "b"] * 20, dtype=object)
    z = rng.normal(size=(40, 3)) + np.where(y == "a", 0, 20)[:, None]
    train = np.arange(40) < 30
    scores = knn_scores(z[train], y[train], z[~train], y[~train], k=5)
    assert scores == {"accuracy": 1.0, "balanced_accuracy": 1.0}
    assert silhouette(z, y) > 0.9
    assert np.isnan(silhouette(z, np.array(["a"] * 40, dtype=object)))  # undefined
    metrics = latent_metrics(z, {"group": y}, train, ~train, k=5)
    assert metrics["knn_balanced_accuracy_group"] == 1.0


def test_zscore_uses_train_statistics():
    z = np.array([[0.0, 5.0], [2.0, 5.0], [100.0, 7.0]])
    train = np.array([True, True, False])
    out = zscore_with_train(z, train)
    assert out[:2, 0].tolist() == [-1.0, 1.0] and out[2, 0] == 99.0
    assert out[:2, 1].tolist() == [0.0, 0.0]  # constant on train: sd taken as 1


def test_baselines_encode_and_reconstruct():
    rng = np.random.default_rng(0)
    # rank-3 non-negative data: every baseline with 3 components reconstructs it closely
    x = rng.uniform(0, 1, (50, 3)) @ rng.uniform(0, 1, (3, 12)) / 3
    fitted = fit_baselines(["pca", "ica", "nmf", "pca"], x[:40], 3, seed=0)
    assert list(fitted) == ["pca", "ica", "nmf"]
    for name, baseline in fitted.items():
        assert baseline.encode(x[40:]).shape == (10, 3)
        err = np.mean((baseline.reconstruct(x[40:]) - x[40:]) ** 2)
        assert err < (1e-3 if name == "nmf" else 1e-10), name
    again = Baseline("ica", 3, seed=0).fit(x[:40]).encode(x)
    assert np.array_equal(again, fitted["ica"].encode(x))  # seeded
    with pytest.raises(MedgenInputError, match="pca, ica, nmf"):
        Baseline("umap", 3, 0)
    assert Baseline("pca", 100, 0).fit(x[:40]).n_components == 12  # capped, warned


def test_node_associations_separating_node():
    y = np.array(["normal", "tumor"] * 10, dtype=object)
    z = np.stack([np.where(y == "tumor", 1.0, -1.0) + np.linspace(0, 0.1, 20),
                  np.linspace(0, 1, 20)], axis=1)
    table = node_associations(z, {"tumor_normal": y}, ["node0", "node1"])
    row = table.set_index("node").loc["node0"]
    assert row["positive_class"] == "tumor" and row["auroc"] == 1.0 and row["welch_t"] > 10
    three = node_associations(z, {"k": np.array(list("abc") * 6 + ["a", "b"], dtype=object)},
                              ["node0", "node1"])
    assert len(three) == 6  # one-vs-rest: 3 classes x 2 nodes


@pytest.fixture(scope="module")
def evaluated(expression_h5ad, tmp_path_factory):
    from medgen.registry import resolve_hparams
    from medgen.tasks.expression.evaluate import evaluate_expression
    from medgen.train import train_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = tmp_path_factory.mktemp("tybalt")
        hp = resolve_hparams("tybalt", "default", {"latent_dim": 4, "batch_size": 16})
        training = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": 2,
                    "num_threads": 1, "progress_bar": False}
        model = train_model("tybalt", expression_h5ad, hp, training, 0, root / "train")
        runs = [evaluate_expression(expression_h5ad, model, EVALUATION, LABELS, 0, root / name)
                for name in ("eval1", "eval2")]
    return root, runs


def test_evaluation_writes_every_file(evaluated):
    root, (metrics, _) = evaluated
    for name in OUTPUTS:
        assert (root / "eval1" / name).stat().st_size > 0, name
    assert set(metrics["methods"]) == {"tybalt", "pca", "ica", "nmf"}
    table = pd.read_csv(root / "eval1" / "metrics.tsv", sep="\t", index_col=0)
    assert list(table.index) == ["tybalt", "pca", "ica", "nmf"]
    for column in ("test_mse", "test_bce", "test_bce_above_floor",
                   "knn_balanced_accuracy_tumor_normal", "knn_accuracy_cancer_type",
                   "silhouette_tumor_normal"):
        assert table[column].notna().all(), column
    assert (table["latent_dim"] == 4).all()
    latent = ad.read_h5ad(root / "eval1" / "latent.h5ad")
    assert latent.obsm["X_tybalt"].shape == (80, 4)
    assert "tumor_normal" in latent.obs
    weights = pd.read_csv(root / "eval1" / "gene_weights.tsv", sep="\t", index_col=0)
    assert weights.shape == (4, 24)
    assert pd.read_csv(root / "eval1" / "prior_samples.tsv", sep="\t").shape[0] == 7
    traversal = pd.read_csv(root / "eval1" / "traversal.tsv", sep="\t")
    assert traversal["sd_offset"].tolist() == [-3.0, -1.5, 0.0, 1.5, 3.0]
    assert (traversal["node"] == 1).all()
    assoc = pd.read_csv(root / "eval1" / "node_associations.tsv", sep="\t")
    assert len(assoc) == 4 * 2  # 4 nodes x 2 binary labels


def test_metrics_files_byte_identical(evaluated):
    root, (first, second) = evaluated
    assert first == second
    for name in ("metrics.json", "metrics.tsv"):
        assert (root / "eval1" / name).read_bytes() == (root / "eval2" / name).read_bytes()
    assert json.loads((root / "eval1" / "metrics.json").read_text()) == first


def test_evaluation_refuses_unknown_label(evaluated, expression_h5ad):
    from medgen.tasks.expression.evaluate import evaluate_expression

    root, _ = evaluated
    with pytest.raises(MedgenInputError, match="not obs columns"):
        evaluate_expression(expression_h5ad, root / "train" / "model.pt", EVALUATION, ["sex"], 0,
                        root / "bad")
