"""Aggregation of replicates (medgen.evaluate.replicates) on tables with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgen.errors import MedgenInputError
from medgen.evaluate import replicates, tidy
from medgen.task import MetricSpec
from tests.helpers.replicates import SEEDS, SUBJECTS, anomaly_tables


def test_a_margin_on_every_unit_is_better_and_identical_methods_show_no_difference(tmp_path):
    table = replicates.read_replicates(anomaly_tables(tmp_path))
    result = replicates.compare(table, [MetricSpec("auroc", True)], models=["fanogan"],
                                baselines=["pca", "copy", "coin"]).set_index("baseline")
    assert result.loc["pca", "verdict"] == "better"
    assert result.loc["pca", "mean_difference"] == pytest.approx(0.1)
    assert result.loc["pca", "ci_low"] > 0 and result.loc["pca", "unit_evidence"] == "agrees"
    assert result.loc["pca", "unit_replicates_significant"] == "5/5"
    assert result.loc["pca", "unit_rank_biserial"] == pytest.approx(1.0)
    assert result.loc["copy", "verdict"] == "no difference detected"
    assert result.loc["copy", "mean_difference"] == 0 and result.loc["copy", "p_replicates"] == 1
    assert result.loc["copy", "unit_evidence"] == "no difference"
    assert result.loc["coin", "verdict"] == "better"  # fanogan - coin = +0.3
    # the same margin on a lower-is-better metric: the model is worse
    worse = replicates.compare(table, [MetricSpec("auroc", False)], models=["fanogan"],
                               baselines=["pca"])
    assert worse["verdict"].tolist() == ["worse"]


def test_replicates_alone_do_not_decide_when_the_unit_tests_disagree(tmp_path):
    # the whole-split value favours the model in every replicate, but per subject the two
    # methods take turns: the unit-level test finds nothing and the verdict says so
    paths = {}
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        base = rng.uniform(0.4, 0.6, len(SUBJECTS))
        flip = np.where(np.arange(len(SUBJECTS)) % 2 == 0, 0.05, -0.05)
        units = pd.DataFrame({"method": ["m"] * 20 + ["b"] * 20, "split": "test",
                              "subject": SUBJECTS * 2, "psnr": np.r_[base + flip, base]})
        whole = pd.DataFrame({"method": ["m", "b"], "split": "test",
                              "psnr": [0.6 + 0.01 * seed, 0.5]})
        paths[seed] = tmp_path / f"{seed}.tsv"
        tidy.write([tidy.melt(whole, "all", ["psnr"]),
                    tidy.melt(units, "subject", ["psnr"], unit="subject")], paths[seed])
    result = replicates.compare(replicates.read_replicates(paths), [MetricSpec("psnr", True)],
                                models=["m"], baselines=["b"])
    row = result.iloc[0]
    assert row["ci_low"] > 0 and row["unit_evidence"] == "does not agree"
    assert row["verdict"] == "no difference detected"


def test_summary_intervals_holm_and_units_only_metrics(tmp_path):
    table = replicates.read_replicates(anomaly_tables(tmp_path))
    # a metric with unit rows only: its replicate value is the mean over units
    only_units = table[table["unit_kind"] == "subject"]
    summary = replicates.summarise(only_units, [MetricSpec("auroc", True)]).set_index("method")
    values = only_units[only_units["method"] == "pca"].groupby("seed")["value"].mean()
    mean, sd = values.mean(), values.std(ddof=1)
    from scipy import stats

    half = stats.t.ppf(0.975, 4) * sd / np.sqrt(5)
    assert summary.loc["pca", "mean"] == pytest.approx(mean)
    assert summary.loc["pca", "ci_high"] - summary.loc["pca", "ci_low"] == pytest.approx(2 * half)
    assert summary.loc["pca", "n_replicates"] == 5
    p = [0.01, 0.02, 0.03, float("nan")]
    assert replicates.holm(p)[:3] == pytest.approx([0.03, 0.04, 0.04])
    assert np.isnan(replicates.holm(p)[3])


def test_aggregate_writes_tables_and_a_critical_difference_diagram(tmp_path):
    paths = anomaly_tables(tmp_path)
    out = tmp_path / "agg"
    comparisons = replicates.aggregate(paths, "anomaly", out, out / "cd.png")
    assert (out / "cd.png").stat().st_size > 1000
    assert set(comparisons["model"]) == {"fanogan"}  # pca, copy, coin are not families
    summary = pd.read_csv(out / replicates.SUMMARY_FILE, sep="\t")
    assert set(summary["method"]) == {"pca", "fanogan", "copy", "coin"}
    written = pd.read_csv(out / replicates.COMPARISONS_FILE, sep="\t")
    assert list(written.columns) == list(replicates.COMPARISON_COLUMNS)
    ranks, nemenyi, friedman = replicates.critical_difference(
        replicates.read_replicates(paths), MetricSpec("auroc", True), "test")
    assert ranks["coin"] == 4 and ranks["pca"] == 3  # fanogan and copy tie for 1-2
    assert friedman < 0.05 and nemenyi.shape == (4, 4)


def test_a_missing_replicate_table_or_nothing_to_compare_is_named(tmp_path):
    paths = anomaly_tables(tmp_path)
    paths[7] = tmp_path / "seed7" / "metrics_tidy.tsv"
    with pytest.raises(MedgenInputError, match="seed7/metrics_tidy.tsv does not exist"):
        replicates.read_replicates(paths)
    table = replicates.read_replicates({0: anomaly_tables(tmp_path)[0]})
    with pytest.raises(MedgenInputError, match="nothing to compare"):
        replicates.compare(table[table["method"] != "fanogan"], [MetricSpec("auroc", True)])
    with pytest.raises(MedgenInputError, match="replicates.seeds is empty"):
        replicates.read_replicates({})
    with pytest.raises(MedgenInputError, match="replicate 3: no metric tables"):
        replicates.read_replicates({3: []})
    # an empty file, a value that is not a number, tables of another task: named, and
    # nothing written
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(MedgenInputError, match="empty.tsv is empty"):
        replicates.read_replicates({0: empty})
    word = tmp_path / "word.tsv"
    word.write_text("method\tsplit\tunit_kind\tunit\tmetric\tvalue\n"
                    "pca\ttest\tall\tall\tauroc\tabc\npca\ttest\tall\tall\tauprc\tnan\n")
    with pytest.raises(MedgenInputError, match="word.tsv: value 'abc' of pca / auroc is not"):
        replicates.read_replicates({0: word})
    out = tmp_path / "wrong_task"
    with pytest.raises(MedgenInputError, match="none of task 'synthesis'.s metrics"):
        replicates.aggregate(anomaly_tables(tmp_path), "synthesis", out, out / "cd.png")
    assert not out.exists()
    # one kind of method only: a summary, no comparison
    only = replicates.aggregate({s: p for s, p in anomaly_tables(tmp_path).items()},
                                "anomaly", tmp_path / "x")
    assert len(only) > 0
    baselines_only = {}
    for seed, path in anomaly_tables(tmp_path).items():
        text = "\n".join(line for line in path.read_text().splitlines()
                         if not line.startswith("fanogan"))
        baselines_only[seed] = tmp_path / f"b{seed}.tsv"
        baselines_only[seed].write_text(text + "\n")
    none = replicates.aggregate(baselines_only, "anomaly", tmp_path / "y")
    assert none.empty and (tmp_path / "y" / replicates.SUMMARY_FILE).exists()


def test_a_seed_without_a_method_is_named_not_silently_dropped(tmp_path, caplog):
    paths = anomaly_tables(tmp_path)
    # seed 3 lost its 'pca' rows (a failed baseline job whose table was edited by hand)
    frame = pd.read_csv(paths[3], sep="\t")
    frame[frame["method"] != "pca"].to_csv(paths[3], sep="\t", index=False)
    table = replicates.read_replicates(paths)
    assert replicates.incomplete_replicates(table, [MetricSpec("auroc", True)]) == [
        ("test", "auroc", "pca", [3])]
    with caplog.at_level("WARNING", logger="medgen.evaluate.replicates"):
        comparisons = replicates.aggregate(paths, "anomaly", tmp_path / "agg")
    assert "pca on test: no auroc value in seed(s) 3" in caplog.text
    row = comparisons[(comparisons["baseline"] == "pca")
                      & (comparisons["metric"] == "auroc")].iloc[0]
    assert row["n_replicates"] == 4


def test_three_units_cannot_confirm_a_replicate_difference_and_say_so(tmp_path):
    # 3 test subjects (the demo's slabs): a signed-rank p cannot go below 0.25, so the
    # verdict cannot be 'better' however consistent the replicates are, and the table says why
    paths = {}
    for seed in SEEDS:
        base = np.array([0.5, 0.6, 0.7]) + 0.01 * seed
        units = pd.DataFrame({"method": ["m"] * 3 + ["b"] * 3, "split": "test",
                              "subject": ["a", "b", "c"] * 2, "auroc": np.r_[base + 0.1, base]})
        whole = units.groupby("method", sort=False)["auroc"].mean().reset_index()
        whole["split"] = "test"
        paths[seed] = tmp_path / f"{seed}.tsv"
        tidy.write([tidy.melt(whole, "all", ["auroc"]),
                    tidy.melt(units, "subject", ["auroc"], unit="subject")], paths[seed])
    row = replicates.compare(replicates.read_replicates(paths), [MetricSpec("auroc", True)],
                             models=["m"], baselines=["b"]).iloc[0]
    assert row["ci_low"] > 0
    assert row["unit_evidence"] == "too few units (3) to test at 0.05"
    assert row["verdict"] == "no difference detected"


def test_design_optimisers_are_compared_with_the_design_baselines(tmp_path):
    # sequence design: the optimisers are not trained families, yet the task compares
    # them with random and best-measured sequences on the oracle's scores
    paths = {}
    for seed in SEEDS:
        rows = [("activation_maximisation", 7.0 + 0.1 * seed), ("evolution", 6.0 + 0.2 * seed),
                ("random", 3.5 + 0.1 * seed), ("best_measured", 8.0 + 0.1 * seed)]
        frame = pd.DataFrame({"method": [m for m, _ in rows], "split": "design",
                              "oracle_mean": [v for _, v in rows]})
        paths[seed] = tmp_path / f"seed{seed}.tsv"
        tidy.write([tidy.melt(frame, "all", ["oracle_mean"])], paths[seed])
    result = replicates.aggregate(paths, "sequence_design", tmp_path / "out").set_index(
        ["model", "baseline"])["verdict"]
    assert result[("activation_maximisation", "random")] == "better"
    assert result[("activation_maximisation", "best_measured")] == "worse"
    assert result[("evolution", "random")] == "better"
    assert set(result.index.get_level_values("model")) == {"activation_maximisation",
                                                            "evolution"}
