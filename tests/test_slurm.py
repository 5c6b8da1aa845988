"""A small but complete workflow through a real single-node SLURM (--executor slurm).

Brings SLURM up with ../shared/tools/slurm-local.sh (Debian slurm-wlm + munge, as root) when
it is not running already, and stops only the daemons it started.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medgen import config as medgen_config

from conftest import REAL_PATH, skip_or_fail_in_ci

REPO_ROOT = medgen_config.REPO_ROOT
SLURM_LOCAL = REPO_ROOT.parent / "shared" / "tools" / "slurm-local.sh"
STATE = Path("/tmp/medgen-slurm-local")
# every process here sees the real SLURM tools (conftest puts a stand-in scontrol first)
ENV = {**os.environ, "PATH": REAL_PATH}


def _slurm_up() -> bool:
    if shutil.which("scontrol", path=REAL_PATH) is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, text=True,
                          env=ENV).stdout.count(
        "UP") > 0


@pytest.fixture(scope="module")
def slurm_cluster():
    if not SLURM_LOCAL.exists():
        message = f"needs ../shared/tools/slurm-local.sh (shared/data tools) at {SLURM_LOCAL}"
        skip_or_fail_in_ci(message)
    started = False
    if not _slurm_up():
        if os.geteuid() != 0:
            message = "bringing up SLURM with slurm-local.sh needs root (CI runs as root)"
            skip_or_fail_in_ci(message)
        env = {**ENV, "SLURM_LOCAL_STATE": str(STATE)}
        subprocess.run(["bash", str(SLURM_LOCAL)], check=True, env=env, capture_output=True)
        started = True
    assert _slurm_up(), "slurmctld does not answer after slurm-local.sh"
    yield
    if started:
        env = {**ENV, "SLURM_LOCAL_STATE": str(STATE)}
        subprocess.run(["bash", str(SLURM_LOCAL), "stop"], check=True, env=env)
        assert not _slurm_up()


def test_profile_maps_training_resources_to_sbatch():
    profile = yaml.safe_load((REPO_ROOT / "config/profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert {"slurm_partition", "slurm_account", "mem_mb", "runtime"} <= set(
        profile["default-resources"])
    train_rules = (REPO_ROOT / "workflow/rules/train.smk").read_text()
    for resource in ("gpu=", "mem_mb=", "runtime="):
        assert resource in train_rules


@pytest.mark.realdata
@pytest.mark.workflow
def _test_profile(tmp_path: Path) -> Path:
    """The lab profile (config/profiles/slurm) plus what a test needs; returns its folder."""
    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    # The lab profile plus what a test needs: fast status checks, squeue (no slurmdbd here),
    # logs of successful jobs kept so that we can read their job IDs.
    profile = yaml.safe_load((REPO_ROOT / "config/profiles/slurm/config.yaml").read_text())
    profile.update({
        "slurm-init-seconds-before-status-checks": 5,
        "seconds-between-status-checks": 5,
        "slurm-status-command": "squeue",
        "slurm-keep-successful-logs": True,
        "slurm-logdir": str(tmp_path / "slurm_logs"),
        "retries": 0,
        "latency-wait": 10,
    })
    profile["default-resources"].update({"slurm_partition": "debug", "mem_mb": 2000,
                                         "runtime": 20})
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile))
    return profile_dir


def test_workflow_runs_every_job_through_sbatch(slurm_cluster, shared_data, tmp_path):
    profile_dir = _test_profile(tmp_path)
    overrides = tmp_path / "config.yaml"
    overrides.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"),
        "run_name": "slurm",
        "expression": {"source": "files", "files": [
            {"path": str(shared_data / "expression/tcga_mirna/BRCA.parquet"), "group": "BRCA"},
            {"path": str(shared_data / "expression/tcga_mirna/PRAD.parquet"), "group": "PRAD"},
        ], "evaluation": {"baselines": ["pca"], "synthetic": {"enabled": False}}},
        # the synthetic-data evaluations have their own tests: here they would add jobs only
        "anomaly": {"evaluation": {"synthetic": {"enabled": False}}},
        "training": {"max_epochs": 2, "accelerator": "cpu", "progress_bar": False},
    }))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(profile_dir),
         "--configfile", str(overrides)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = tmp_path / "results" / "slurm"
    _check_outputs(run, shared_data)

    # Every job of the DAG was an sbatch job: one SLURM log per rule, and squeue (finished
    # jobs stay listed for MinJobAge) knows each rule by the plugin's comment.
    expected = {"preprocess_expression", "train_model", "evaluate_expression", "provenance"}
    logged_rules = {p.name.removeprefix("rule_") for p in (tmp_path / "slurm_logs").iterdir()}
    assert expected <= logged_rules, logged_rules
    queue = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i %k"],
                           capture_output=True, text=True, check=True, env=ENV).stdout
    for rule in expected:
        assert f"rule_{rule}" in queue, queue
    assert "Submitted job" in result.stdout + result.stderr or "SLURM jobid" in (
        result.stdout + result.stderr)


def test_the_papers_workflow_runs_one_sbatch_job_per_family_and_seed(
        slurm_cluster, shared_data, tmp_path):
    # one study of workflow/papers.smk (Tybalt on TCGA miRNA) at the small budget (2 seeds,
    # 2 epochs): its module's rules go through sbatch like the main workflow's
    profile_dir = _test_profile(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "tybalt_tcga_all", "-s", "workflow/papers.smk",
         "--profile", str(profile_dir), "--config", "budget=small",
         f"results_dir={tmp_path / 'papers'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    aggregated = tmp_path / "papers/tcga_mirna_local/replicates/expression/summary.tsv"
    assert aggregated.exists(), sorted(p.name for p in (tmp_path / "papers").rglob("*"))
    # one SLURM log per job (this run's log folder; squeue also lists earlier runs' jobs)
    logs = tmp_path / "slurm_logs"
    trained = sorted(p.parent.name for p in
                     (logs / "rule_tybalt_tcga_train_model").rglob("*.log"))
    assert trained == ["0_tybalt", "1_tybalt"]  # Tybalt x seeds 0 and 1, each its own job
    assert len(list((logs / "rule_tybalt_tcga_aggregate_replicates").rglob("*.log"))) == 1


def _check_outputs(run: Path, shared_data: Path) -> None:
    """What the jobs wrote, checked against the config above (default preset, pca only)."""
    metrics = json.loads((run / "tybalt/eval/metrics.json").read_text())
    assert set(metrics) == {"methods", "knn_k", "labels", "n_train", "n_test", "n_genes",
                            "notes", "undefined_metrics"}
    assert set(metrics["methods"]) == {"tybalt", "pca"}  # expression.evaluation.baselines: [pca]
    assert metrics["labels"] == ["tumor_normal", "cancer_type"]
    assert metrics["knn_k"] == 5
    assert metrics["n_genes"] == 1000  # expression.top_k_genes
    assert 0 < metrics["n_test"] < metrics["n_train"]
    for method, row in metrics["methods"].items():
        assert row["latent_dim"] == 100, method  # the default preset's latent_dim
        for key in ("test_mse", "test_bce", "knn_accuracy_tumor_normal",
                    "knn_accuracy_cancer_type", "silhouette_tumor_normal",
                    "silhouette_cancer_type"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), (method, key)
    _check_metrics_against_written_outputs(run, metrics)

    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["config"]["run_name"] == "slurm"
    assert provenance["config"]["training"]["max_epochs"] == 2
    assert provenance["seed"] == 0
    tables = {str(shared_data / f"expression/tcga_mirna/{t}.parquet") for t in ("BRCA", "PRAD")}
    assert set(provenance["inputs"]) >= tables, provenance["inputs"]
    for table in tables:
        assert re.fullmatch(r"[0-9a-f]{64}", provenance["inputs"][table]), table


def _check_metrics_against_written_outputs(run: Path, metrics: dict) -> None:
    """The expression metrics recomputed with scikit-learn from what the same run wrote (the
    preprocessed h5ad, the Tybalt latent means, the model): split sizes, the PCA baseline's
    test MSE, Tybalt's test MSE, and both methods' k-NN accuracy of cancer type. Any MSE of
    data in [0, 1] lies in (0, 1) and any accuracy in [0, 1]; these must match."""
    import anndata as ad
    import numpy as np
    import torch
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    from medgen.tasks.expression.evaluate import load_model

    adata = ad.read_h5ad(run / "data/expression.h5ad")
    x = np.asarray(adata.X, dtype=np.float64)
    split = adata.obs["split"].astype(str).to_numpy()
    train, test = split == "train", split == "test"
    assert (metrics["n_train"], metrics["n_test"]) == (train.sum(), test.sum())
    assert metrics["n_genes"] == x.shape[1]

    # PCA at the latent dimension, fitted on train (as expression.evaluation.baselines: [pca] says)
    pca = PCA(n_components=100, random_state=0).fit(x[train])
    latents = {"pca": pca.transform(x)}
    recon = pca.inverse_transform(latents["pca"][test])
    assert metrics["methods"]["pca"]["test_mse"] == pytest.approx(
        np.mean((x[test] - recon) ** 2), rel=1e-6)

    # Tybalt: the latent means the run exported are the model's, and its test MSE is theirs
    latent = ad.read_h5ad(run / "tybalt/eval/latent.h5ad")
    assert list(latent.obs_names) == list(adata.obs_names)
    latents["tybalt"] = np.asarray(latent.obsm["X_tybalt"], dtype=np.float64)
    module, _ = load_model(run / "models/tybalt/model.pt", genes=list(adata.var_names))
    with torch.no_grad():
        c = torch.zeros(len(x), 0)
        mu, _ = module.encode(torch.as_tensor(x, dtype=torch.float32), c)
        decoded = module.decode(mu[test], c[test]).double().numpy()
    np.testing.assert_allclose(mu.double().numpy(), latents["tybalt"], rtol=1e-5, atol=1e-6)
    assert metrics["methods"]["tybalt"]["test_mse"] == pytest.approx(
        np.mean((x[test] - decoded) ** 2), rel=1e-5)

    # k-NN (k = knn_k) on latents z-scored with the train mean and sd, fitted on train
    labels = adata.obs["cancer_type"].astype(str).to_numpy()
    for method, z in latents.items():
        sd = z[train].std(axis=0)
        z = (z - z[train].mean(axis=0)) / np.where(sd == 0, 1.0, sd)
        knn = KNeighborsClassifier(n_neighbors=metrics["knn_k"]).fit(z[train], labels[train])
        accuracy = float((knn.predict(z[test]) == labels[test]).mean())
        assert metrics["methods"][method]["knn_accuracy_cancer_type"] == pytest.approx(
            accuracy, abs=1e-9), method
