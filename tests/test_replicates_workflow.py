"""Replicates in the workflow: one job per family x seed, data prepared once per split, a
redrawn split that keeps patients whole, aggregation, and resume of a partial set."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from medgen import config as medgen_config
from medgen.evaluate import replicates
from tests.helpers.replicates import planned_jobs

from conftest import run_snakemake, small_real_config

REPO_ROOT = medgen_config.REPO_ROOT
DATASET = REPO_ROOT / "config" / "datasets"


def write(tmp_path, name, sections):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sections))
    return path


@pytest.mark.workflow
def test_a_replicated_dry_run_plans_one_training_job_per_family_and_seed(tmp_path):
    base = {"results_dir": str(tmp_path / "results"), "replicates": {"seeds": [3, 5, 8]}}
    config = write(tmp_path, "r.yaml", base)
    out = run_snakemake("-n", "--configfile", str(DATASET / "brats_anomaly.yaml"), str(config))
    jobs = planned_jobs(out.stdout)
    # anogan, fanogan, convae: three families, three seeds; the split is shared
    assert jobs["train_model"] == 9 and jobs["evaluate_anomaly"] == 3
    assert jobs["prepare_training_images"] == 1 and jobs["prepare_evaluation_images"] == 1
    assert jobs["aggregate_replicates"] == 1
    assert jobs["model_card"] == 9  # one beside every model.pt
    for seed in (3, 5, 8):
        assert f"seed{seed}/models/fanogan/model.pt" in out.stdout
    redraw = write(tmp_path, "s.yaml", {**base, "replicates": {"seeds": [3, 5, 8],
                                                               "redraw_split": True}})
    out = run_snakemake("-n", "--configfile", str(DATASET / "tcga_mirna_inference.yaml"),
                        str(redraw))
    jobs = planned_jobs(out.stdout)
    assert jobs["preprocess_expression"] == 3 and jobs["prepare_expression_inference"] == 3
    assert jobs["train_model"] == 6  # ggan and dgex, three seeds each
    # one seed is not a replicate set: refused before anything runs
    one = write(tmp_path, "o.yaml", {**base, "replicates": {"seeds": [4]}})
    out = run_snakemake("-n", "--configfile", str(one), check=False)
    assert out.returncode != 0
    assert "config key 'replicates.seeds' is [4]: one replicate" in out.stdout + out.stderr


@pytest.mark.realdata
@pytest.mark.workflow
def test_replicates_run_aggregate_redraw_whole_patients_and_resume_only_missing_seeds(
        shared_data, tmp_path, monkeypatch):
    sections = small_real_config(shared_data, tmp_path / "results", "reps")
    sections["training"]["max_epochs"] = 2
    sections["replicates"] = {"seeds": [0, 1], "redraw_split": True}
    sections["tracking"] = {"backend": "mlflow"}  # one experiment, a run per seed
    config = write(tmp_path, "c.yaml", sections)
    args = ("--cores", "2", "--configfile", str(DATASET / "tcga_mirna.yaml"), str(config))
    run_snakemake(*args)
    run = tmp_path / "results" / "reps"
    # each replicate drew its own patient-level split; no patient straddles two splits
    manifests = [pd.read_csv(run / f"seed{s}/data/split_manifest.tsv", sep="\t") for s in (0, 1)]
    assert not manifests[0]["split"].equals(manifests[1]["split"])
    for manifest in manifests:
        assert (manifest.groupby("patient")["split"].nunique() == 1).all()
    comparisons = pd.read_csv(run / "replicates/expression/comparisons.tsv", sep="\t")
    assert set(comparisons["model"]) == {"tybalt"}
    assert {"pca", "ica", "nmf"} <= set(comparisons["baseline"])
    assert set(comparisons["verdict"]) <= {"better", "worse", "no difference detected"}
    assert (comparisons["n_replicates"] == 2).all()
    summary = pd.read_csv(run / "replicates/expression/summary.tsv", sep="\t")
    tybalt = summary[(summary["method"] == "tybalt") & (summary["metric"] == "test_mse")]
    per_seed = [replicates.tidy.read(run / f"seed{s}/tybalt/eval/metrics_tidy.tsv")
                for s in (0, 1)]
    values = [t[(t["method"] == "tybalt") & (t["metric"] == "test_mse")
                & (t["unit"] == "all")]["value"].item() for t in per_seed]
    assert tybalt["mean"].item() == pytest.approx(sum(values) / 2, rel=1e-5)
    assert (run / "replicates/expression/critical_difference.png").stat().st_size > 1000
    card = json.loads((run / "seed1/models/tybalt/model_card.json").read_text())
    assert card["training"]["seed"] == 1 and card["evaluation"]["split"] == "test"
    mse = [r for r in card["evaluation"]["replicates"] if r["metric"] == "test_mse"]
    assert {r["baseline"] for r in mse} >= {"pca", "ica", "nmf"}
    assert mse[0]["model_mean"] == pytest.approx(tybalt["mean"].item(), rel=1e-6)
    assert "Over the replicates" in (run / "seed1/models/tybalt/model_card.md").read_text()
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as medgen.tracking opts in
    client = MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("reps").experiment_id],
                              order_by=["tags.seed"])
    assert [r.data.tags["seed"] for r in runs] == ["0", "1"]
    assert runs[1].data.metrics["test/test_mse"] == pytest.approx(values[1], rel=1e-6)
    assert "test/baseline/pca/test_mse" in runs[1].data.metrics
    assert {a.path for a in client.list_artifacts(runs[1].info.run_id)} == {
        "model.pt", "model_card.md", "model_card.json"}
    # the report leads with the aggregate: its section sorts first, captions rendered
    report = tmp_path / "report.html"
    run_snakemake(*args, "--report", str(report))
    html = report.read_text(errors="replace")
    assert "Across replicates" in html and "comparisons.tsv" in html
    assert "2\n  replicates (seeds 0, 1" in html or "replicates (seeds 0, 1" in html
    # a lost replicate: only its jobs (and the aggregation) run again
    shutil.rmtree(run / "seed1")
    plan = planned_jobs(run_snakemake("-n", *args).stdout)
    # (both seeds' model cards: they carry the aggregate over the replicates)
    assert plan == {"preprocess_expression": 1, "train_model": 1, "evaluate_expression": 1,
                    "aggregate_replicates": 1, "model_card": 2, "default": 1,
                    "total": 7}, plan
