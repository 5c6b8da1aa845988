"""context_gan model selection on the validation subject (``select_on_val``): the exported
generator is the epoch of lowest val_mae, also after an interrupted and resumed run, and
the 'generator_l1' baseline is selected the same way; on tiny synthetic volumes."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import pytest
import torch

from medgen import checkpoint, registry
from medgen.models.context_gan.plan import SELECTION_KEY, ContextGANPlan
from medgen.tasks.synthesis import figures
from medgen.tasks.synthesis.baselines import train_generator_l1
from medgen.tasks.synthesis.loaders import read_volumes
from medgen.train import train_model
from tests.helpers.synthesis_data import prepared_folder

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": 3,
            "num_threads": 1, "progress_bar": False}
SHIFT = 10.0  # added to the generator's output bias: val_mae jumps far above any trained one

pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_folder(tmp_path_factory.mktemp("selection"))


def tiny(preset="default", **kw):
    hp = registry.presets("context_gan")[preset]
    return {**hp, "generator_channels": 4, "discriminator_channels": 4, "batch_size": 4,
            "samples_per_volume": 4, "max_epochs": 3, **kw}


def spoil_after_first_epoch(plan, batch_idx):
    """From the second epoch on, shift the generator's output just before validation (after
    the epoch's last step): val_mae gets worse every later epoch."""
    if plan.current_epoch >= 1 and batch_idx == plan.trainer.num_training_batches - 1:
        with torch.no_grad():
            plan.generator.net[-1].conv.bias.add_(SHIFT)


