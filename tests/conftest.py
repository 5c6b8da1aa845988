"""Shared fixtures: the real data folder (../shared/data, never modified) and configs."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from medgen.config import deep_update, load_schema, validate

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()

# Importing Snakemake loads its SLURM executor plugin, which runs `scontrol show config`;
# where the SLURM client is installed (tests/test_slurm.py installs it) but no controller
# runs, that call waits about 9 s in every snakemake process the tests start. Outside the
# SLURM test (which passes REAL_PATH to its processes) a stand-in answers "no controller"
# at once, as a machine without SLURM would.
REAL_PATH = os.environ.get("PATH", os.defpath)
_NO_SLURM = Path(tempfile.mkdtemp(prefix="medgen-tests-no-slurm-"))
(_NO_SLURM / "scontrol").write_text(
    "#!/bin/sh\necho 'no SLURM controller in this test (tests/conftest.py)' >&2\nexit 1\n")
(_NO_SLURM / "scontrol").chmod(0o755)
os.environ["PATH"] = f"{_NO_SLURM}{os.pathsep}{REAL_PATH}"
atexit.register(shutil.rmtree, _NO_SLURM, ignore_errors=True)


def skip_or_fail_in_ci(message: str) -> None:
    """Skip a test whose requirement (real data, chromium, root, SLURM tools) is missing;
    under CI (MEDGEN_CI=1), where every requirement is present, fail instead."""
    if os.environ.get("MEDGEN_CI") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def quiet_warnings():
    """Silence warnings inside a test (Lightning's num_workers and logging hints): modules
    that train models use it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips (or fails under MEDGEN_CI=1) if absent."""
    if not SHARED_DATA.is_dir():
        message = (
            f"needs ../shared/data (real data) at {SHARED_DATA}; it is not there. "
            "CI always has it and fails on this skip."
        )
        skip_or_fail_in_ci(message)
    return SHARED_DATA


def expression_config(**overrides: Any) -> dict[str, Any]:
    """The ``expression:`` section with schema defaults filled, then ``overrides``."""
    schema = load_schema()["properties"]["expression"]
    return validate(deep_update({}, overrides), schema=schema)


@pytest.fixture
def expr_cfg():
    """Factory for validated expression configs (keyword overrides, nested dicts merge)."""
    return expression_config


def run_snakemake(*args: str, check: bool = True):
    """Run snakemake from the repo root with this interpreter; fail with its output."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=REPO_ROOT, capture_output=True,
        text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def small_real_config(shared_data: Path, results_dir: Path, run_name: str) -> dict[str, Any]:
    """The TCGA miRNA dataset config on ../shared/data, trained for a few epochs on CPU."""
    return {
        "results_dir": str(results_dir),
        "run_name": run_name,
        "expression": {"source": "files", "files": [
            {"path": str(shared_data / "expression/tcga_mirna/BRCA.parquet"), "group": "BRCA"},
            {"path": str(shared_data / "expression/tcga_mirna/PRAD.parquet"), "group": "PRAD"},
        ], "evaluation": {"synthetic": {"enabled": False}}},
        "training": {"max_epochs": 3, "accelerator": "cpu", "progress_bar": False},
        # the synthetic-data evaluations have their own tests (tests/test_synthetic_*.py);
        # in every real run they would only add CI time
        "anomaly": {"evaluation": {"synthetic": {"enabled": False}}},
    }


@pytest.fixture(scope="session")
def real_run(shared_data, tmp_path_factory) -> dict[str, Any]:
    """One full workflow run on real data (then its report), shared by the workflow tests."""
    import yaml

    from medgen.provenance import checksums

    tmp = tmp_path_factory.mktemp("real_run")
    inputs = sorted((shared_data / "expression/tcga_mirna").glob("*.parquet"))
    before = checksums(inputs)
    config = tmp / "config.yaml"
    sections = small_real_config(shared_data, tmp / "results", "ci")
    # tcga_mirna.yaml runs the expression task only (its tasks list replaces the default's);
    # list the default config's anomaly demo (MNI152, f-AnoGAN) again so that this one run
    # covers both tasks
    sections["tasks"] = ["expression", "anomaly"]
    sections["anomaly"]["families"] = ["fanogan"]
    config.write_text(yaml.safe_dump(sections))
    dataset = REPO_ROOT / "config" / "datasets" / "tcga_mirna.yaml"
    args = ("--cores", "2", "--configfile", str(dataset), str(config))
    first = run_snakemake(*args)
    report = tmp / "results" / "ci" / "report.html"
    run_snakemake(*args, "--report", str(report))
    return {
        "run": tmp / "results" / "ci", "args": args, "report": report, "log": first,
        "inputs": inputs, "checksums_before": before, "config": config, "tmp": tmp,
    }

def make_expression(n: int = 80, n_genes: int = 24, seed: int = 0) -> ad.AnnData:
    """X in [0, 1] with a tumour/normal shift in the first genes; patient-level splits."""
    rng = np.random.default_rng(seed)
    tumor = np.arange(n) % 4 != 0
    cancer = np.where(np.arange(n) % 2 == 0, "BRCA", "PRAD")
    x = rng.uniform(0.1, 0.5, size=(n, n_genes))
    x[tumor, : n_genes // 3] += 0.4
    x[cancer == "PRAD", n_genes // 3 : 2 * n_genes // 3] += 0.3
    x = np.clip(x, 0, 1).astype(np.float32)
    split = np.array(["train"] * n, dtype=object)
    split[np.arange(n) % 10 == 7] = "val"
    split[np.arange(n) % 10 == 3] = "test"
    split[np.arange(n) % 10 == 8] = "test"
    obs = pd.DataFrame(
        {
            "split": split,
            "tumor_normal": np.where(tumor, "tumor", "normal"),
            "cancer_type": cancer,
            "patient": [f"TCGA-XX-{i:04d}" for i in range(n)],
            "source": "synthetic",
        },
        index=[f"TCGA.XX.{i:04d}.01A" for i in range(n)],
    )
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]))
    adata.uns["provenance_json"] = json.dumps({"synthetic": True})
    return adata


