"""Expression inference harness (landmark -> target genes): gene sets, probe collapse,
standardisation, baselines and metrics; GPL96 cross-validation on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgen.data.standardise import Standardiser
from medgen.errors import MedgenInputError
from medgen.tasks.expression_inference.evaluate import (
    BASELINES,
    compare,
    cross_validated_predictions,
    inference_metrics,
)
from medgen.tasks.expression_inference.gene_sets import (
    GeneSets,
    collapse_probes,
    gene_sets_from_maps,
    read_gene_map,
    select_genes,
    top_variance_landmarks,
)


def write_map(path, lines):
    path.write_text("\n".join("\t".join(line) for line in lines) + "\n")
    return path


def test_maps_merge_a_symbol_on_two_lines_and_collapse_probes_by_mean(tmp_path):
    lm = write_map(tmp_path / "lm.txt", [("A", "E1", "p1"), ("B", "E2", "p2,p3")])
    tg = write_map(tmp_path / "tg.txt", [("A", "E1", "p4"), ("C", "E3", "p5"),
                                         ("C", "E3R", "p6")])
    sets, lm_probes, tg_probes = gene_sets_from_maps(lm, tg)
    assert sets == GeneSets(("A", "B"), ("A", "C")) and tg_probes["C"] == ["p5", "p6"]
    values = pd.DataFrame({"p1": [1.0, 2.0], "p2": [2.0, 4.0], "p3": [4.0, 8.0],
                           "p4": [0.0, 1.0], "p5": [1.0, 1.0]})
    genes = collapse_probes(values, lm_probes)
    assert genes["B"].tolist() == [3.0, 6.0]  # mean of its two probes
    targets = collapse_probes(values, tg_probes)
    assert targets["C"].tolist() == [1.0, 1.0]  # p6 absent: the probes present


def test_bad_gene_inputs_give_one_clear_error(tmp_path):
    with pytest.raises(MedgenInputError, match="expected 3 tab-separated columns"):
        read_gene_map(write_map(tmp_path / "bad.txt", [("A", "E1")]))
    values = pd.DataFrame(np.ones((3, 3)), columns=["A", "B", "C"])
    with pytest.raises(MedgenInputError, match=r"only 1 of 3 landmark genes.*\['X', 'Y'\]"):
        select_genes(values, ("A", "X", "Y"), "landmark")
    found, missing = select_genes(values, ("C", "A", "Z"), "target", min_found=0.5)
    assert list(found.columns) == ["C", "A"] and missing == ["Z"]  # by name, set order
    duplicated = pd.DataFrame(np.ones((2, 2)), columns=["A", "A"])
    with pytest.raises(MedgenInputError, match=r"the data: 1 gene\(s\) appear more than once "
                       r"\(first: \['A'\]\)"):
        select_genes(duplicated, ("A",), "landmark")
    with pytest.raises(MedgenInputError, match="no probe of the gene map"):
        collapse_probes(values, {"G": ["p9"]})
    with pytest.raises(MedgenInputError, match="duplicate landmark genes"):
        GeneSets(("A", "A"), ("B",))
    with pytest.raises(MedgenInputError, match="NaN"):
        compare(np.ones((10, 2)), np.full((10, 2), np.nan), BASELINES)


def test_top_variance_landmarks_are_chosen_on_training_data():
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(50, 10)) * np.arange(1, 11), columns=list("abcdefghij"))
    sets = top_variance_landmarks(train, 0.2)
    assert sets.landmarks == ("i", "j") and len(sets.targets) == 8
    assert not set(sets.landmarks) & set(sets.targets)


def test_standardiser_round_trip_and_constant_genes():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = Standardiser.fit(train)
    assert np.allclose(s.transform(train), [[-1, 0], [1, 0]])
    assert np.allclose(s.inverse(s.transform(train)), train)
    with pytest.raises(MedgenInputError, match="NaN"):
        Standardiser.fit(np.array([[np.nan]]))


def test_metrics_and_a_linear_target_ridge_recovers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 6))
    y = x @ rng.normal(size=(6, 4)) + 0.01 * rng.normal(size=(80, 4)) + 7.0
    table = compare(x, y, BASELINES, folds=4)
    assert table.loc["ridge", "mae"] < 0.05 < table.loc["mean", "mae"]
    assert table.loc["ridge", "median_pearson"] > 0.99
    assert table.loc["ridge", "genes_better_than_ridge"] == 0.0
    oof = cross_validated_predictions(x, y, BASELINES["mean"], 4, 0)
    assert np.allclose(oof.mean(), 7.0, atol=0.5)  # back in the data's units
    m = inference_metrics(np.array([[1.0, 2.0], [3.0, 2.0]]), np.array([[1.0, 2.0], [2.0, 2.0]]))
    assert m.mae == 0.25 and np.isnan(m.pearson_per_gene[1])  # a constant gene has no r


def test_k_fold_pearson_is_not_biased_by_each_folds_training_means():
    # no signal, 57 samples, 5 folds: the truth is r = 0 for every gene. Pooling the
    # out-of-fold predictions of all folds gives ridge a median r near -0.25 (each fold's
    # model predicts around its own training mean); within each fold it is near 0, and a
    # constant predictor (the mean) has no r at all
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(57, 20)), rng.normal(size=(57, 300))
    table = compare(x, y, BASELINES, folds=5, seed=0)
    assert abs(table.loc["ridge", "median_pearson"]) < 0.05
    assert np.isnan(table.loc["mean", "median_pearson"])
    pooled = inference_metrics(y, cross_validated_predictions(x, y, BASELINES["ridge"], 5, 0))
    assert pooled.median_pearson < -0.15  # what the pooled r said


@pytest.mark.realdata
def test_gpl96_bladder_cross_validation_matches_the_known_numbers(shared_data):
    root = shared_data / "expression"
    values = pd.read_csv(root / "geo_gpl96_bladder" / "bladder_exprs_hgu133a.csv.gz",
                         index_col=0).T
    sets, lm, tg = gene_sets_from_maps(root / "dgex_gene_maps" / "dgex_map_lm.txt",
                                       root / "dgex_gene_maps" / "dgex_map_tg.txt")
    x, _ = select_genes(collapse_probes(values, lm), sets.landmarks, "landmark")
    y, _ = select_genes(collapse_probes(values, tg), sets.targets, "target")
    assert x.shape == (57, 943) and y.shape == (57, 9519)
    table = compare(x.to_numpy(), y.to_numpy(), BASELINES, folds=5, seed=0)
    # 5-fold CV, z-scored on training folds (issue 18: ridge 0.225, mean 0.376); r per gene
    # within each fold, averaged (issue 29: 0.773; pooled over folds it read 0.762)
    assert table.loc["ridge", "mae"] == pytest.approx(0.225, abs=0.002)
    assert table.loc["ridge", "median_pearson"] == pytest.approx(0.773, abs=0.005)
    assert table.loc["mean", "mae"] == pytest.approx(0.376, abs=0.002)
    assert table.loc["ridge", "mae"] < table.loc["knn", "mae"] < table.loc["mean", "mae"]


def test_ggan_and_its_l1_only_ablation_learn_a_linear_map():
    from medgen.models.ggan import PRESETS
    from medgen.tasks.expression_inference.evaluate import FamilyRegressor, ggan_models

    rng = np.random.default_rng(2)
    x = rng.normal(size=(96, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 5)) / 3).astype(np.float32)
    hp = {**PRESETS["default"], "generator_hidden": [32], "discriminator_hidden": [16],
          "max_epochs": 60, "batch_size": 16}
    l1_only = {**hp, "adversarial_weight": 0.0, "consistency_weight": 0.0}
    full = FamilyRegressor("ggan", hp, seed=0, num_threads=1).fit(x[:80], y[:80])
    ablation = FamilyRegressor("ggan", l1_only, seed=0, num_threads=1).fit(x[:80], y[:80])
    baseline = np.abs(y[80:] - y[:80].mean(axis=0)).mean()
    for model in (full, ablation):
        assert np.abs(model.predict(x[80:]) - y[80:]).mean() < 0.5 * baseline
    # the ablation never trains its discriminator; the full model does
    assert not ablation.plan.discriminator_active and full.plan.discriminator_active
    again = FamilyRegressor("ggan", hp, seed=0, num_threads=1).fit(x[:80], y[:80])
    assert np.array_equal(again.predict(x[80:]), full.predict(x[80:]))  # same seed, same model
    with pytest.raises(MedgenInputError, match=r"models\.ggan\.params\.latent"):
        ggan_models(latent=3)


def test_fixed_split_scores_only_the_held_out_rows():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4))
    y = x @ rng.normal(size=(4, 3))
    train, test = np.arange(40), np.arange(40, 60)
    table = compare(x, y, BASELINES, split=(train, test))
    assert table.loc["ridge", "mae"] < 0.05 and set(table.index) == {"mean", "ridge", "knn"}
    oof = cross_validated_predictions(x, y, BASELINES["ridge"], 0, 0, [(train, test)])
    assert np.isnan(oof[train]).all() and np.isfinite(oof[test]).all()
