"""Target genes that are also landmarks (D-GEX's probe maps measure 445 landmark genes by
other probes among the targets): reported by the preparation, scored apart from the other
targets by the evaluation, and inferred under unique row ids."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from medgen import config as medgen_config
from medgen.errors import MedgenInputError
from medgen.tasks.expression_inference.evaluate import evaluate_expression_inference
from medgen.tasks.expression_inference.infer import output_rows
from medgen.tasks.expression_inference.prepare import prepare_expression_inference

EVALUATION = {"baselines": ["mean", "ridge", "knn"], "scatter_genes": 20}
SHARED = ["L0", "L1"]


def probe_table(root, n: int = 60, seed: int = 0):
    """A samples x probes CSV and D-GEX-like maps: landmarks L0..L5 (probes pL*), targets
    T0..T9 (noisy linear maps of the landmarks) and L0, L1 again, measured by second probes
    pL0_b, pL1_b that repeat their landmark probe with little noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(6.0, 1.0, size=(n, 6))
    y = 5.0 + (x - 6.0) @ rng.normal(size=(6, 10)) / 2 + rng.normal(scale=0.3, size=(n, 10))
    again = x[:, :2] + rng.normal(scale=0.01, size=(n, 2))
    probes = ([f"pL{j}" for j in range(6)] + [f"pT{j}" for j in range(10)]
              + [f"p{g}_b" for g in SHARED])
    frame = pd.DataFrame(np.hstack([x, y, again]), columns=probes,
                         index=[f"S{i:03d}" for i in range(n)])
    frame.to_csv(root / "probes.csv")
    (root / "map_lm.txt").write_text("".join(f"L{j}\tENSG{j}\tpL{j}\n" for j in range(6)))
    (root / "map_tg.txt").write_text(
        "".join(f"T{j}\tENST{j}\tpT{j}\n" for j in range(10))
        + "".join(f"{g}\tENSG{g[1]}\tp{g}_b\n" for g in SHARED))
    raw = {"tasks": ["expression_inference"], "expression_inference": {
        "folds": 3,
        "table": {"path": str(root / "probes.csv"), "orientation": "samples_as_rows"},
        "gene_sets": {"source": "maps", "landmark_map": str(root / "map_lm.txt"),
                      "target_map": str(root / "map_tg.txt")}}}
    return medgen_config.validate(raw)["expression_inference"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    section = probe_table(root)
    prepared = prepare_expression_inference(section, 0, root / "data.h5ad")
    summary = evaluate_expression_inference(root / "data.h5ad", {}, {}, EVALUATION, 0,
                                            root / "eval")
    return {"root": root, "section": section, "prepared": prepared, "summary": summary}


def test_preparation_reports_the_targets_that_are_also_landmarks(tmp_path, caplog):
    section = probe_table(tmp_path)
    with caplog.at_level(logging.WARNING):
        prepared = prepare_expression_inference(section, 0, tmp_path / "data.h5ad")
    report = json.loads(ad.read_h5ad(tmp_path / "data.h5ad").uns["gene_sets"])
    assert report["targets_also_landmarks"] == SHARED
    assert prepared.var_names.tolist() == [f"T{j}" for j in range(10)] + SHARED
    assert prepared.var["also_landmark"].tolist() == [False] * 10 + [True] * 2
    assert "2 of 12 target genes are also landmarks" in caplog.text
    assert "first: L0, L1" in caplog.text


def test_targets_that_are_also_landmarks_are_scored_apart(evaluated):
    eval_dir, summary = evaluated["root"] / "eval", evaluated["summary"]
    table = pd.read_csv(eval_dir / "metrics.tsv", sep="\t", index_col=0)
    per_gene = pd.read_csv(eval_dir / "per_gene.tsv", sep="\t")
    ridge = per_gene[per_gene["model"] == "ridge"].set_index("gene")
    assert ridge["also_landmark"].to_dict() == {
        **{f"T{j}": 0 for j in range(10)}, "L0": 1, "L1": 1}
    # the headline MAE is the other targets' alone, and the shared genes would flatter it
    scored = ridge.loc[ridge["also_landmark"] == 0, "mae"]
    assert table.loc["ridge", "mae"] == pytest.approx(scored.mean(), rel=1e-5)
    assert ridge.loc[SHARED, "mae"].max() < 0.2 * scored.min()
    assert table.loc["ridge", "mae"] > ridge["mae"].mean()
    assert table.loc["ridge", "median_pearson"] == pytest.approx(
        ridge.loc[ridge["also_landmark"] == 0, "pearson"].median(), rel=1e-5)
    assert summary["n_targets"] == 12 and summary["n_scored_targets"] == 10
    apart = summary["targets_also_landmarks"]
    assert apart["genes"] == SHARED
    shared_ridge = next(row for row in apart["metrics"] if row["model"] == "ridge")
    assert shared_ridge["mae"] == pytest.approx(ridge.loc[SHARED, "mae"].mean(), rel=1e-5)
    # neither the tidy table (what replicates compare) nor the scatter holds them
    tidy = pd.read_csv(eval_dir / "metrics_tidy.tsv", sep="\t")
    assert set(tidy.loc[tidy["unit_kind"] == "gene", "unit"]) == {f"T{j}" for j in range(10)}
    scatter = pd.read_csv(eval_dir / "scatter.tsv", sep="\t")
    assert not set(scatter["gene"]) & set(SHARED) and scatter["gene"].nunique() == 10


def test_evaluation_refuses_targets_that_are_all_landmarks(evaluated, tmp_path):
    adata = evaluated["prepared"][:, SHARED].copy()
    adata.write_h5ad(tmp_path / "only_shared.h5ad")
    with pytest.raises(MedgenInputError, match="every target gene is also a landmark"):
        evaluate_expression_inference(tmp_path / "only_shared.h5ad", {}, {}, EVALUATION, 0,
                                      tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


def fake_model(targets, landmarks):
    n = len(targets)
    return SimpleNamespace(targets=tuple(targets), landmarks=tuple(landmarks),
                           y_scaler=SimpleNamespace(mean=np.zeros(n), sd=np.ones(n)))


def test_inferred_rows_of_shared_genes_are_marked_and_ids_stay_unique():
    model = fake_model(["T0", "L0"], ["L0", "L1"])
    used = np.array([True, True])
    # input rows named by gene: the target L0 would repeat the input row L0
    by_gene = output_rows(pd.DataFrame(index=["L0", "L1"]), model, used)
    assert by_gene.index.tolist() == ["L0", "L1", "inferred:T0", "inferred:L0"]
    assert by_gene["also_landmark"].tolist() == [0, 0, 0, 1]
    assert by_gene["inferred"].tolist() == [0, 0, 1, 1]
    # probe ids with a symbol field: the gene is named twice, the ids are distinct
    by_probe = output_rows(pd.DataFrame({"pr_gene_symbol": ["L0", "L1"]}, index=["p1", "p2"]),
                           model, used)
    assert by_probe.index.tolist() == ["p1", "p2", "T0", "L0"]
    assert by_probe["pr_gene_symbol"].tolist() == ["L0", "L1", "T0", "L0"]
    assert by_probe["also_landmark"].tolist() == [0, 0, 0, 1]
    # an input id that an inferred row would take is refused, not written twice
    with pytest.raises(MedgenInputError, match=r"output row ids would repeat.*inferred:L0"):
        output_rows(pd.DataFrame(index=["L0", "L1", "inferred:L0"]), model,
                    np.array([True, True, False]))