class SpoilAndRecord(L.Callback):
    """``spoil_after_first_epoch`` as a callback; records the generator after each
    (non-sanity) validation, i.e. the weights that epoch's val_mae was measured on."""

    def __init__(self):
        self.validated: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        spoil_after_first_epoch(pl_module, batch_idx)

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validated[trainer.current_epoch] = {
                k: v.detach().clone() for k, v in pl_module.generator.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def last_ckpt_generator(out):
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt, {k.removeprefix("generator."): v for k, v in ckpt["state_dict"].items()
                  if k.startswith("generator.")}


def test_presets_select_on_val_except_paper():
    presets = registry.presets("context_gan")
    assert {name: hp["select_on_val"] for name, hp in presets.items()} == {
        "paper": False, "default": True, "l1_only": True, "mr_to_ct": True}


def test_exports_the_lowest_val_mae_epoch_and_resume_exports_the_same(prepared, tmp_path):
    hp = tiny()
    straight = SpoilAndRecord()
    path = train_model("context_gan", prepared, hp, TRAINING, 0, tmp_path / "straight",
                       callbacks=[straight])
    saved = checkpoint.load(path)
    selection = saved.provenance["model_selection"]
    assert selection["rule"] == "lowest val_mae"
    assert (selection["epoch"], selection["epochs_trained"]) == (0, 3)
    # the kept val_mae is the one metrics.csv logged for that epoch, and the lowest
    metrics = np.genfromtxt(tmp_path / "straight" / "metrics.csv", delimiter=",", names=True)
    val = metrics[~np.isnan(metrics["val_mae"])]
    assert list(val["epoch"]) == [0, 1, 2]
    assert selection["val_mae"] == pytest.approx(val["val_mae"][0], rel=1e-6)
    assert val["val_mae"][0] < val["val_mae"][1:].min()
    # the exported generator is epoch 0's, not the last epoch's
    assert_same_state(saved.state["generator"], straight.validated[0])
    ckpt, last = last_ckpt_generator(tmp_path / "straight")
    assert_same_state(last, straight.validated[2])
    assert not torch.equal(saved.state["generator"]["net.6.conv.bias"],
                           last["net.6.conv.bias"])
    assert ckpt[SELECTION_KEY]["epoch"] == 0  # the kept weights ride in the checkpoint
    # the report rings the kept epoch on the val_mae panel
    assert figures.kept_epoch(path) == 0
    curves = {"context_gan_level1": tmp_path / "straight" / "metrics.csv"}
    figures.training_curves(curves, tmp_path / "plain.png")
    figures.training_curves(curves, tmp_path / "ringed.png", kept={"context_gan_level1": 0})
    assert (tmp_path / "plain.png").read_bytes() != (tmp_path / "ringed.png").read_bytes()

    # interrupted after epoch 0, resumed from last.ckpt to epoch 3: the same model.pt
    resumed = tmp_path / "resumed"
    train_model("context_gan", prepared, hp, {**TRAINING, "max_epochs": 1}, 0, resumed,
                callbacks=[SpoilAndRecord()])
    again = SpoilAndRecord()
    path2 = train_model("context_gan", prepared, hp, TRAINING, 0, resumed, callbacks=[again])
    assert sorted(again.validated) == [1, 2]  # epoch 0 was not trained again
    saved2 = checkpoint.load(path2)
    assert saved2.provenance["model_selection"] == selection
    for network in ("generator", "discriminator"):
        assert_same_state(saved2.state[network], saved.state[network])


def test_without_select_on_val_the_last_epoch_is_exported(prepared, tmp_path):
    path = train_model("context_gan", prepared, tiny(select_on_val=False),
                       {**TRAINING, "max_epochs": 2}, 0, tmp_path, callbacks=[SpoilAndRecord()])
    saved = checkpoint.load(path)
    assert saved.provenance["model_selection"] == {
        "rule": "last epoch", "epoch": 1, "val_mae": None, "epochs_trained": 2,
        "reason": "select_on_val is false"}
    _, last = last_ckpt_generator(tmp_path)
    assert_same_state(saved.state["generator"], last)
    assert figures.kept_epoch(path) is None  # no ring in the report
    assert figures.kept_epoch(tmp_path / "missing.pt") is None


def test_without_a_validation_subject_the_last_epoch_is_exported_and_logged(tmp_path, caplog):
    prepared = prepared_folder(tmp_path / "data", validation=None)
    assert not read_volumes(prepared, "val")[0]
    with caplog.at_level(logging.INFO, logger="medgen.models.context_gan.plan"):
        path = train_model("context_gan", prepared, tiny(), {**TRAINING, "max_epochs": 2}, 0,
                           tmp_path / "m", callbacks=[SpoilAndRecord()])
    assert "no validation subject" in caplog.text
    saved = checkpoint.load(path)
    selection = saved.provenance["model_selection"]
    assert (selection["rule"], selection["epoch"]) == ("last epoch", 1)
    assert selection["reason"].startswith("no validation data")
    _, last = last_ckpt_generator(tmp_path / "m")
    assert_same_state(saved.state["generator"], last)


def test_generator_l1_baseline_is_selected_on_the_validation_subject(prepared, monkeypatch):
    _, train = read_volumes(prepared, "train")
    _, val = read_volumes(prepared, "val")
    assert val
    hp = tiny()
    # epoch 0 alone, unspoiled: what the selected 3-epoch fit must return
    first = train_generator_l1(train, {**hp, "max_epochs": 1}, 0, 1)
    monkeypatch.setattr(ContextGANPlan, "on_train_batch_end",
                        lambda plan, outputs, batch, batch_idx:
                        spoil_after_first_epoch(plan, batch_idx))
    selected = train_generator_l1(train, hp, 0, 1, val_volumes=val)
    assert selected.data["model_selection"]["rule"] == "lowest val_mae"
    assert selected.data["model_selection"]["epoch"] == 0
    assert_same_state(selected.network.state_dict(), first.network.state_dict())
    # its hparams say last epoch, or there is no validation subject: the spoiled last epoch
    for kept in (train_generator_l1(train, {**hp, "select_on_val": False}, 0, 1,
                                    val_volumes=val),
                 train_generator_l1(train, hp, 0, 1)):
        assert kept.data["model_selection"]["rule"] == "last epoch"
        assert kept.data["model_selection"]["epoch"] == 2
        shift = (kept.network.state_dict()["net.6.conv.bias"]
                 - first.network.state_dict()["net.6.conv.bias"])
        assert shift.item() > SHIFT  # spoiled twice (epochs 1 and 2)
