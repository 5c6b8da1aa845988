"""Apply path: a trained model.pt on new data, without training (medgen.apply and the
workflow's apply mode)."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from medgen import checkpoint
from medgen import config as medgen_config
from medgen.apply import apply_model
from medgen.data.expression import preprocess_expression
from medgen.errors import MedgenInputError
from medgen.registry import resolve_hparams
from medgen.train import train_model

from conftest import REPO_ROOT, run_snakemake

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": 2,
            "num_threads": 1, "progress_bar": False}


pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints


def counts_table(path: Path, n: int, genes: list[str], seed: int) -> Path:
    """A samples x genes count table with TCGA barcodes (synthetic fixture)."""
    rng = np.random.default_rng(seed)
    types = ["01", "11"] * (n // 2)
    index = [f"TCGA-{seed:02d}-{i:04d}-{t}A" for i, t in enumerate(types)]
    frame = pd.DataFrame(rng.poisson(20, (n, len(genes))) + 1, index=index, columns=genes)
    frame.iloc[:, 0] += np.array([40 if t == "01" else 0 for t in types])  # tumour marker
    frame.to_csv(path)
    return path


@pytest.fixture(scope="module")
def expression_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("apply_expression")
    genes = [f"g{i}" for i in range(30)]
    table = counts_table(root / "train.csv", 80, genes, seed=1)
    cfg = medgen_config.load(overrides={"expression": {
        "source": "files", "top_k_genes": 12, "labels": ["tumor_normal"],
        "files": [{"path": str(table), "format": "csv", "orientation": "samples_as_rows"}]}})
    preprocess_expression(cfg["expression"]["files"], cfg["expression"], 0,
                          root / "expression.h5ad", root / "split.tsv")
    hp = resolve_hparams("tybalt", "default", {"latent_dim": 3, "batch_size": 16})
    model = train_model("tybalt", root / "expression.h5ad", hp, TRAINING, 0, root / "model",
                        config=cfg)
    return root, genes, cfg, model


def test_expression_model_applied_to_new_samples(expression_model, tmp_path):
    root, genes, cfg, model = expression_model
    # a new cohort: other samples, the genes in another order, and an extra gene
    new = counts_table(tmp_path / "new.csv", 20, genes[::-1] + ["extra"], seed=7)
    config = medgen_config.deep_update(cfg, {"expression": {"files": [
        {"path": str(new), "format": "csv", "orientation": "samples_as_rows"}]}})
    metrics = json.loads(apply_model(model, config, tmp_path / "out").read_text())
    assert metrics["n_samples"] == 20 and metrics["family"] == "tybalt"
    assert np.isfinite(metrics["mse"]) and metrics["labels"] == ["tumor_normal"]
    latent = pd.read_csv(tmp_path / "out" / "latent.tsv", sep="\t", index_col=0)
    assert latent.shape == (20, 3)
    assoc = pd.read_csv(tmp_path / "out" / "node_associations.tsv", sep="\t")
    assert set(assoc["label"]) == {"tumor_normal"}
    # the model's genes in the model's order, scaled with the training ranges (clipped to
    # [0, 1], not refitted on the new cohort: a refit would put each gene's min at exactly 0)
    saved = checkpoint.load(model)
    prepared = ad.read_h5ad(tmp_path / "out" / "data" / "expression.h5ad")
    assert list(prepared.var_names) == saved.data["genes"]
    assert len(saved.data["scale_min"]) == len(saved.data["genes"]) == 12
    assert not np.allclose(prepared.X.min(axis=0), 0.0)
    assert (prepared.obs["split"] == "test").all()


def test_expression_apply_refuses_tables_without_the_models_genes(expression_model, tmp_path):
    _, genes, cfg, model = expression_model
    trained = checkpoint.load(model).data["genes"]
    new = counts_table(tmp_path / "new.csv", 10, [g for g in genes if g != trained[0]], seed=3)
    config = medgen_config.deep_update(cfg, {"expression": {"files": [
        {"path": str(new), "format": "csv", "orientation": "samples_as_rows"}]}})
    with pytest.raises(MedgenInputError, match=f"missing .*'{trained[0]}'"):
        apply_model(model, config, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.realdata
def test_anomaly_model_applied_to_new_subjects(shared_data, tmp_path, caplog):
    brats = shared_data / "imaging" / "brats"
    sheet = pd.read_csv(REPO_ROOT / "config" / "datasets" / "brats_anomaly_samples.tsv",
                        sep="\t")
    small = {"target_spacing": [4.0, 4.0, 4.0], "slice_size": 48, "image_size": 16,
             "max_patches_per_subject": 100, "data_root": str(brats)}
    train_sheet = tmp_path / "train.tsv"
    sheet[sheet.subject.isin(["BraTS2021_00000", "BraTS2021_00003", "BraTS2021_00006"])].assign(
        split=["train", "val", "test"]).to_csv(train_sheet, sep="\t", index=False)
    cfg = medgen_config.load(REPO_ROOT / "config" / "datasets" / "brats_anomaly.yaml",
                             {"anomaly": {**small, "sample_sheet": str(train_sheet)}})
    from medgen import model_card
    from medgen.tasks.anomaly.evaluate import evaluate_anomaly
    from medgen.tasks.anomaly.inference import score_splits
    from medgen.tasks.anomaly.prepare import prepare_images

    splits = prepare_images(str(train_sheet), cfg["anomaly"], 0, tmp_path / "data")
    hp = {**resolve_hparams("convae", "default"), "channels_base": 4, "max_epochs": 1}
    model = train_model("convae", splits["train"], hp, TRAINING, 0, tmp_path / "convae",
                        config=cfg)
    # the training run's evaluation calibrates each method's operating point on val; the
    # model card beside model.pt stores them
    imaging = cfg["anomaly"]
    runs = {m: tmp_path / "scores" / m for m in ("convae", "intensity")}
    for method, folder in runs.items():
        score_splits(method, model if method == "convae" else None, tmp_path / "data", folder,
                     imaging["scoring"], imaging["kind"])
    evaluate_anomaly(runs, tmp_path / "data", imaging, tmp_path / "report")
    card = model_card.build(model, [tmp_path / "report" / "metrics_tidy.tsv"])
    model_card.write(card, model.parent / "model_card.md", model.parent / "model_card.json")
    point = card["evaluation"]["operating_points"]["model"]
    assert point["false_positive_rate"] == 0.05 and point["pixel_threshold"] is not None
    assert "Operating point (calibrated on this run's val split" in model_card.markdown(card)
    trained_files = {p: p.stat().st_mtime_ns for p in (tmp_path / "convae").rglob("*")}
    # four new subjects in a sheet without split or group: every new subject is evaluated
    new_sheet = tmp_path / "new.tsv"
    sheet[sheet.subject.isin(["BraTS2021_00005", "BraTS2021_00019", "BraTS2021_00014",
                              "Brats18_2013_2_1"])].drop(columns="split").to_csv(
        new_sheet, sep="\t", index=False)
    config = medgen_config.deep_update(cfg, {"anomaly": {"sample_sheet": str(new_sheet)}})
    out = apply_model(model, config, tmp_path / "apply")
    rows = pd.read_csv(out, sep="\t").set_index("method")
    # the model beside the trivial bar its run evaluated, each at its stored thresholds
    assert set(rows.index) == {"convae", "intensity"} and set(rows["split"]) == {"test"}
    assert rows.loc["convae", "threshold"] == pytest.approx(point["image_threshold"], rel=1e-3)
    assert np.isfinite(rows.loc["convae", "dice_at_val_threshold"])
    assert np.isfinite(rows.loc["intensity", "sensitivity"])
    used = json.loads((tmp_path / "apply" / "report" / "operating_points.json").read_text())
    assert used["convae"]["source"].startswith("stored with the model")
    # the shipped config lists median-filter candidates: each method keeps the size its
    # training run chose on val (the new subjects' labels choose nothing)
    assert point["median_filter_setting"] == [0, 3, 5]
    assert used["convae"]["median_filter"] == point["median_filter"] in (0, 3, 5)
    assert rows.loc["convae", "median_filter"] == point["median_filter"]
    scores = pd.read_csv(tmp_path / "apply" / "scores" / "convae" / "scores_test.tsv", sep="\t")
    assert set(scores["subject"]) == {"BraTS2021_00005", "BraTS2021_00019", "BraTS2021_00014",
                                      "Brats18_2013_2_1"}
    assert not (tmp_path / "apply" / "data" / "train.npz").exists()
    # nothing of the trained model was touched
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "convae").rglob("*")} == trained_files
    # an apply config that names no new images, or images without the model's modalities,
    # is refused before anything runs (medgen validate and the workflow plan call this)
    from medgen.apply import check_apply_config

    def applying(**anomaly):
        return {**medgen_config.deep_update(config, {"anomaly": anomaly}),
                "apply": {"activate": True, "model": str(model)}}

    with pytest.raises(MedgenInputError, match="'anomaly.sample_sheet' is empty: to apply a "
                       "model, name the new images' sample sheet there"):
        check_apply_config(applying(sample_sheet=""))
    flair_only = tmp_path / "flair_only.tsv"
    sheet[["subject", "flair"]].to_csv(flair_only, sep="\t", index=False)
    with pytest.raises(MedgenInputError, match=r"flair_only.tsv lacks the column\(s\) t2 that"):
        check_apply_config(applying(sample_sheet=str(flair_only)))
    demo = checkpoint.load(model)
    demo.config = {**demo.config, "anomaly": {**demo.config["anomaly"], "kind": "mni152_demo"}}
    checkpoint.save(demo, tmp_path / "demo" / "model.pt")
    with pytest.raises(MedgenInputError, match="trained on the built-in MNI152 demo"):
        check_apply_config({**applying(), "apply": {"activate": True,
                                                    "model": str(tmp_path / "demo/model.pt")}})
    # thresholds calibrated under another median filter do not fit: said, and not used
    other = medgen_config.deep_update(config, {"anomaly": {"evaluation": {"median_filter": 3}}})
    out = apply_model(model, other, tmp_path / "apply_filtered")
    rows = pd.read_csv(out, sep="\t").set_index("method")
    assert set(rows.index) == {"convae"} and np.isnan(rows.loc["convae", "dice_at_val_threshold"])
    assert "median_filter differ from the training run's (median_filter [0, 3, 5])" in caplog.text


@pytest.mark.workflow
def test_workflow_apply_mode_runs_no_training(expression_model, tmp_path):
    root, genes, cfg, model = expression_model
    new = counts_table(tmp_path / "new.csv", 20, genes, seed=9)
    overrides = tmp_path / "apply.yaml"
    overrides.write_text(yaml.safe_dump({
        "run_name": "applied", "results_dir": str(tmp_path / "results"),
        "apply": {"activate": True, "model": str(model)},
        "tasks": ["expression"],  # replaces the default's [expression, anomaly]
        "expression": {"source": "files", "labels": ["tumor_normal"], "files": [
            {"path": str(new), "format": "csv", "orientation": "samples_as_rows"}]}}))
    dry = run_snakemake("-n", "--cores", "1", "--configfile", str(overrides))
    assert "apply_model" in dry.stdout
    for rule in ("train_model", "preprocess_expression", "evaluate_expression",
                 "prepare_training_images", "prepare_evaluation_images"):
        assert f"rule {rule}:" not in dry.stdout, dry.stdout
    run_snakemake("--cores", "1", "--configfile", str(overrides))
    metrics = json.loads((tmp_path / "results" / "applied" / "apply" / "metrics.json")
                         .read_text())
    assert metrics["n_samples"] == 20
    provenance = json.loads((tmp_path / "results" / "applied" / "provenance.json").read_text())
    assert str(model) in json.dumps(provenance["inputs"])


def test_apply_config_must_name_data_for_the_models_task(expression_model, tmp_path):
    from medgen.apply import check_apply_config

    _, _, cfg, model = expression_model
    applied = medgen_config.deep_update(cfg, {"apply": {"activate": True, "model": str(model)}})
    assert check_apply_config(applied) == "expression"
    # expression not in tasks: the new data would silently be something else
    off = medgen_config.deep_update(applied, {"tasks": ["anomaly"]})
    with pytest.raises(MedgenInputError,
                       match=r"'tasks' is \['anomaly'\].*model of task 'expression'"
                             r".*list expression"):
        check_apply_config(off)
    download = medgen_config.deep_update(applied, {"expression": {"source": "syng_bts"}})
    with pytest.raises(MedgenInputError, match="'expression.source' is 'syng_bts'"):
        check_apply_config(download)
    not_a_model = tmp_path / "model.pt"
    not_a_model.write_text("weights")
    broken = medgen_config.deep_update(applied, {"apply": {"model": str(not_a_model)}})
    with pytest.raises(MedgenInputError, match="not a medgen model file"):
        check_apply_config(broken)
