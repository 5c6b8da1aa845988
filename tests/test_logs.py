"""Logs (issue 33): no progress bar in a log file but one line per epoch, and each rule's
log file holding what its job printed, headed by what the job ran with."""

from __future__ import annotations

import io
import logging
import os
import runpy
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from snakemake.iocontainers import Namedlist
from torch.utils.data import DataLoader, TensorDataset

from medgen import config as medgen_config
from medgen.atomic import save_npz
from medgen.errors import MedgenInputError
from medgen.progress import show_progress
from medgen.smk import logged
from medgen.train import EpochLog, epoch_line, fit

ROOT = Path(__file__).resolve().parents[1]
CPU = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "num_threads": 1}


class TinyRegression(L.LightningModule):
    """y = 2x by one linear unit: a training loss every epoch, a validation metric."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_mae", (self.layer(x) - y).abs().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    x = torch.linspace(-1, 1, 16)[:, None]
    return DataLoader(TensorDataset(x, 2 * x), batch_size=8)


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


# -- 1. training: one line per epoch, a bar only on a terminal -------------------------------
def test_epoch_log_writes_one_line_per_epoch_with_losses_metric_and_seconds(caplog):
    caplog.set_level(logging.INFO, logger="medgen.train")
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=3, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[EpochLog()])
    trainer.fit(TinyRegression(), _loader(), _loader())
    lines = [r.getMessage() for r in caplog.records if r.name == "medgen.train"]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    for line in lines:
        # the epoch mean of the training loss and the validation metric, once each
        assert "train_loss=" in line and "val_mae=" in line
        assert "_step" not in line and "_epoch" not in line
        assert line.endswith(" s)")
    # the losses are the epoch's own: they fall as y = 2x is learnt
    first, last = (float(line.split("val_mae=")[1].split()[0]) for line in (lines[0], lines[-1]))
    assert last < first


def test_epoch_line_format():
    line = epoch_line(0, 50, {"loss": torch.tensor(0.41213), "loss_step": torch.tensor(1.0),
                              "loss_epoch": torch.tensor(0.41213), "d_loss_epoch": 2.0,
                              "val_auroc": 0.9, "per_gene": torch.zeros(3)}, 12.34)
    assert line == "epoch 1/50: d_loss_epoch=2 loss=0.4121 val_auroc=0.9 (12.3 s)"
    assert epoch_line(4, -1, {}, 0.0) == "epoch 5: (no metrics logged) (0.0 s)"


@pytest.mark.parametrize(("setting", "tty", "shown"), [
    ("auto", False, False), ("auto", True, True),
    (True, False, True), (False, True, False),
])
def test_progress_bar_setting_resolves_against_stderr(monkeypatch, setting, tty, shown):
    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    assert show_progress(setting) is shown
    with pytest.raises(ValueError, match="'yes'"):
        show_progress("yes")


@pytest.mark.parametrize("tty", [False, True])
def test_auto_trains_without_a_bar_off_a_terminal_and_logs_each_epoch(
        tmp_path, monkeypatch, caplog, capsys, tty):
    caplog.set_level(logging.INFO, logger="medgen.train")
    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    trainer = fit(TinyRegression(), _loader(), _loader(), tmp_path,
                  {**CPU, "progress_bar": "auto"}, max_epochs=2, seed=0)
    assert (trainer.progress_bar_callback is not None) is tty
    assert "epoch 2/2: " in caplog.text  # with the bar too: the lines are cheap
    assert ("\r" in capsys.readouterr().out) is tty  # Lightning's bar redraws on stdout


def test_progress_bar_schema_takes_auto_true_false_and_defaults_to_auto():
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    assert medgen_config.load()["training"]["progress_bar"] == "auto"
    for value in ("auto", True, False):
        resolved = medgen_config.validate(
            medgen_config.deep_update(base, {"training": {"progress_bar": value}}))
        assert resolved["training"]["progress_bar"] == value
    expected = "'training.progress_bar' is 'yes'; expected one of: auto, true, false"
    with pytest.raises(MedgenInputError, match=expected):
        medgen_config.validate(
            medgen_config.deep_update(base, {"training": {"progress_bar": "yes"}}))


def test_progress_bar_changes_no_training_params():
    from medgen.planning import LOG_ONLY_SETTINGS, training_settings

    assert "progress_bar" in LOG_ONLY_SETTINGS
    assert "progress_bar" not in training_settings(medgen_config.load(), "tybalt")


# -- 2. rule logs: what the job printed, headed by what it ran with --------------------------
def _job(tmp_path: Path, rule: str = "fit_pca_baseline", **params) -> SimpleNamespace:
    config = medgen_config.load()
    return SimpleNamespace(
        rule=rule, log=Namedlist([str(tmp_path / f"{rule}.log")]), threads=2,
        params=Namedlist(fromdict=params), wildcards=Namedlist(fromdict={"seed": "3"}),
        config=config, input=Namedlist(), output=Namedlist())


def test_a_scripts_log_starts_with_rule_config_seed_device_and_threads(tmp_path):
    save_npz(tmp_path / "train.npz", {"images": np.random.default_rng(0).random(
        (6, 1, 8, 8), dtype=np.float32), "y": np.zeros(6, np.int8)})
    job = _job(tmp_path, components=3)
    job.input = Namedlist(fromdict={"data": str(tmp_path)})
    job.output = Namedlist(fromdict={"model": str(tmp_path / "pca.npz")})
    runpy.run_path(str(ROOT / "workflow/scripts/fit_pca_baseline.py"),
                   init_globals={"snakemake": job})
    assert (tmp_path / "pca.npz").exists()
    lines = (tmp_path / "fit_pca_baseline.log").read_text().splitlines()
    heads = [line.split(": ", 1)[1] for line in lines[:5]]  # after the time and logger name
    assert heads[0] == "rule: fit_pca_baseline (seed=3)"
    assert heads[1] == 'config: {"components": 3}'
    assert heads[2] == "seed: 3"  # the replicate's wildcard
    assert heads[3].startswith("device: accelerator=auto devices=1 num_nodes=1 host=")
    assert heads[4] == "threads: 2 (torch: training.num_threads=2)"


def test_everything_a_job_prints_goes_to_its_log_and_stderr_stays_quiet(tmp_path, capfd):
    job = _job(tmp_path, rule="train_model", seed=7, accelerator="cpu")
    stderr_before = sys.stderr
    with logged(job):
        print("printed to stdout")
        sys.stderr.write("written to stderr\r\n")
        os.write(2, b"from C or a child process\n")
        warnings.warn("a library warning", UserWarning, stacklevel=1)
        # Lightning keeps its own stderr handler when imported before logging is set up
        logging.getLogger("lightning.pytorch").info("GPU available: False")
        logging.getLogger("medgen.train").info("epoch 1/2: loss=1 (0.1 s)")
    assert sys.stderr is stderr_before
    text = (tmp_path / "train_model.log").read_text()
    assert "seed: 7" in text and "device: accelerator=cpu" in text
    for printed in ("printed to stdout", "written to stderr", "from C or a child process",
                    "a library warning", "GPU available: False", "epoch 1/2: loss=1"):
        assert printed in text, printed
    assert text.count("GPU available: False") == 1
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_torch_uses_the_rules_threads_inside_a_job_and_its_own_setting_after(tmp_path):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    job = _job(tmp_path)
    job.threads = 1  # a scoring rule: Snakemake runs two of them on two cores
    with logged(job):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    torch.set_num_threads(before)


def test_a_failing_job_logs_the_bad_input_as_one_line_and_exits_without_traceback(
        tmp_path, capfd):
    job = _job(tmp_path)
    with pytest.raises(SystemExit) as exited, logged(job):
        raise MedgenInputError("sample sheet 'x.tsv': column 'path' is missing")
    assert exited.value.code == 1
    text = (tmp_path / "fit_pca_baseline.log").read_text()
    assert "ERROR: sample sheet 'x.tsv': column 'path' is missing" in text
    assert "Traceback" not in text
    # the console gets the same one line (Snakemake shows it beside the log's name)
    err = capfd.readouterr().err
    assert err.strip() == ("medgen: ERROR in rule fit_pca_baseline: sample sheet 'x.tsv': "
                           "column 'path' is missing")
    logging.getLogger("after").warning("after the job")  # the log file is closed: no error
