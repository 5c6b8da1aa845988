"""Synthetic expression profiles from a trained Tybalt (medgen.tasks.expression.sampling)
and their evaluation beside simple generators (medgen.tasks.expression.synthetic), and the
workflow rule that runs it."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import torch

from medgen import checkpoint, provenance
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from tests.conftest import make_expression

LABELS = ["tumor_normal", "cancer_type"]
SYNTHETIC = {"n_samples": 0, "baselines": ["gaussian", "pca_gaussian", "noisy_resample",
                                           "real_val"]}
LOW, HIGH = 2.0, 9.0  # the fixture's stored training range of every gene (log1p CPM)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The conftest's expression h5ad with the scaling ranges preprocessing stores."""
    adata = make_expression()
    adata.var["scale_min"] = LOW
    adata.var["scale_max"] = np.linspace(HIGH, HIGH + 1, adata.n_vars)
    path = tmp_path_factory.mktemp("data") / "expression.h5ad"
    adata.write_h5ad(path)
    return str(path)


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    """A tiny unconditional and a tiny conditional (cancer type) Tybalt, two epochs each."""
    from medgen.registry import resolve_hparams
    from medgen.train import train_model

    root = tmp_path_factory.mktemp("tybalt")
    training = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": 2,
                "num_threads": 1, "progress_bar": False}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, condition in (("plain", None), ("conditional", "cancer_type")):
            hp = resolve_hparams("tybalt", "default", {"latent_dim": 4, "batch_size": 16,
                                                      "condition_on": condition})
            out[name] = str(train_model("tybalt", data, hp, training, 0, root / name))
    return out


def _read(path):
    return ad.read_h5ad(path)


def test_samples_per_category_in_the_data_units_with_provenance(models, tmp_path):
    from medgen.tasks.expression.sampling import sample_expression

    out = tmp_path / "synthetic.h5ad"
    summary = sample_expression(models["conditional"], {"PRAD": 5, "BRCA": 3}, out, seed=1)
    assert summary["counts"] == {"PRAD": 5, "BRCA": 3} and summary["n"] == 8
    samples = _read(out)
    assert samples.shape == (8, 24)
    assert samples.obs["cancer_type"].astype(str).tolist() == ["PRAD"] * 5 + ["BRCA"] * 3
    assert samples.obs["synthetic"].all()
    x = np.asarray(samples.X)
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1  # as the training X
    # the layer undoes the training min-max scaling: log1p(CPM), as the training h5ad's layer
    span = np.linspace(HIGH, HIGH + 1, 24) - LOW
    np.testing.assert_allclose(samples.layers["log_expression"], x * span + LOW, rtol=1e-6)
    uns = samples.uns
    assert uns["synthetic"] is True or uns["synthetic"] == np.True_
    assert "min-max scaled" in uns["units"]["X"]
    assert uns["units"]["log_expression"] == "log1p(counts per million)"
    assert uns["model"]["sha256"] == provenance.sha256_file(models["conditional"])
    assert uns["model"]["family"] == "tybalt" and uns["model"]["condition_on"] == "cancer_type"
    record = json.loads(uns["provenance_json"])
    assert record["seed"] == 1 and "torch" in record["versions"]
    assert list(record["inputs"].values()) == [uns["model"]["sha256"]]


def test_a_plain_n_is_split_by_the_training_shares(models, data, tmp_path):
    from medgen.tasks.expression.sampling import sample_expression

    # the fixture's training split holds 28 BRCA and 28 PRAD profiles
    summary = sample_expression(models["conditional"], 11, tmp_path / "s.h5ad", data_path=data)
    assert summary["counts"] == {"BRCA": 6, "PRAD": 5}
    plain = sample_expression(models["plain"], 7, tmp_path / "p.h5ad")
    assert plain["counts"] == {"all": 7}
    assert list(_read(tmp_path / "p.h5ad").obs.columns) == ["synthetic"]


