"""The Snakemake workflow: lint, dry run, a full small run on real data, report, rerun."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medgen import config as medgen_config
from medgen.provenance import checksums

REPO_ROOT = medgen_config.REPO_ROOT
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(
    *args: str, cwd: Path = REPO_ROOT, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def write_config(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "test_config.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


@pytest.mark.workflow
@pytest.mark.parametrize("snakefile", ["Snakefile", "workflow/papers.smk"])
def test_lint_has_no_findings(snakefile):
    # every rule has its software (the global container directive); .ci/run lints too
    result = snakemake("--lint", "--snakefile", snakefile, check=False)
    output = result.stdout + result.stderr
    findings = [line.strip() for line in output.splitlines() if line.startswith("    * ")]
    assert findings == [], output
    assert result.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output


@pytest.mark.workflow
def test_dry_run_of_default_config_lists_the_pipeline(tmp_path):
    config = write_config(tmp_path, results_dir=str(tmp_path / "results"),
                          cache_dir=str(tmp_path / "cache"))
    result = snakemake("-n", "--cores", "1", "--configfile", str(config))
    for rule in ("fetch_syng_bts", "preprocess_expression", "train_model", "evaluate_expression",
                 "provenance"):
        assert rule in result.stdout


@pytest.mark.workflow
def test_scoring_asks_for_a_gpu_only_for_networks_when_training_on_gpus(tmp_path):
    config = write_config(tmp_path, results_dir=str(tmp_path / "results"),
                          training={"accelerator": "gpu", "devices": 2})
    result = snakemake("-n", "--cores", "1", "--configfile", str(config))
    jobs = result.stdout.split("rule ")
    gpus = {}
    for job in jobs:
        if job.startswith("score_anomalies:"):
            method = job.split("wildcards: method=")[1].split()[0]
            gpus[method] = job.split("gpu=")[1].split(",")[0]
    assert gpus and gpus.pop("fanogan") == "1", result.stdout  # the default config's demo
    assert set(gpus.values()) == {"0"}, gpus  # PCA and trivial scores stay on the CPU


@pytest.mark.workflow
def test_evaluation_and_log_settings_rerun_the_evaluation_not_preprocessing_training_or_scoring(
        tmp_path):
    # the default config's anomaly demo (nilearn's MNI152 template), trained for one epoch
    results = tmp_path / "results"
    sections = {"results_dir": str(results), "cache_dir": str(tmp_path / "cache"),
                "run_name": "demo", "training": {"accelerator": "cpu"},  # progress_bar: auto
                "models": {"fanogan": {"params": {"max_epochs": 1, "encoder_epochs": 1}}},
                "anomaly": {"evaluation": {"baselines": ["pca"]}}}
    target = str(results / "demo" / "anomaly" / "report" / "metrics.json")
    (tmp_path / "first").mkdir()
    first = snakemake(target, "--cores", "2", "--configfile",
                      str(write_config(tmp_path / "first", **sections)))
    # output to a file (as on a batch system): no bar redraws; the jobs' output is in their
    # rule logs, headed by what they ran with, with one line per training epoch
    assert "\r" not in first.stdout + first.stderr
    assert "epoch 1/1" not in first.stdout + first.stderr
    train_log = (results / "demo" / "logs" / "train_fanogan.log").read_text()
    assert "\r" not in train_log
    heads = [line.split(": ", 1)[1] for line in train_log.splitlines()[:5]]
    assert heads[0] == "rule: train_model (family=fanogan)"
    assert [head.split(":")[0] for head in heads[1:]] == ["config", "seed", "device", "threads"]
    assert train_log.count("epoch 1/1: ") == 2  # the GAN stage, then the encoder stage
    assert "fanogan: stage 'encoder', max_epochs=1, seed" in train_log
    sections["anomaly"]["evaluation"] = {"baselines": ["pca", "brightness"], "median_filter": 3,
                                         "false_positive_rate": 0.1, "n_grid": 4}
    sections["training"]["progress_bar"] = False  # only the log changes: no retraining
    (tmp_path / "second").mkdir()
    plan = snakemake(target, "-n", "--cores", "2", "--configfile",
                     str(write_config(tmp_path / "second", **sections))).stdout
    jobs = re.findall(r"^rule (\w+):", plan, re.MULTILINE)
    assert sorted(jobs) == ["evaluate_anomaly", "score_anomalies"], plan
    assert "wildcards: method=brightness" in plan  # only the new baseline is scored
    # a scoring setting rescores every method and re-evaluates; it never retrains
    sections["anomaly"]["scoring"] = {"residual": "positive"}
    (tmp_path / "third").mkdir()
    plan = snakemake(target, "-n", "--cores", "2", "--configfile",
                     str(write_config(tmp_path / "third", **sections))).stdout
    jobs = re.findall(r"^rule (\w+):", plan, re.MULTILINE)
    assert sorted(set(jobs)) == ["evaluate_anomaly", "score_anomalies"], plan
    assert "wildcards: method=fanogan" in plan and "wildcards: method=pca" in plan


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"models": {"tybalt": {"preset": "fast"}}}, "expected one of: paper, default"),
        ({"models": {"vae": {"preset": "default"}}}, "unknown config key 'models.vae'"),
        ({"training": {"max_epochs": "ten"}}, "'training.max_epochs' is 'ten'"),
    ],
)
def test_bad_config_stops_before_anything_runs(tmp_path, sections, message):
    config = write_config(tmp_path, results_dir=str(tmp_path / "results"), **sections)
    result = snakemake("-n", "--cores", "1", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.realdata
@pytest.mark.workflow
def test_full_run_on_real_data_then_nothing_to_do(real_run):
    run = real_run["run"]
    metrics = json.loads((run / "tybalt/eval/metrics.json").read_text())
    assert {"tybalt", "pca", "ica", "nmf"} <= set(metrics["methods"])
    provenance = json.loads((run / "provenance.json").read_text())
    # the whole resolved config (defaults, dataset config, then the test's), not only the
    # run_name this test wrote (which named the folder read here anyway)
    dataset = REPO_ROOT / "config" / "datasets" / "tcga_mirna.yaml"
    resolved = medgen_config.load([dataset, real_run["config"]])
    assert provenance["config"] == json.loads(json.dumps(resolved))
    assert provenance["versions"]["torch"].startswith("2.13.0")
    # each expression table read (BRCA, PRAD), with the sha256 of its bytes
    tables = [entry["path"] for entry in resolved["expression"]["files"]]
    assert {path: provenance["inputs"].get(path) for path in tables} == {
        path: hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in tables}

    # a model card beside each model: held-out metrics beside the baselines, what it is for
    card = json.loads((run / "models/tybalt/model_card.json").read_text())
    assert card["model"]["family"] == "tybalt" and "Way & Greene" in card["model"]["paper"]
    mse = next(m for m in card["evaluation"]["metrics"] if m["metric"] == "test_mse")
    assert mse["model"] == pytest.approx(metrics["methods"]["tybalt"]["test_mse"])
    assert {"pca", "ica", "nmf"} <= set(mse["methods"])
    assert card["training"]["samples"]["train"] > 100
    assert any(path.endswith(".parquet") for path in card["training"]["inputs"])
    printed = subprocess.run([sys.executable, "-m", "medgen.cli", "info",
                              str(run / "models/fanogan/model.pt")],
                             capture_output=True, text=True, check=True).stdout
    assert printed == (run / "models/fanogan/model_card.md").read_text()
    assert "| auroc (higher is better) |" in printed and "## How to apply it" in printed

    again = snakemake("-n", *real_run["args"])
    assert "Nothing to be done" in again.stdout + again.stderr
    # Inputs are never modified by the whole workflow.
    assert checksums(real_run["inputs"]) == real_run["checksums_before"]


@pytest.mark.realdata
@pytest.mark.workflow
def test_report_holds_figures_tables_and_provenance(real_run):
    html = real_run["report"].read_text(errors="replace")
    for name in ("latent_umap.png", "training_curves.png", "metrics.tsv", "provenance.json"):
        assert name in html
    # the anomaly demo scores synthetic anomalies at slice and pixel level, and says so
    anomaly_dir = real_run["run"] / "anomaly"
    anomaly = json.loads((anomaly_dir / "report/metrics.json").read_text())
    test = {r["method"]: r for r in anomaly["metrics"] if r["split"] == "test"}
    assert {"fanogan", "pca", "intensity"} <= set(test)
    for method, row in test.items():
        assert row["n_anomalous"] > 0 and row["n_normal"] > 0, method
        assert math.isfinite(row["auroc"]) and math.isfinite(row["auprc"]), method
    _check_anomaly_metrics_against_written_outputs(anomaly_dir, anomaly, test)
    assert any("synthetic" in note for note in anomaly["notes"])
    assert anomaly["synthetic_anomalies"] is True
    assert "notes.txt" in html and "slices_by_subject.tsv" in html
    for name in ("roc_val.png", "hist_val.png", "grid_fanogan.png", "grid_pca.png"):
        assert name in html, name  # val figures and every reconstruction grid


def _check_anomaly_metrics_against_written_outputs(anomaly_dir: Path, anomaly: dict,
                                                    test: dict[str, dict]) -> None:
    """The run's anomaly metrics recomputed with scikit-learn from what the same run wrote:
    per-slice scores (AUROC, class counts), residual maps and the prepared test masks
    (pixel AUPRC, best Dice). Any output, right or wrong, lies in [0, 1]; these must match."""
    import numpy as np
    import pandas as pd
    from scipy.ndimage import median_filter
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
    )

    for method in ("fanogan", "pca", "intensity"):
        scores = pd.read_csv(anomaly_dir / "scores" / method / "scores_test.tsv", sep="\t",
                             float_precision="round_trip")
        y, score = scores["y"].to_numpy(), scores["score"].to_numpy()
        assert set(y) <= {0, 1}, method
        row = test[method]
        assert (row["n_normal"], row["n_anomalous"]) == ((y == 0).sum(), (y == 1).sum()), method
        assert row["auroc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12), method
        assert row["auprc"] == pytest.approx(average_precision_score(y, score), abs=1e-12), \
            method

    size = anomaly["provenance"]["config"]["anomaly"]["evaluation"]["median_filter"]
    with np.load(anomaly_dir / "data" / "test.npz") as data:
        inside, labels = data["masks"].astype(bool), data["labels_map"]
    with np.load(anomaly_dir / "scores" / "fanogan" / "maps_test.npz") as stored:
        maps = stored["residual_map"].astype(np.float32)
    if size > 1:
        maps = median_filter(maps, size=(1, size, size), mode="nearest")
    truth, values = labels[inside] > 0, maps[inside]
    fanogan = test["fanogan"]
    assert fanogan["pixel_auprc"] == pytest.approx(average_precision_score(truth, values),
                                                   rel=1e-9)
    precision, recall, _ = precision_recall_curve(truth, values)
    dice = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    assert fanogan["best_dice_upper_bound"] == pytest.approx(dice[:-1].max(), rel=1e-9)
    # the deployable Dice (threshold from val) never beats the one that peeks at test labels
    assert math.isfinite(fanogan["dice_at_val_threshold"])
    assert fanogan["dice_at_val_threshold"] <= fanogan["best_dice_upper_bound"] + 1e-9


@pytest.mark.realdata
@pytest.mark.workflow
def test_same_config_twice_gives_byte_identical_metrics(real_run, shared_data):
    second = real_run["tmp"] / "second.yaml"
    config = yaml.safe_load(real_run["config"].read_text())
    config["results_dir"] = str(real_run["tmp"] / "results_again")
    second.write_text(yaml.safe_dump(config))
    dataset = REPO_ROOT / "config" / "datasets" / "tcga_mirna.yaml"
    snakemake("--cores", "2", "--configfile", str(dataset), str(second))
    again = real_run["tmp"] / "results_again" / "ci"
    for name in ("models/tybalt/metrics.csv", "tybalt/eval/metrics.json",
                 "tybalt/eval/metrics.tsv", "data/split_manifest.tsv",
                 "anomaly/report/metrics.tsv"):
        assert (again / name).read_bytes() == (real_run["run"] / name).read_bytes(), name


@pytest.mark.realdata
@pytest.mark.workflow
def test_new_test_subjects_never_touch_training(shared_data, tmp_path):
    import pandas as pd

    sheet = pd.read_csv(REPO_ROOT / "config" / "datasets" / "brats_anomaly_samples.tsv",
                        sep="\t")
    path = tmp_path / "samples.tsv"
    first = sheet[sheet.subject.isin(["BraTS2021_00000", "BraTS2021_00014", "BraTS2021_00005"])]
    first.to_csv(path, sep="\t", index=False)
    sections = {
        "run_name": "brats", "results_dir": str(tmp_path / "results"),
        "cache_dir": str(tmp_path / "cache"),
        "training": {"accelerator": "cpu", "progress_bar": False},
        # no GAN family (the list replaces brats_anomaly.yaml's): the baselines only
        "anomaly": {"families": [],
                    "sample_sheet": str(path), "data_root": str(shared_data / "imaging/brats"),
                    "target_spacing": [4.0, 4.0, 4.0], "slice_size": 48, "image_size": 16,
                    "max_patches_per_subject": 100,
                    "evaluation": {"baselines": ["pca", "convae"], "convae_epochs": 1}},
    }
    config = write_config(tmp_path, **sections)
    dataset = str(REPO_ROOT / "config" / "datasets" / "brats_anomaly.yaml")
    snakemake("--cores", "2", "--configfile", dataset, str(config))
    model = tmp_path / "results" / "brats" / "models" / "convae" / "model.pt"
    trained = model.stat().st_mtime_ns
    # one more test subject in the sample sheet
    pd.concat([first, sheet[sheet.subject == "BraTS2021_00019"]]).to_csv(path, sep="\t",
                                                                         index=False)
    plan = snakemake("-n", "--cores", "2", "--configfile", dataset, str(config)).stdout
    jobs = set(re.findall(r"^rule (\w+):", plan, re.MULTILINE))
    assert "prepare_evaluation_images" in jobs and "evaluate_anomaly" in jobs, plan
    assert not jobs & {"prepare_training_images", "train_model", "fit_pca_baseline"}, plan
    snakemake("--cores", "2", "--configfile", dataset, str(config))
    assert model.stat().st_mtime_ns == trained
    scores = pd.read_csv(tmp_path / "results" / "brats" / "anomaly" / "scores" / "convae"
                         / "scores_test.tsv", sep="\t")
    assert set(scores["subject"]) == {"BraTS2021_00005", "BraTS2021_00019"}
