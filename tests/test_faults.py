"""Preemption, multi-process training and faults: what a shared cluster does to a job."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from medgen.atomic import atomic_path
from medgen.checkpoint import load as load_checkpoint
from medgen.train import PREEMPTED_EXIT_CODE

from conftest import make_expression, skip_or_fail_in_ci

JOB = Path(__file__).parent / "helpers" / "train_tybalt_job.py"


@pytest.fixture(scope="module")
def larger_h5ad(tmp_path_factory) -> str:
    """Big enough that an epoch takes a second or two, so a signal lands mid-epoch."""
    path = tmp_path_factory.mktemp("faults") / "expression.h5ad"
    make_expression(n=3000, n_genes=200).write_h5ad(path)
    return str(path)


def _job(h5ad: str, out: Path, epochs: int, devices: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(JOB), h5ad, str(out), str(epochs), str(devices)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _state(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "model.pt").state["vae"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_mid_epoch_then_rerun_equals_uninterrupted(larger_h5ad, tmp_path, signum):
    epochs = 4
    straight = tmp_path / "straight"
    assert _job(larger_h5ad, straight, epochs).wait(timeout=600) == 0

    interrupted = tmp_path / "interrupted"
    job = _job(larger_h5ad, interrupted, epochs)
    last = interrupted / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    job.send_signal(signum)
    output, _ = job.communicate(timeout=300)
    assert job.returncode == PREEMPTED_EXIT_CODE, output
    assert not (interrupted / "model.pt").exists()  # no final output from a stopped job
    stopped_at = torch.load(last, weights_only=True)["epoch"]
    assert stopped_at < epochs - 1, "the signal arrived after training had finished"

    assert _job(larger_h5ad, interrupted, epochs).wait(timeout=600) == 0
    resumed_state, straight_state = _state(interrupted), _state(straight)
    for key, value in straight_state.items():
        assert torch.equal(value, resumed_state[key]), key
    assert (interrupted / "metrics.csv").read_bytes() == (straight / "metrics.csv").read_bytes()


@pytest.mark.slow
def test_ddp_two_processes_matches_single_process_loss(larger_h5ad, tmp_path):
    """Two gloo processes on CPU: each sees half of every batch pair; same final loss ±10%."""
    epochs = 3
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert _job(larger_h5ad, single, epochs, devices=1).wait(timeout=600) == 0
    job = _job(larger_h5ad, ddp, epochs, devices=2)
    output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, output
    # Really two processes in one process group. The job runs on CPU (accelerator: cpu), and
    # Lightning's backend for CPU devices is gloo (nccl is for CUDA only): nothing else is
    # right here.
    assert "distributed_backend=gloo" in output, output
    assert "All distributed processes registered. Starting with 2 processes" in output, output
    for rank in (0, 1):
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in output, output

    def final_val_loss(out: Path) -> float:
        metrics = pd.read_csv(out / "metrics.csv")
        return float(metrics.dropna(subset=["val_total"])["val_total"].iloc[-1])

    assert final_val_loss(ddp) == pytest.approx(final_val_loss(single), rel=0.10)
    assert torch.load(ddp / "model.pt", weights_only=True)["family"] == "tybalt"


def test_full_disk_gives_a_clear_error_and_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out" / "big.tsv"
    real_write = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name.endswith(".part"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match=r"no space left on the device writing .*big\.tsv"):
        with atomic_path(target) as tmp:
            tmp.write_text("x" * 1000)
    assert list(target.parent.iterdir()) == []


def test_full_disk_on_a_real_tiny_filesystem(tmp_path):
    if os.geteuid() != 0:
        message = "mounting a tiny tmpfs needs root (CI is root)"
        skip_or_fail_in_ci(message)
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        with pytest.raises(OSError, match="no space left on the device writing"):
            with atomic_path(mount / "big.bin") as tmp:
                tmp.write_bytes(os.urandom(1 << 20))
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.realdata
@pytest.mark.workflow
def test_rule_killed_mid_run_leaves_nothing_snakemake_takes_as_complete(shared_data, tmp_path):
    import yaml

    from conftest import REPO_ROOT, run_snakemake, small_real_config

    config = small_real_config(shared_data, tmp_path / "results", "killed")
    config["training"]["max_epochs"] = 500  # long enough to be killed while training
    config["tasks"] = ["expression"]  # only the expression task: the training job sooner
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["--cores", "2", "--configfile", str(REPO_ROOT / "config/datasets/tcga_mirna.yaml"),
            str(path)]
    run = tmp_path / "results" / "killed"
    job = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=REPO_ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    last = run / "models/tybalt/checkpoints/last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert last.exists(), "training never reached its first checkpoint"
    os.killpg(job.pid, signal.SIGKILL)  # the node dies: no handler runs
    job.wait(timeout=60)

    assert not (run / "models/tybalt/model.pt").exists()
    assert not list(run.rglob("*.part"))
    dry = run_snakemake("-n", *args)
    assert "train_model" in dry.stdout and "models/tybalt/model.pt" in dry.stdout
    assert (run / "data/expression.h5ad").exists()  # finished steps are kept
    assert "preprocess_expression" not in dry.stdout.split("Job stats:")[-1].split("total")[0]
