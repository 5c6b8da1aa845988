"""Simple generators of tabular data (medgen.evaluate.synthetic_baselines) and the fidelity,
utility and privacy metrics of synthetic samples (medgen.evaluate.synthetic), on small
Gaussian data the tests draw: samples from the real distribution score near the ideal,
a shifted distribution and copies of training records do not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import euclidean_distances

from medgen.errors import MedgenInputError
from medgen.evaluate import synthetic as sm
from medgen.evaluate.synthetic_baselines import (
    GaussianGenerator,
    NoisyResampleGenerator,
    PCAGaussianGenerator,
)

P = 30  # features
LOADINGS = np.random.default_rng(7).normal(size=(3, P))  # shared correlated structure
CATEGORY_SHIFT = {"a": 0.0, "b": 2.0}


def draw(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """n samples of two categories: 3 correlated factors + noise, category b shifted."""
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"])[rng.integers(0, 2, n)]
    x = rng.normal(size=(n, 3)) @ LOADINGS + 0.5 * rng.normal(size=(n, P))
    x += np.array([CATEGORY_SHIFT[c] for c in y])[:, None] + shift
    return x, y


@pytest.fixture(scope="module")
def data():
    train, y_train = draw(300, 1)
    held_out, y_held = draw(200, 2)
    same, y_same = draw(200, 3)
    shifted, y_shifted = draw(200, 4, shift=1.0)
    return dict(train=train, y_train=y_train, held_out=held_out, y_held=y_held, same=same,
                y_same=y_same, shifted=shifted, y_shifted=y_shifted,
                embedding=sm.fit_embedding(train, 10))


# --- baselines ---------------------------------------------------------------------------

GENERATORS = [
    pytest.param(lambda: GaussianGenerator(rank=3), id="gaussian-low-rank"),
    pytest.param(lambda: GaussianGenerator("full"), id="gaussian-full"),
    pytest.param(lambda: PCAGaussianGenerator(5), id="pca-gaussian"),
    pytest.param(lambda: NoisyResampleGenerator(0.1), id="noisy-resample"),
]


@pytest.mark.parametrize("make", GENERATORS)
def test_generators_fitted_per_category_reproduce_category_means(data, make):
    x, y = make().fit(data["train"], data["y_train"]).sample({"b": 400, "a": 300}, seed=0)
    assert x.shape == (700, P)
    assert list(y[:400]) == ["b"] * 400 and list(y[400:]) == ["a"] * 300
    for category in ("a", "b"):
        real_mean = data["train"][data["y_train"] == category].mean(axis=0)
        # the two category means lie 2 apart per feature: a pooled fit would miss by 1
        assert np.abs(x[y == category].mean(axis=0) - real_mean).mean() < 0.25


def test_low_rank_gaussian_keeps_every_feature_variance(data):
    a = data["train"][data["y_train"] == "a"]
    x, _ = GaussianGenerator(rank=2).fit(a).sample(4000, seed=0)
    ratio = x.var(axis=0) / a.var(axis=0, ddof=1)
    assert np.allclose(ratio, 1, atol=0.12)
    # the shared factors are kept: the correlations follow the training data's
    corr_gap = sm.correlation_difference(a, x)["corr_mean_abs"]
    independent = np.random.default_rng(0).normal(size=x.shape) * a.std(axis=0)
    assert corr_gap < 0.5 * sm.correlation_difference(a, independent)["corr_mean_abs"]


@pytest.mark.parametrize("make", [lambda: GaussianGenerator(rank=5),
                                  lambda: GaussianGenerator("full"),
                                  lambda: PCAGaussianGenerator(5)])
def test_gaussians_fit_more_features_than_samples(make):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 500)) + np.repeat([[0.0], [3.0]], 12, axis=0)
    y = np.repeat(["low", "high"], 12)
    out, labels = make().fit(x, y).sample({"high": 50}, seed=1)
    assert out.shape == (50, 500) and set(labels) == {"high"} and np.isfinite(out).all()
    assert abs(out.mean() - 3.0) < 0.5


def test_noise_free_resampling_copies_training_records(data):
    x, _ = NoisyResampleGenerator(noise=0).fit(data["train"]).sample(50, seed=0)
    assert sm.nearest_distances(x, data["train"]).max() == 0


def test_sampling_is_seeded_and_splits_a_total_by_training_shares():
    x = np.arange(40, dtype=float).reshape(20, 2)
    y = ["a"] * 15 + ["b"] * 5
    gen = GaussianGenerator("full").fit(x, y)
    first, labels = gen.sample(8, seed=3)
    again, _ = gen.sample(8, seed=3)
    other, _ = gen.sample(8, seed=4)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert list(labels) == ["a"] * 6 + ["b"] * 2  # 15:5 of 8
    unlabelled, none = GaussianGenerator("full").fit(x).sample(3, seed=0)
    assert unlabelled.shape == (3, 2) and none is None


@pytest.mark.parametrize("make", [
    pytest.param(lambda: GaussianGenerator(rank=10), id="gaussian-low-rank"),
    pytest.param(lambda: PCAGaussianGenerator(50), id="pca-gaussian"),
])
def test_samples_do_not_depend_on_the_blas_thread_count(make):
    # a direct call (all cores) and a Snakemake job (its threads) draw the same samples;
    # matrices big enough for multithreaded BLAS to change the last digits otherwise
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 600)) @ rng.normal(size=(600, 600)) * 0.01
    y = np.array(["a"] * 380 + ["b"] * 20)  # b: fewer samples than components
    drawn = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            generator = make().fit(x, y)
            drawn.append(generator.sample({"a": 50, "b": 50}, seed=0)[0])
    np.testing.assert_array_equal(drawn[0], drawn[1])


def test_lower_floors_the_samples():
    x = np.random.default_rng(0).normal(size=(50, 4))
    out, _ = GaussianGenerator("full", lower=0.0).fit(x).sample(200, seed=0)
    assert out.min() == 0.0 and (out == 0).any()


def test_inputs_are_not_modified():
    x = np.random.default_rng(0).normal(size=(30, 4))
    before = x.copy()
    for gen in (GaussianGenerator(rank=2), PCAGaussianGenerator(2), NoisyResampleGenerator()):
        gen.fit(x).sample(10, seed=0)
    assert np.array_equal(x, before)


def _fitted():
    x = np.random.default_rng(0).normal(size=(30, 6))
    return GaussianGenerator(rank=2).fit(x, ["a"] * 20 + ["b"] * 10)


@pytest.mark.parametrize("call, message", [
    (lambda: _fitted().sample({"c": 5}, seed=0), r"\['c'\] were never seen in fit; known"),
    (lambda: _fitted().sample({"a": 0}, seed=0), "count of 'a' is 0; expected a whole number"),
    (lambda: _fitted().sample({"a": -3}, seed=0), "is -3; expected a whole number > 0"),
    (lambda: _fitted().sample(0, seed=0), "number of samples is 0"),
    (lambda: _fitted().sample(2.5, seed=0), "number of samples is 2.5"),
    (lambda: _fitted().sample({}, seed=0), "an empty request"),
    (lambda: GaussianGenerator(rank=2).sample(5), r"sample\(\) before fit\(\)"),
    (lambda: GaussianGenerator(rank=2).fit(np.eye(10, 3)).sample({"all": 3}),
     "fitted without labels"),
    (lambda: GaussianGenerator(rank=2).fit(np.where(np.eye(5, 3) > 0, np.nan, 1.0)),
     "NaN or infinite value"),
    (lambda: GaussianGenerator(rank=3).fit(np.ones((10, 4)), ["a"] * 7 + ["b"] * 3),
     r"too few training samples \{'b': 3\}; each needs at least 4"),
    (lambda: GaussianGenerator("full").fit(np.ones((10, 4)), ["a"] * 9 + ["b"]),
     r"\{'b': 1\}; each needs at least 2"),
    (lambda: PCAGaussianGenerator(2).fit(np.ones((10, 4)), ["a"] * 9 + ["b"]),
     "each needs at least 2"),
    (lambda: GaussianGenerator(rank=2).fit(np.ones((10, 4)), ["a"] * 9),
     "labels for 10 samples"),
    (lambda: GaussianGenerator(rank=2).fit(np.ones((10, 4)), ["a"] * 9 + [None]),
     "1 sample\\(s\\) without a label"),
    (lambda: GaussianGenerator(rank=2).fit(np.ones((10, 4)), ["a"] * 8 + [pd.NA, np.nan]),
     "2 sample\\(s\\) without a label, e.g. sample 8"),
    (lambda: GaussianGenerator(rank=8).fit(np.ones((20, 4))), "rank 8 exceeds the 4 features"),
    (lambda: PCAGaussianGenerator(6).fit(np.ones((5, 8))), "exceeds min\\(samples, features\\)"),
    (lambda: GaussianGenerator("diagonal"), "expected 'low_rank' or 'full'"),
    (lambda: NoisyResampleGenerator(noise=-1), "expected a number >= 0"),
])
def test_bad_generator_input_gets_one_clear_error(call, message):
    with pytest.raises(MedgenInputError, match=message):
        call()


# --- fidelity ----------------------------------------------------------------------------

def test_a_shifted_distribution_is_farther_per_feature_than_fresh_draws(data):
    same = sm.feature_distances(data["held_out"], data["same"])
    shifted = sm.feature_distances(data["held_out"], data["shifted"])
    assert list(same.columns) == ["wasserstein", "ks"] and len(same) == P
    assert same["wasserstein"].mean() < 0.3 < 0.8 < shifted["wasserstein"].mean()
    assert same["ks"].mean() < 0.15 < 0.25 < shifted["ks"].mean()


def test_correlation_difference_tells_independent_features_from_correlated_ones(data):
    same = sm.correlation_difference(data["held_out"], data["same"])
    rng = np.random.default_rng(0)
    # every feature shuffled on its own: the marginals stay, the correlations go
    shuffled = np.column_stack([rng.permutation(c) for c in data["same"].T])
    broken = sm.correlation_difference(data["held_out"], shuffled)
    assert same["corr_mean_abs"] < 0.1 < 0.3 < broken["corr_mean_abs"]
    assert same["corr_frobenius"] < broken["corr_frobenius"]
    # a constant synthetic feature counts as uncorrelated (finite, not NaN)
    constant = data["same"].copy()
    constant[:, 0] = 1.0
    assert np.isfinite(sm.correlation_difference(data["held_out"], constant, [0, 1, 2])[
        "corr_frobenius"])


def test_top_variance_features_come_from_training_data():
    x = np.random.default_rng(0).normal(size=(50, 6)) * np.array([1, 5, 1, 3, 1, 9])
    assert list(sm.top_variance_features(x, 3)) == [1, 3, 5]
    assert list(sm.top_variance_features(x, 10)) == list(range(6))


def test_embedding_is_a_pca_of_the_training_data_capped_at_its_rank():
    x = np.random.default_rng(0).normal(size=(8, 20))
    embedding = sm.fit_embedding(x, 50)
    assert embedding.transform(x).shape == (8, 8)
    assert sm.fit_embedding(x, 3, scale=True).transform(x[:2]).shape == (2, 3)


def test_mmd_matches_a_direct_computation_and_grows_with_a_shift(data, monkeypatch):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.5
    kxx, kyy, kxy = (np.exp(-euclidean_distances(u, v, squared=True) / 2)
                     for u, v in ((a, a), (b, b), (a, b)))
    expected = ((kxx.sum() - 40) / (40 * 39) + (kyy.sum() - 30) / (30 * 29)
                - 2 * kxy.mean())
    monkeypatch.setattr(sm, "CHUNK_BYTES", 8 * 40 * 7)  # blocks of 7 rows
    assert sm.mmd_rbf(a, b, bandwidth=1.0)["mmd2"] == pytest.approx(expected, rel=1e-10)
    monkeypatch.undo()
    e = data["embedding"]
    held, same, shifted = (e.transform(data[k]) for k in ("held_out", "same", "shifted"))
    near = sm.mmd_rbf(held, same)
    far = sm.mmd_rbf(held, shifted)
    assert abs(near["mmd2"]) < 0.01 < 0.03 < far["mmd2"]
    assert near["mmd_bandwidth"] > 0


def _prdc_by_hand(real, fake, k):
    d_rr, d_ff, d_fr = (euclidean_distances(u, v) for u, v in ((real, real), (fake, fake),
                                                               (fake, real)))
    r = np.sort(d_rr, axis=1)[:, k]
    s = np.sort(d_ff, axis=1)[:, k]
    inside = d_fr <= r[None, :]
    return {"precision": inside.any(axis=1).mean(),
            "recall": (d_fr <= s[:, None]).any(axis=0).mean(),
            "density": inside.sum() / (k * len(fake)),
            "coverage": (d_fr.min(axis=0) <= r).mean()}


def test_prdc_matches_the_definitions_in_chunks(monkeypatch):
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(60, 4)), rng.normal(size=(45, 4)) * 1.3 + 0.4
    monkeypatch.setattr(sm, "CHUNK_BYTES", 8 * 60 * 10)  # blocks of 10 synthetic rows
    got = sm.precision_recall_density_coverage(real, fake, k=3)
    expected = _prdc_by_hand(real, fake, 3)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1


def test_prdc_near_one_for_fresh_draws_and_low_for_a_shift(data):
    e = data["embedding"]
    held, same, shifted = (e.transform(data[k]) for k in ("held_out", "same", "shifted"))
    near = sm.precision_recall_density_coverage(held, same)
    far = sm.precision_recall_density_coverage(held, shifted)
    assert near["precision"] > 0.9 and near["recall"] > 0.9 and near["coverage"] > 0.9
    assert 0.8 < near["density"] < 1.2
    assert far["precision"] < 0.8 and far["density"] < 0.6


@pytest.mark.parametrize("classifier", ["logistic", "knn"])
def test_two_sample_auroc_is_chance_for_fresh_draws_and_high_for_a_shift(data, classifier):
    e = data["embedding"]
    held, same, shifted = (e.transform(data[k]) for k in ("held_out", "same", "shifted"))
    far_off = e.transform(draw(200, 5, shift=3.0)[0])
    near = sm.classifier_two_sample_auroc(held, same, seed=0, classifier=classifier)
    shift = sm.classifier_two_sample_auroc(held, shifted, seed=0, classifier=classifier)
    far = sm.classifier_two_sample_auroc(held, far_off, seed=0, classifier=classifier)
    assert abs(near - 0.5) < 0.1 and 0.6 < shift < far and far > 0.95
    assert sm.classifier_two_sample_auroc(held, same, seed=0, classifier=classifier) == near


def test_the_knn_two_sample_test_sees_a_variance_mismatch():
    rng = np.random.default_rng(0)
    real, same, wide = (rng.normal(size=(200, 3)) * scale for scale in (1.0, 1.0, 2.0))
    assert sm.classifier_two_sample_auroc(real, wide) > 0.75
    assert sm.classifier_two_sample_auroc(real, same) < 0.6
    # a linear classifier cannot see it
    assert sm.classifier_two_sample_auroc(real, wide, classifier="logistic") < 0.65


# --- per category and utility ------------------------------------------------------------

def test_category_check_scores_intended_labels(data):
    e = data["embedding"]
    right = sm.category_accuracy(e.transform(data["train"]), data["y_train"],
                                 e.transform(data["same"]), data["y_same"])
    assert right["all"] > 0.95 and right["a"] > 0.95 and right["b"] > 0.95
    swapped = np.where(data["y_same"] == "a", "b", "a")
    wrong = sm.category_accuracy(e.transform(data["train"]), data["y_train"],
                                 e.transform(data["same"]), swapped)
    assert wrong["all"] < 0.05


def test_train_on_synthetic_needs_the_labels_signal(data):
    e = data["embedding"]
    train, same, held = (e.transform(data[k]) for k in ("train", "same", "held_out"))
    good = sm.train_synthetic_test_real(train, data["y_train"], same, data["y_same"], held,
                                        data["y_held"])
    assert good["tstr_balanced_accuracy"] > 0.95 and good["trtr_balanced_accuracy"] > 0.95
    noise = np.random.default_rng(0).permutation(data["y_same"])
    bad = sm.train_synthetic_test_real(train, data["y_train"], same, noise, held,
                                       data["y_held"])
    assert bad["tstr_balanced_accuracy"] < 0.7
    assert bad["trtr_balanced_accuracy"] == good["trtr_balanced_accuracy"]


def test_augmentation_curve_rows_and_stratified_subsamples(data):
    e = data["embedding"]
    train, same, held = (e.transform(data[k]) for k in ("train", "same", "held_out"))
    curve = sm.augmentation_curve(train, data["y_train"], same, data["y_same"], held,
                                  data["y_held"], sizes=[2, 20, 1000], seed=0)
    assert list(curve["n_real"]) == [2, 2, 20, 20, 300, 300]
    assert list(curve["with_synthetic"]) == [False, True] * 3
    assert curve["balanced_accuracy"].between(0, 1).all()
    # 2 real samples: one per category, so the real-only classifier is fitted at all
    labels = np.array(["a"] * 90 + ["b"] * 9 + ["c"])
    pick = sm.stratified_subsample(labels, 10, np.random.default_rng(0))
    assert len(pick) == 10 and sorted(set(labels[pick])) == ["a", "b", "c"]
    assert list(labels[pick]).count("a") == 8
    default = sm.augmentation_curve(train, data["y_train"], same, data["y_same"], held,
                                    data["y_held"])
    assert sorted(set(default["n_real"])) == [30, 75, 150, 300]


# --- privacy -----------------------------------------------------------------------------

def test_fresh_draws_leak_no_membership(data):
    dcr = sm.distance_to_closest_record(data["train"], data["held_out"], data["same"])
    assert dcr["dcr_synthetic_median"] == pytest.approx(dcr["dcr_held_out_median"], rel=0.15)
    assert dcr["dcr_fraction_below_held_out_q05"] < 0.15
    auroc = sm.membership_inference_auroc(data["train"], data["held_out"], data["same"])
    assert abs(auroc - 0.5) < 0.08


def test_copies_of_training_records_leak_membership(data):
    copies = data["train"][:200]
    dcr = sm.distance_to_closest_record(data["train"], data["held_out"], copies)
    assert dcr["dcr_synthetic_median"] < 1e-6 < 1.0 < dcr["dcr_held_out_median"]
    assert dcr["dcr_fraction_below_held_out_q05"] == 1.0
    # 200 of the 300 training records were copied: each of them sits on a synthetic one
    assert sm.membership_inference_auroc(data["train"], data["held_out"], copies) > 0.8


# --- everything --------------------------------------------------------------------------

def test_evaluate_synthetic_gives_tidy_deterministic_rows(data):
    gaussian = GaussianGenerator(rank=3).fit(data["train"], data["y_train"])
    synthetic = {"same": (data["same"], data["y_same"]),
                 "copies": (data["train"][:200], data["y_train"][:200]),
                 "gaussian": gaussian.sample({"a": 100, "b": 100}, seed=0)}
    kwargs = dict(train_labels=data["y_train"], held_out_labels=data["y_held"], seed=0,
                  embedding=data["embedding"], top_features=10, sizes=[20, 300],
                  c2st_classifier="logistic")
    rows = sm.evaluate_synthetic(data["train"], data["held_out"], synthetic, **kwargs)
    assert list(rows.columns) == ["method", "category", "metric", "value"]
    again = sm.evaluate_synthetic(data["train"], data["held_out"], synthetic, **kwargs)
    assert rows.equals(again)
    assert not rows.duplicated(["method", "category", "metric"]).any()
    value = rows.set_index(["method", "category", "metric"])["value"]
    for method in synthetic:
        for metric in ("wasserstein_mean", "ks_mean", "corr_frobenius", "corr_mean_abs",
                       "mmd2", "precision", "recall", "density", "coverage", "c2st_auroc",
                       "dcr_fraction_below_held_out_q05", "membership_auroc",
                       "category_balanced_accuracy", "tstr_balanced_accuracy",
                       "trtr_balanced_accuracy", "augment_real_n20_balanced_accuracy",
                       "augment_synthetic_n300_balanced_accuracy"):
            assert np.isfinite(value[(method, "all", metric)]), (method, metric)
        for category in ("a", "b"):
            assert np.isfinite(value[(method, category, "ks_mean")])
            assert np.isfinite(value[(method, category, "category_recall")])
    assert value[("copies", "all", "membership_auroc")] > 0.8
    assert value[("same", "all", "membership_auroc")] < 0.6
    assert value[("gaussian", "all", "category_balanced_accuracy")] > 0.9
    unlabelled = sm.evaluate_synthetic(data["train"], data["held_out"],
                                       {"same": (data["same"], None)}, seed=0,
                                       embedding=data["embedding"],
                                       c2st_classifier="logistic")
    assert set(unlabelled["category"]) == {"all"}
    assert not unlabelled["metric"].str.contains("tstr|augment|category").any()


def test_replicates_compare_a_generator_on_the_tidy_rows_at_chance_distance(data, tmp_path):
    from medgen.evaluate import replicates, tidy

    paths = {}
    for seed in (0, 1, 2):
        # "tybalt" draws from the real distribution, "gaussian" (a baseline) is shifted
        same, _ = draw(200, 10 + seed)
        shifted, _ = draw(200, 20 + seed, shift=1.0)
        rows = sm.evaluate_synthetic(data["train"], data["held_out"],
                                     {"tybalt": (same, None), "gaussian": (shifted, None)},
                                     seed=seed, embedding=data["embedding"],
                                     c2st_classifier="logistic")
        table = sm.tidy_table(rows)
        value = table.set_index(["method", "metric"])["value"]
        for method in ("tybalt", "gaussian"):
            for metric in sm.AT_CHANCE:
                assert value[(method, f"{metric}_excess")] == pytest.approx(
                    abs(value[(method, metric)] - 0.5))
        assert set(table["split"]) == {"test"} and set(table["unit"]) == {tidy.WHOLE_SPLIT}
        paths[seed] = tmp_path / f"seed{seed}.tsv"
        tidy.write([table], paths[seed])
    comparisons = replicates.aggregate(paths, "expression", tmp_path / "out").set_index(
        ["metric", "model", "baseline"])
    c2st = comparisons.loc[("c2st_auroc_excess", "tybalt", "gaussian")]
    assert not c2st["higher_is_better"] and c2st["mean_difference"] < -0.2
    assert c2st["verdict"] == "better", c2st
    assert comparisons.loc[("mmd2", "tybalt", "gaussian"), "verdict"] == "better"


@pytest.mark.parametrize("call, message", [
    (lambda d: sm.feature_distances(d["held_out"], d["same"][:, :5]),
     "has 5 features and real samples 30"),
    (lambda d: sm.feature_distances(d["held_out"], np.full((3, P), np.nan)),
     "synthetic samples holds 90 NaN"),
    (lambda d: sm.precision_recall_density_coverage(d["held_out"], d["same"][:4], k=5),
     "synthetic samples has 4 samples; precision/recall with k = 5 needs at least 6"),
    (lambda d: sm.mmd_rbf(d["held_out"], d["same"][:1]), "needs at least 2"),
    (lambda d: sm.classifier_two_sample_auroc(d["held_out"], d["same"], classifier="svm"),
     "expected one of \\('knn', 'logistic'\\)"),
    (lambda d: sm.category_accuracy(d["train"], d["y_train"], d["same"],
                                    ["c"] * len(d["same"])),
     r"synthetic categories \['c'\] are not training categories"),
    (lambda d: sm.correlation_difference(d["held_out"], d["same"], [0, 99]),
     "expected >= 2 indices in 0..29"),
    (lambda d: sm.distance_to_closest_record(d["train"], d["held_out"], d["same"], 1.5),
     "expected a number in \\(0, 1\\)"),
    (lambda d: sm.evaluate_synthetic(d["train"], d["held_out"], {}), "no synthetic sets"),
    (lambda d: sm.evaluate_synthetic(d["train"], d["held_out"], {"x": (d["same"], ["a"])},
                                     d["y_train"], d["y_held"], embedding=d["embedding"],
                                     c2st_classifier="logistic"),
     "synthetic labels of x: \\(1,\\) labels for 200 samples"),
])
def test_bad_metric_input_gets_one_clear_error(data, call, message):
    with pytest.raises(MedgenInputError, match=message):
        call(data)
