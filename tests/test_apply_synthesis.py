"""Apply path of the synthesis task: a trained auto-context cascade (level1..levelK
model.pt) on new subjects that have only the source modality, on tiny synthetic volumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from medgen import checkpoint, registry
from medgen import config as medgen_config
from medgen.apply import apply_model, check_apply_config
from medgen.data.imaging import intensity
from medgen.errors import MedgenInputError
from medgen.tasks.synthesis import inference
from medgen.tasks.synthesis.auto_context import context_inputs
from medgen.tasks.synthesis.cascade import checkpoint_level, load_levels
from medgen.tasks.synthesis.prepare import read_manifest
from medgen.train import train_model
from tests.helpers.synthesis_data import AFFINE, prepared_folder, save_nii, write_subjects

from conftest import run_snakemake

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}
HPARAMS = {**registry.presets("context_gan")["default"], "generator_channels": 4,
           "discriminator_channels": 4, "batch_size": 4, "samples_per_volume": 4,
           "max_epochs": 1, "auto_context_levels": 2}

pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    """A 2-level cascade in the workflow's layout: models/context_gan/level<k>/model.pt."""
    root = tmp_path_factory.mktemp("cascade")
    prepared = prepared_folder(root)
    family = root / "models" / "context_gan"
    level1 = train_model("context_gan", prepared, HPARAMS, TRAINING, 0, family / "level1")
    data2 = context_inputs(prepared, inference.load(level1), level1, root / "data2", window=32)
    level2 = train_model("context_gan", data2, HPARAMS, TRAINING, 0, family / "level2")
    return family, level2


def new_subjects(root: Path) -> Path:
    """Sheet of two new subjects: n0 with its FLAIR, n1 with T2 only (empty target cell)."""
    sheet = write_subjects(root, splits=("train", "test"), seed=5)
    frame = pd.read_csv(sheet, sep="\t", dtype=str)
    frame["subject"] = ["n0", "n1"]
    frame.loc[1, "flair"] = ""
    frame.to_csv(sheet, sep="\t", index=False)
    return sheet


def apply_config(sheet: Path, **synthesis) -> dict:
    return medgen_config.load(overrides={
        "apply": {"activate": True}, "tasks": ["synthesis"], "synthesis": {
            "sample_sheet": str(sheet), "sources": ["t2"], "target": "flair",
            "inference": {"window": 32, "overlap": 0.25}, **synthesis}})


def test_cascade_synthesises_new_subjects_with_the_models_normalisation(cascade, tmp_path):
    family, level2 = cascade
    sheet = new_subjects(tmp_path / "new")
    # the new config asks for zscore: the model's p99 is what its inputs must look like
    config = apply_config(sheet, normalisation="zscore")
    assert check_apply_config({**config, "apply": {"model": str(level2)}}) == "synthesis"
    out = apply_model(level2, config, tmp_path / "apply")
    assert out == tmp_path / "apply" / "metrics.tsv"
    table = pd.read_csv(out, sep="\t")
    # metrics for the subject with a target only, every level, the evaluation's columns
    assert list(table["subject"]) == ["n0", "n0"]
    assert list(table["method"]) == ["context_gan_level1", "context_gan_level2"]
    assert table[["mae", "psnr", "ssim", "gradient_error", "ssim_tumour"]].notna().all().all()
    source = nib.load(tmp_path / "new" / "s0_t2.nii.gz")
    for subject in ("n0", "n1"):
        for k in (1, 2):
            written = nib.load(tmp_path / "apply" / "context_gan" / f"{subject}_level{k}.nii.gz")
            assert written.shape == source.shape
            np.testing.assert_allclose(written.affine, AFFINE)
            assert np.isfinite(written.get_fdata()).all()
        assert inference.read_sidecar(
            tmp_path / "apply" / "context_gan" / f"{subject}_level2.nii.gz")["level"] == 2
    # prepared with the model's p99, measured on each new subject (nothing else refitted)
    manifest = read_manifest(tmp_path / "apply" / "data")
    assert manifest["settings"]["normalisation"] == "p99"
    raw = np.asarray(source.dataobj, np.float32)
    expected = intensity.fit(raw, raw != 0, "p99")
    assert manifest["subjects"]["n0"]["source_params"] == [expected]
    assert manifest["subjects"]["n1"]["target"] is None
    summary = json.loads((tmp_path / "apply" / "synthesis.json").read_text())
    assert [Path(s["path"]).parent.name for s in summary["levels"]] == ["level1", "level2"]
    assert summary["evaluated"] == ["n0"] and set(summary["subjects"]) == {"n0", "n1"}
    assert set(summary["mean"]) == {"context_gan_level1", "context_gan_level2"}
    # the family folder names the same cascade
    again = apply_model(family, config, tmp_path / "from_folder")
    pd.testing.assert_frame_equal(pd.read_csv(again, sep="\t"), table)