def test_chunked_writing_gives_the_same_file_as_unchunked(models, tmp_path):
    from medgen.tasks.expression.sampling import sample_expression

    request = {"BRCA": 7, "PRAD": 4}
    sample_expression(models["conditional"], request, tmp_path / "one.h5ad", seed=3)
    sample_expression(models["conditional"], request, tmp_path / "chunks.h5ad", seed=3,
                      chunk_rows=3)
    sample_expression(models["conditional"], request, tmp_path / "other.h5ad", seed=4)
    one, chunks = _read(tmp_path / "one.h5ad"), _read(tmp_path / "chunks.h5ad")
    np.testing.assert_allclose(chunks.X, one.X, rtol=0, atol=1e-6)
    np.testing.assert_allclose(chunks.layers["log_expression"], one.layers["log_expression"],
                               rtol=1e-6)
    assert chunks.obs.equals(one.obs) and list(chunks.var_names) == list(one.var_names)
    assert chunks.uns["model"] == one.uns["model"]
    assert chunks.uns["request_json"] == one.uns["request_json"]
    assert not np.allclose(_read(tmp_path / "other.h5ad").X, one.X)  # another seed


@pytest.mark.parametrize(("model", "n", "message"), [
    ("conditional", {"LUAD": 3}, r"\['LUAD'\].*never seen.*known: \['BRCA', 'PRAD'\]"),
    ("plain", {"BRCA": 3}, "unconditional.*not counts per category"),
    ("plain", 0, "number of samples is 0; expected a whole number > 0"),
    ("plain", -5, "number of samples is -5"),
    ("conditional", {"BRCA": 0}, "count of 'BRCA' is 0"),
    ("conditional", {}, "an empty request"),
    ("conditional", 10, "conditional on 'cancer_type'.*give counts per category"),
    ("plain", 10**12, "number of profiles is 1,000,000,000,000; at most 10,000,000"),
    ("conditional", {"BRCA": 10**7, "PRAD": 10}, "number of profiles is 10,000,010"),
])
def test_bad_requests_get_one_clear_error_and_no_file(models, tmp_path, model, n, message):
    from medgen.tasks.expression.sampling import sample_expression

    out = tmp_path / "s.h5ad"
    with pytest.raises(MedgenInputError, match=message):
        sample_expression(models[model], n, out)
    assert list(tmp_path.iterdir()) == []


def test_a_model_of_another_family_is_refused(tmp_path):
    from medgen.tasks.expression.sampling import sample_expression

    other = tmp_path / "model.pt"
    checkpoint.save(checkpoint.Checkpoint(
        family="fanogan", hparams={}, state={"generator": {"w": torch.zeros(1)}},
        data={"channels": 1, "image_size": 16}), other)
    with pytest.raises(MedgenInputError, match="family 'fanogan'; expected 'tybalt'"):
        sample_expression(other, 5, tmp_path / "s.h5ad")
    assert not (tmp_path / "s.h5ad").exists()