def make_inference_table(path, n: int = 60, n_landmarks: int = 6, n_targets: int = 10,
                         seed: int = 0) -> pd.DataFrame:
    """A samples x genes CSV (log-scale values): targets are a noisy linear map of the
    landmarks ``L0..``; targets are ``T0..``. Returns the frame written."""
    rng = np.random.default_rng(seed)
    x = rng.normal(6.0, 1.0, size=(n, n_landmarks))
    y = 5.0 + (x - 6.0) @ rng.normal(size=(n_landmarks, n_targets)) / 2
    y += rng.normal(scale=0.1, size=y.shape)
    frame = pd.DataFrame(np.hstack([x, y]), index=[f"S{i:03d}" for i in range(n)],
                         columns=[f"L{j}" for j in range(n_landmarks)]
                         + [f"T{j}" for j in range(n_targets)])
    frame.to_csv(path)
    return frame


def inference_section(table, folds: int = 3, **gene_sets) -> dict:
    """A validated expression_inference section for ``table`` with listed gene sets."""
    from medgen import config as medgen_config

    frame = pd.read_csv(table, index_col=0, nrows=1)
    lists = {"source": "lists",
             "landmarks": [c for c in frame.columns if c.startswith("L")],
             "targets": [c for c in frame.columns if c.startswith("T")], **gene_sets}
    raw = {"tasks": ["expression_inference"],
           "expression_inference": {"folds": folds, "gene_sets": lists,
                                    "table": {"path": str(table),
                                              "orientation": "samples_as_rows"}}}
    return medgen_config.validate(raw)["expression_inference"]


def make_inference_data(path, seed: int = 0) -> str:
    """A prepared expression-inference file (3 folds) from ``make_inference_table``."""
    from medgen.tasks.expression_inference.prepare import prepare_expression_inference

    table = Path(path).with_suffix(".csv")
    make_inference_table(table, seed=seed)
    prepare_expression_inference(inference_section(table), 0, path)
    return str(path)


@pytest.fixture(scope="session")
def expression_h5ad(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "expression.h5ad"
    make_expression().write_h5ad(path)
    return str(path)