def test_level1_alone_and_a_sheet_without_targets(cascade, tmp_path):
    family, _ = cascade
    sheet = new_subjects(tmp_path / "new")
    frame = pd.read_csv(sheet, sep="\t", dtype=str).drop(columns="flair")
    frame.to_csv(sheet, sep="\t", index=False)
    out = apply_model(family / "level1" / "model.pt", apply_config(sheet), tmp_path / "a")
    assert out.name == "synthesis.json" and not (tmp_path / "a" / "metrics.tsv").exists()
    assert sorted(p.name for p in (tmp_path / "a" / "context_gan").glob("*.nii.gz")) == [
        "n0_level1.nii.gz", "n1_level1.nii.gz"]


def test_source_modalities_must_match_the_model(cascade, tmp_path):
    _, level2 = cascade
    sheet = new_subjects(tmp_path / "new")
    with pytest.raises(MedgenInputError, match=r"'synthesis.sources' is \['t1'\], but "
                       r"apply.model .* trained on source\(s\) \['t2'\] -> 'flair'"):
        apply_model(level2, apply_config(sheet, sources=["t1"]), tmp_path / "a")
    with pytest.raises(MedgenInputError,
                       match="'synthesis.target' is 't1ce'.*synthesises 'flair'"):
        apply_model(level2, apply_config(sheet, target="t1ce"), tmp_path / "a")
    renamed = pd.read_csv(sheet, sep="\t", dtype=str).rename(columns={"t2": "T2w"})
    renamed.to_csv(sheet, sep="\t", index=False)
    with pytest.raises(MedgenInputError,
                       match=r"has no column t2: apply.model .* expects the source\(s\) \['t2'\]"):
        apply_model(level2, apply_config(sheet), tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_a_missing_or_empty_sample_sheet_is_refused_naming_the_key(cascade, tmp_path):
    _, level2 = cascade
    missing = tmp_path / "missing.tsv"
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    for sheet, what in ((missing, "does not exist"), (empty, "has no rows")):
        config = {**apply_config(sheet), "apply": {"activate": True, "model": str(level2)}}
        with pytest.raises(MedgenInputError, match=rf"config key 'synthesis.sample_sheet': "
                           rf"sample sheet {sheet} {what}"):
            check_apply_config(config)
    assert not missing.exists() and empty.read_bytes() == b""


def test_a_missing_or_foreign_level_is_refused(cascade, tmp_path):
    family, _ = cascade
    sheet = new_subjects(tmp_path / "new")
    lone = tmp_path / "lone" / "context_gan"
    shutil.copytree(family / "level2", lone / "level2")
    with pytest.raises(MedgenInputError, match="level 1 of the auto-context cascade is missing"):
        apply_model(lone / "level2" / "model.pt", apply_config(sheet), tmp_path / "a")
    with pytest.raises(MedgenInputError, match="level 1 of the auto-context cascade is missing"):
        apply_model(lone, apply_config(sheet), tmp_path / "a")
    # level 2 out of its folder: its siblings cannot be found
    shutil.copy(family / "level2" / "model.pt", tmp_path / "model.pt")
    with pytest.raises(MedgenInputError, match="lies in .*not 'level2'"):
        apply_model(tmp_path / "model.pt", apply_config(sheet), tmp_path / "a")
    # a level 1 of another training run (other weights) beside this level 2
    foreign = checkpoint.load(family / "level1" / "model.pt")
    foreign.state["generator"] = {k: v + 0.01 if torch.is_floating_point(v) else v
                                  for k, v in foreign.state["generator"].items()}
    checkpoint.save(foreign, lone / "level1" / "model.pt")
    with pytest.raises(MedgenInputError, match=r"trained on the output of another level 1"):
        apply_model(lone / "level2" / "model.pt", apply_config(sheet), tmp_path / "a")
    # a level 1 of a run with other hyperparameters: the message names it and the last level
    foreign = checkpoint.load(family / "level1" / "model.pt")
    foreign.hparams["lr"] = 0.123
    checkpoint.save(foreign, lone / "level1" / "model.pt")
    with pytest.raises(MedgenInputError, match=(
            rf"^{lone / 'level1' / 'model.pt'} \(level 1\) does not belong to the cascade of "
            rf"{lone / 'level2' / 'model.pt'}: its hparams is \{{'lr': 0.123\}} where level 1 of "
            r"that cascade needs \{'lr': 0.0002\}")):
        apply_model(lone / "level2" / "model.pt", apply_config(sheet), tmp_path / "a")
    # level 2 in the level-1 folder: not a level 1
    shutil.copy(family / "level2" / "model.pt", lone / "level1" / "model.pt")
    with pytest.raises(MedgenInputError, match="its level is 2 where level 1"):
        apply_model(lone / "level2" / "model.pt", apply_config(sheet), tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_checkpoints_that_record_the_level_as_stage_are_refused_naming_it(cascade, tmp_path):
    # written before the auto-context level was renamed: data signature {'stage': k}
    family, _ = cascade
    old = tmp_path / "old" / "context_gan"
    for k in (1, 2):
        saved = checkpoint.load(family / f"level{k}" / "model.pt")
        saved.data["stage"] = saved.data.pop("level")
        checkpoint.save(saved, old / f"level{k}" / "model.pt")
    with pytest.raises(MedgenInputError, match=r"level2/model.pt: a context_gan model records "
                       r"no auto-context 'level' .*called it 'stage'\); retrain"):
        load_levels(old)
    # a level-2 checkpoint in an old 'stage2' folder: the message names the layout
    shutil.copytree(family / "level2", tmp_path / "moved" / "stage2")
    with pytest.raises(MedgenInputError, match=r"is level 2 of an auto-context cascade.*lies "
                       r"in 'stage2', not 'level2': keep the training run's "
                       r"<family>/level<k>/model.pt layout"):
        load_levels(tmp_path / "moved" / "stage2" / "model.pt")
    paths, levels = load_levels(family)
    assert [checkpoint_level(saved) for saved in levels] == [1, 2]


def test_a_4d_source_is_refused_naming_the_file(cascade, tmp_path):
    _, level2 = cascade
    sheet = new_subjects(tmp_path / "new")
    path = tmp_path / "new" / "s1_t2.nii.gz"
    volume = np.asarray(nib.load(path).dataobj)
    save_nii(path, np.stack([volume, volume], axis=-1))
    with pytest.raises(MedgenInputError, match=r"s1_t2.nii.gz: expected a 3D volume, got an "
                       r"image of shape \(36, 36, 34, 2\)"):
        apply_model(level2, apply_config(sheet), tmp_path / "a")
    assert not (tmp_path / "a" / "data").exists()


@pytest.mark.workflow
def test_workflow_applies_a_cascade_without_training(cascade, tmp_path):
    family, level2 = cascade
    sheet = new_subjects(tmp_path / "new")
    overrides = tmp_path / "apply.yaml"
    overrides.write_text(yaml.safe_dump({
        "run_name": "applied", "results_dir": str(tmp_path / "results"),
        "apply": {"activate": True, "model": str(level2)},
        "tasks": ["synthesis"],  # replaces the default's [expression, anomaly]
        "synthesis": {"sample_sheet": str(sheet), "sources": ["t2"],
                      "target": "flair", "validation_subject": "not_in_this_sheet",
                      "inference": {"window": 32, "overlap": 0.25}}}))
    dry = run_snakemake("-n", "--cores", "1", "--configfile", str(overrides))
    assert "apply_model" in dry.stdout
    for rule in ("train_synthesis_level", "prepare_synthesis", "evaluate_synthesis",
                 "synthesis_report"):
        assert f"rule {rule}:" not in dry.stdout, dry.stdout
    run_snakemake("--cores", "1", "--configfile", str(overrides))
    run = tmp_path / "results" / "applied"
    assert len(pd.read_csv(run / "apply" / "metrics.tsv", sep="\t")) == 2
    inputs = json.dumps(json.loads((run / "provenance.json").read_text())["inputs"])
    assert str(family / "level1" / "model.pt") in inputs and str(level2) in inputs


def test_preparation_of_cascades_trained_before_it_was_stored(cascade):
    from medgen.tasks.synthesis.cascade import model_preparation

    family, _ = cascade
    saved = checkpoint.load(family / "level1" / "model.pt")
    assert saved.data["preparation"]["normalisation"] == "p99"
    assert len(saved.provenance["context_sha256"]) == 0
    assert len(checkpoint.load(family / "level2" / "model.pt").provenance["context_sha256"]) == 1
    # older checkpoints: the synthesis section of the config they were trained with
    saved.data.pop("preparation")
    saved.config = {"synthesis": {"mask": "given", "ct_window": [-1000, 2000]}}
    prep = model_preparation("m.pt", saved)
    assert prep["normalisation"] == "p99" and prep["ct_window"] == [-1000, 2000]
    assert prep["mask"] == "given"
    saved.config = {}
    assert model_preparation("m.pt", saved)["ct_window"] == list(intensity.CT_WINDOW)
    saved.data["target_normalisation"] = "ct_window"  # its window is unknown: refused
    with pytest.raises(MedgenInputError, match="m.pt uses the 'ct_window' normalisation but"):
        model_preparation("m.pt", saved)


def test_thin_reoriented_and_partly_covered_targets_are_scored_and_say_so(cascade, tmp_path):
    """Issue 32: a 64x64x3 subject with a target (SSIM cannot be computed: NaN, never a
    crash), a target stored LPS beside a RAS source (reoriented exactly), a coarser target
    covering part of the source's z range (scored on its coverage)."""
    from nibabel import orientations

    from tests.helpers.synthesis_data import pair_volumes

    _, level2 = cascade
    root = tmp_path / "new"
    root.mkdir()
    lines = ["subject\tsplit\tt2\tflair"]
    thin_t2, thin_flair, _ = pair_volumes(7, shape=(64, 64, 3), lesion=False)
    t2, flair, _ = pair_volumes(8)
    ornt = np.array([[0, -1], [1, -1], [2, 1]], float)  # LPS
    lps = AFFINE @ orientations.inv_ornt_aff(ornt, flair.shape)
    slab = AFFINE @ np.diag([1.0, 1.0, 2.0, 1.0])
    slab[2, 3] = 8 * AFFINE[2, 2]
    files = {"thin": (thin_t2, AFFINE, thin_flair, AFFINE),
             "lps": (t2, AFFINE, orientations.apply_orientation(flair, ornt), lps),
             "fov": (t2, AFFINE, flair[:, :, 8:28:2], slab)}
    for subject, (source, source_affine, target, target_affine) in files.items():
        save_nii(root / f"{subject}_t2.nii.gz", source, source_affine)
        save_nii(root / f"{subject}_flair.nii.gz", target, target_affine)
        lines.append(f"{subject}\ttest\t{subject}_t2.nii.gz\t{subject}_flair.nii.gz")
    sheet = root / "samples.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    out = apply_model(level2, apply_config(sheet, resample_target=True), tmp_path / "a")
    table = pd.read_csv(out, sep="\t").set_index(["subject", "method"])
    thin = table.loc["thin"]
    assert thin["ssim"].isna().all() and thin["mae"].notna().all()
    assert table.loc["lps"][["ssim", "mae"]].notna().all().all()
    assert (table.loc["lps"]["n_excluded"] == 0).all()
    fov = table.loc["fov"]
    assert (fov["n_excluded"] > 0).all() and fov[["ssim", "mae"]].notna().all().all()
    summary = json.loads((tmp_path / "a" / "synthesis.json").read_text())
    assert summary["grid"]["lps"]["target"]["how"] == "reoriented"
    assert summary["grid"]["lps"]["target"]["orientation"] == "LPS"
    assert summary["grid"]["fov"]["target"]["how"] == "resampled"
    assert "thinner than the 7-voxel SSIM window" in summary["notes"]["thin"]["nan_metrics"][
        "ssim"]
    assert summary["notes"]["fov"]["excluded_voxels"] == int(fov["n_excluded"].iloc[0])
    assert set(summary["notes"]) == {"thin", "fov"}
    assert summary["preparation"]["min_target_coverage"] == 0.5
    # the outputs of the LPS subject lie on its source's grid
    written = nib.load(tmp_path / "a" / "context_gan" / "lps_level2.nii.gz")
    np.testing.assert_allclose(written.affine, AFFINE)