# --- the evaluation ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def evaluated(models, data, tmp_path_factory):
    from medgen.tasks.expression.synthetic import evaluate_synthetic_expression

    root = tmp_path_factory.mktemp("synthetic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 200 draws from 56 training profiles: the noisy copies cover most of them
        plain = evaluate_synthetic_expression(data, models["plain"],
                                              {**SYNTHETIC, "n_samples": 200}, LABELS, 0,
                                              root / "plain")
        conditional = evaluate_synthetic_expression(data, models["conditional"], SYNTHETIC,
                                                    LABELS, 0, root / "conditional")
        evaluate_synthetic_expression(data, models["conditional"], SYNTHETIC, LABELS, 0,
                                      root / "again")
    return root, plain, conditional


def test_evaluation_writes_tables_samples_and_figures(evaluated):
    from medgen.tasks.expression.synthetic import FIGURES, METRICS_TSV, SAMPLES

    root, plain, _ = evaluated
    for name in (METRICS_TSV, tidy.FILE, SAMPLES, *FIGURES):
        assert (root / "plain" / name).stat().st_size > 0, name
    methods = ["tybalt", "tybalt_aggregate_posterior", "gaussian", "pca_gaussian",
               "noisy_resample", "real_val"]
    assert list(dict.fromkeys(plain["method"])) == methods
    whole = plain[plain["category"] == "all"].pivot(index="method", columns="metric",
                                                   values="value")
    for metric in ("wasserstein_mean", "ks_mean", "corr_frobenius", "mmd2", "precision",
                   "recall", "coverage", "c2st_auroc", "dcr_synthetic_median",
                   "membership_auroc"):
        assert whole[metric].notna().all(), metric
    # the joint labels are the categories; the baselines drew 200 at the test shares
    assert set(plain.loc[plain["method"] == "gaussian", "category"]) == {
        "all", "normal/BRCA", "tumor/BRCA", "tumor/PRAD"}
    assert _read(root / "plain" / SAMPLES).n_obs == 200
    # an unconditional model's profiles have no category: no utility rows for it
    assert not (plain["method"].eq("tybalt") & plain["metric"].str.startswith("tstr")).any()
    assert whole.loc["gaussian", "tstr_balanced_accuracy"] >= 0
    # a known ordering: noisy training copies give membership away, a Gaussian does not
    assert whole.loc["noisy_resample", "membership_auroc"] > whole.loc[
        "gaussian", "membership_auroc"]
    assert whole.loc["noisy_resample", "dcr_fraction_below_held_out_q05"] > whole.loc[
        "gaussian", "dcr_fraction_below_held_out_q05"]
    table = tidy.read(root / "plain" / tidy.FILE)
    assert set(table["split"]) == {"test"} and set(table["unit"]) == {"all"}
    # the whole-set rows, and each at-chance AUROC's distance from 0.5 (what replicates use)
    excess = table["metric"].str.endswith("_excess")
    assert len(table) - excess.sum() == int((plain["category"] == "all").sum())
    assert excess.sum() == 2 * plain["method"].nunique()


def test_a_conditional_model_is_drawn_at_the_test_counts_and_scored_per_category(evaluated):
    root, _, conditional = evaluated
    samples = _read(root / "conditional" / "synthetic.h5ad")
    assert samples.obs["cancer_type"].value_counts().to_dict() == {"BRCA": 8, "PRAD": 8}
    mine = conditional[conditional["method"] == "tybalt"]
    assert set(mine.loc[mine["metric"] == "category_recall", "category"]) == {"BRCA", "PRAD"}
    assert {"tstr_balanced_accuracy", "trtr_balanced_accuracy"} <= set(mine["metric"])
    assert any(re.fullmatch(r"augment_synthetic_n\d+_balanced_accuracy", m)
               for m in mine["metric"])


def test_a_model_conditional_on_cancer_type_and_tumour_normal_samples_each_pair(
        data, tmp_path):
    from medgen.registry import resolve_hparams
    from medgen.tasks.expression.sampling import sample_expression
    from medgen.tasks.expression.synthetic import evaluate_synthetic_expression
    from medgen.train import train_model

    # one category per pair present in training (the fixture's normals are all BRCA)
    condition = ["tumor_normal", "cancer_type"]
    training = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": 2,
                "num_threads": 1, "progress_bar": False}
    hp = resolve_hparams("tybalt", "default", {"latent_dim": 4, "batch_size": 16,
                                                "condition_on": condition})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = str(train_model("tybalt", data, hp, training, 0, tmp_path / "model"))
    assert checkpoint.load(model).data["condition_categories"] == [
        "normal/BRCA", "tumor/BRCA", "tumor/PRAD"]
    sample_expression(model, {"normal/BRCA": 3, "tumor/PRAD": 2}, tmp_path / "s.h5ad")
    samples = _read(tmp_path / "s.h5ad")
    assert samples.obs["tumor_normal+cancer_type"].astype(str).tolist() == (
        ["normal/BRCA"] * 3 + ["tumor/PRAD"] * 2)
    assert samples.uns["model"]["condition_on"] == "tumor_normal+cancer_type"
    with pytest.raises(MedgenInputError, match="never seen"):
        sample_expression(model, {"PRAD": 3}, tmp_path / "x.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = evaluate_synthetic_expression(data, model, SYNTHETIC, LABELS, 0,
                                              tmp_path / "eval")
    mine = table[(table["method"] == "tybalt") & (table["metric"] == "category_recall")]
    assert set(mine["category"]) == {"normal/BRCA", "tumor/BRCA", "tumor/PRAD"}
    bad = resolve_hparams("tybalt", "default", {"condition_on": ["tumor_normal", "tissue"]})
    with pytest.raises(MedgenInputError, match=r"'models.tybalt.params.condition_on' is "
                                               r"\['tumor_normal', 'tissue'\]: 'tissue' is "
                                               r"not an obs column"):
        train_model("tybalt", data, bad, training, 0, tmp_path / "bad")


def test_the_same_inputs_give_byte_identical_tables(evaluated):
    root = evaluated[0]
    for name in ("metrics.tsv", tidy.FILE):
        assert (root / "again" / name).read_bytes() == (root / "conditional" / name).read_bytes()


def test_an_unknown_baseline_is_refused(models, data, tmp_path):
    from medgen.tasks.expression.synthetic import evaluate_synthetic_expression

    with pytest.raises(MedgenInputError, match=r"synthetic.baselines' names \['gan'\]"):
        evaluate_synthetic_expression(data, models["plain"], {**SYNTHETIC, "baselines": ["gan"]},
                                      LABELS, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- the workflow ------------------------------------------------------------------------

@pytest.mark.workflow
@pytest.mark.parametrize("enabled", [True, False])
def test_the_rule_is_planned_only_when_enabled(tmp_path, enabled):
    from tests.test_workflow import snakemake, write_config

    config = write_config(tmp_path, results_dir=str(tmp_path / "results"),
                          cache_dir=str(tmp_path / "cache"), tasks=["expression"],
                          expression={"evaluation": {"synthetic": {"enabled": enabled}}},
                          replicates={"seeds": [0, 1]})
    plan = snakemake("-n", "--cores", "1", "--configfile", str(config)).stdout
    jobs = re.findall(r"^rule (\w+):", plan, re.MULTILINE)
    assert "evaluate_expression" in jobs
    assert jobs.count("evaluate_synthetic_expression") == (2 if enabled else 0), plan
    # the replicates' aggregation compares the generated profiles too, per seed
    aggregate = plan.split("rule aggregate_replicates:")[1].split("\n\n")[0]
    assert ("seed1/tybalt/eval/synthetic/metrics_tidy.tsv" in aggregate) == enabled, aggregate


def test_the_sample_command_writes_per_category_profiles_and_refuses_a_predictor(
        models, tmp_path, capsys):
    from medgen.cli import main

    out = tmp_path / "cli.h5ad"
    assert main(["sample", models["conditional"], "--n", "PRAD=4,BRCA=2", "--out", str(out),
                 "--seed", "2"]) == 0
    samples = _read(out)
    assert samples.obs["cancer_type"].astype(str).tolist() == ["PRAD"] * 4 + ["BRCA"] * 2
    assert main(["sample", models["conditional"], "--n", "LUAD=3", "--out",
                 str(tmp_path / "x.h5ad")]) == 2
    assert "LUAD" in capsys.readouterr().err and not (tmp_path / "x.h5ad").exists()
    assert main(["sample", models["plain"], "--n", "many", "--out", str(tmp_path / "y")]) == 2
    assert "expected a number" in capsys.readouterr().err


def test_the_sample_command_refuses_what_would_go_wrong_before_drawing(models, data,
                                                                        tmp_path, capsys):
    import shutil

    from medgen.cli import main

    def refused(*args, message):
        code = main(["sample", *args])
        err = capsys.readouterr().err
        assert code == 2 and re.search(message, err), (args, err)

    victim = tmp_path / "victim"
    shutil.copytree(Path(models["plain"]).parent, victim)
    model = victim / "model.pt"
    before = {p.name: p.read_bytes() for p in victim.iterdir() if p.is_file()}
    training = tmp_path / "training.h5ad"
    shutil.copy(data, training)
    refused(str(model), "--n", "5", "--out", str(model), message="must end .h5ad")
    refused(str(model), "--n", "5", "--out", str(training), "--training-data", str(training),
            message="would overwrite .*training.h5ad, which this request reads")
    refused(str(model), "--n", "5", "--out", str(tmp_path), message="is a folder")
    refused(str(model), "--n", "5", "--out", str(tmp_path / "x.npz"), message="must end .h5ad")
    refused(str(model), "--n", "10000000000", "--out", str(tmp_path / "x.h5ad"),
            message="at most 10,000,000")
    refused(models["conditional"], "--n", "PRAD=2,PRAD=3", "--out", str(tmp_path / "x.h5ad"),
            message="category 'PRAD' is given twice")
    with pytest.raises(SystemExit):  # argparse: a seed numpy cannot take
        main(["sample", str(model), "--n", "5", "--out", str(tmp_path / "x.h5ad"),
              "--seed", "-1"])
    assert "outside 0..4294967295" in capsys.readouterr().err
    assert not (tmp_path / "x.h5ad").exists()
    assert {p.name: p.read_bytes() for p in victim.iterdir() if p.is_file()} == before
    # the aggregate posterior's training data is part of the samples' provenance
    out = tmp_path / "posterior.h5ad"
    assert main(["sample", str(model), "--n", "5", "--out", str(out), "--latent",
                 "aggregate_posterior", "--training-data", str(training)]) == 0
    recorded = json.loads(_read(out).uns["provenance_json"])
    assert recorded["config"]["latent"] == "aggregate_posterior"
    assert str(training) in recorded["inputs"]


def test_the_aggregate_posterior_is_fitted_on_the_training_latents_per_category(
        models, data, tmp_path):
    from medgen.tasks.expression.evaluate import encode_means, load_model
    from medgen.tasks.expression.loaders import read_expression
    from medgen.tasks.expression.sampling import LatentMixture, sample_expression

    with pytest.raises(MedgenInputError, match="needs the training h5ad"):
        sample_expression(models["plain"], 5, tmp_path / "x.h5ad", latent="aggregate_posterior")
    module, ckpt = load_model(models["plain"])
    mixture = LatentMixture(module, data, ckpt, seed=0)
    expression = read_expression(data)
    train = expression.mask("train")
    means = encode_means(module, expression.x[train].astype(np.float32),
                         np.zeros((int(train.sum()), 0), dtype=np.float32))
    z = mixture.draw(None, 4000, np.random.default_rng(0))
    np.testing.assert_allclose(z.mean(axis=0), means.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(z.std(axis=0), means.std(axis=0), rtol=0.2, atol=0.02)
    out = tmp_path / "posterior.h5ad"
    sample_expression(models["conditional"], {"PRAD": 3}, out, data_path=data,
                      latent="aggregate_posterior")
    assert _read(out).uns["latent"] == "aggregate_posterior"


# --- apply mode: the config's sampling section -------------------------------------------

def test_apply_mode_samples_what_the_config_asks_as_the_command_does(models, data, tmp_path):
    from medgen import config as medgen_config
    from medgen.apply import apply_model, check_apply_config
    from medgen.cli import main

    config = medgen_config.load(overrides={
        "tasks": ["expression"], "seed": 5,
        "apply": {"activate": True, "model": models["conditional"]},
        # sampling needs no new tables: the default source (a download) is not refused
        "expression": {"sampling": {"n_samples": {"PRAD": 4, "BRCA": 2}}}})
    assert check_apply_config(config) == "expression"
    out = apply_model(models["conditional"], config, tmp_path / "apply")
    assert out == tmp_path / "apply" / "synthetic.h5ad"
    samples = _read(out)
    assert samples.obs["cancer_type"].astype(str).tolist() == ["PRAD"] * 4 + ["BRCA"] * 2
    assert samples.uns["synthetic"] and samples.uns["seed"] == 5
    assert main(["sample", models["conditional"], "--n", "PRAD=4,BRCA=2", "--seed", "5",
                 "--out", str(tmp_path / "cli.h5ad")]) == 0
    np.testing.assert_array_equal(samples.X, _read(tmp_path / "cli.h5ad").X)
    # a plain number of a conditional model: split by the shares of the training data named
    config["expression"]["sampling"] = {"n_samples": 10, "latent": "prior",
                                        "training_data": data}
    check_apply_config(config)
    assert _read(apply_model(models["conditional"], config, tmp_path / "b")).n_obs == 10
    config["expression"]["sampling"]["training_data"] = str(tmp_path / "missing.h5ad")
    with pytest.raises(MedgenInputError, match=r"'expression.sampling.training_data' is "
                                               r"'.*missing.h5ad': no such file"):
        check_apply_config(config)
    config["expression"]["sampling"] = {"n_samples": {"LUAD": 3}, "latent": "prior",
                                        "training_data": None}
    with pytest.raises(MedgenInputError, match="LUAD"):
        apply_model(models["conditional"], config, tmp_path / "c")
    assert not (tmp_path / "c" / "synthetic.h5ad").exists()


@pytest.mark.workflow
def test_an_apply_run_that_samples_plans_the_model_alone(models, tmp_path):
    from tests.test_workflow import snakemake, write_config

    config = write_config(tmp_path, results_dir=str(tmp_path / "results"),
                          cache_dir=str(tmp_path / "cache"), tasks=["expression"],
                          apply={"activate": True, "model": models["plain"]},
                          expression={"sampling": {"n_samples": 20}})
    plan = snakemake("-n", "--cores", "1", "--configfile", str(config)).stdout
    jobs = re.findall(r"^rule (\w+):", plan, re.MULTILINE)
    assert "apply_model" in jobs and "fetch_syng_bts" not in jobs, plan
    apply = plan.split("rule apply_model:")[1].split("\n\n")[0]
    assert f"input: {models['plain']}\n" in apply + "\n", apply


def test_a_sampling_config_that_would_fail_in_the_job_is_refused_before_it(models):
    from medgen import config as medgen_config
    from medgen.apply import check_apply_config

    def applying(sampling, model="conditional", **more):
        return medgen_config.load(overrides={
            "tasks": ["expression", "anomaly"], "apply": {"activate": True,
                                                          "model": models[model]},
            "expression": {"sampling": sampling}, **more})

    for sampling, message in (
            ({"n_samples": {"LUAD": 3}}, r"'expression.sampling': categories \['LUAD'\]"),
            ({"n_samples": 10}, "give counts per category, or the training h5ad"),
            ({"n_samples": {"BRCA": 3}, "latent": "aggregate_posterior"},
             "set expression.sampling.training_data"),
            ({"n_samples": 10**12}, "at most 10,000,000")):
        model = "plain" if sampling["n_samples"] == 10**12 else "conditional"
        with pytest.raises(MedgenInputError, match=message):
            check_apply_config(applying(sampling, model))
    with pytest.raises(MedgenInputError, match=r"'anomaly.sampling.n_samples' is set, but "
                                               r"apply.model .* is a model of task "
                                               r"'expression'"):
        check_apply_config(applying({"n_samples": None}, anomaly={"sampling": {
            "n_samples": 5}}))
    # outside apply mode a sampling section would be ignored by training: refused
    with pytest.raises(MedgenInputError, match="'expression.sampling.n_samples' is set, but "
                                               "apply.activate is false"):
        medgen_config.load(overrides={"expression": {"sampling": {"n_samples": 5}}})
