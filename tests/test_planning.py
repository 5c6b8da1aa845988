"""medgen.planning: what the workflow runs, planned from a validated config, without
Snakemake; and ``snakemake -n`` stays free of torch and matplotlib."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from snakemake.exceptions import WorkflowError

from medgen import config as medgen_config
from medgen import planning, registry
from medgen.errors import MedgenInputError

ROOT = Path(__file__).resolve().parents[1]


def _config(**override):
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    return medgen_config.validate(medgen_config.deep_update(base, override))


def _inference_config(**override):
    dataset = medgen_config.load_yaml(ROOT / "config/datasets/tcga_mirna_inference.yaml")
    base = medgen_config.deep_update(
        medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH), dataset)
    return medgen_config.validate(medgen_config.deep_update(base, override))


def test_default_config_runs_tybalt_and_fanogan():
    config = _config()
    assert [task for task in registry.TASKS if planning.task_on(config, task)] == [
        "expression", "anomaly"]
    assert not planning.apply_mode(config)
    assert planning.task_families(config, "expression") == ["tybalt"]
    assert planning.task_families(config, "anomaly") == ["fanogan"]
    assert not planning.task_on(config, "synthesis")
    assert not planning.task_on(config, "expression_inference")
    assert planning.anomaly_methods(config) == ["fanogan", "pca", "intensity"]


def test_the_lists_choose_what_runs():
    # a dataset config's tasks replace the default's; families keep the config's order
    config = _config(tasks=["synthesis", "anomaly"], anomaly={"families": ["fanogan", "anogan"]})
    assert [task for task in registry.TASKS if planning.task_on(config, task)] == [
        "anomaly", "synthesis"]
    assert planning.task_families(config, "anomaly") == ["fanogan", "anogan"]
    assert planning.task_families(config, "synthesis") == ["context_gan"]  # schema default
    assert planning.anomaly_methods(config) == ["fanogan", "anogan", "pca", "intensity"]
    assert planning.apply_mode(_config(apply={"activate": True, "model": "m.pt"}))


def test_max_epochs_replaces_every_stage_epochs_but_not_a_baseline():
    config = _config(training={"max_epochs": 3})
    hparams = planning.trained_hparams(config, "fanogan")
    # both f-AnoGAN stages (the GAN's max_epochs and the encoder's encoder_epochs)
    assert (hparams["max_epochs"], hparams["encoder_epochs"]) == (3, 3)
    assert hparams["n_critic"] == 2  # the config's own override kept
    baseline = planning.trained_hparams(config, "convae")
    assert baseline["max_epochs"] == registry.family_hparams("convae", config)["max_epochs"]
    assert baseline["max_epochs"] != 3
    assert planning.training_settings(config, "convae")["max_epochs"] is None
    assert planning.training_settings(config, "fanogan")["max_epochs"] == 3


def test_without_max_epochs_the_preset_and_overrides_stand():
    config = _config()
    assert planning.trained_hparams(config, "fanogan") == registry.family_hparams(
        "fanogan", config)
    assert planning.trained_hparams(config, "fanogan")["max_epochs"] == 60


def test_training_settings_leave_out_what_changes_only_the_log():
    settings = planning.training_settings(_config(), "tybalt")
    assert not set(planning.LOG_ONLY_SETTINGS) & set(settings)
    assert settings["num_threads"] == 2


def test_ablations_inherit_the_family_overrides_and_max_epochs():
    config = _inference_config(training={"max_epochs": 2},
                               models={"ggan": {"params": {"dropout": 0.3}}})
    ablations = planning.expression_inference_ablations(config)
    assert ablations, "the dataset config's ablations"
    for family, hparams in ablations.values():
        assert family in planning.task_families(config, "expression_inference")
        assert hparams["max_epochs"] == 2
        if family == "ggan":
            assert hparams["dropout"] == 0.3  # from models.ggan.params


def test_a_bad_ablation_names_its_key():
    config = _inference_config()
    config["expression_inference"]["evaluation"]["ablations"] = {
        "broken": {"family": "ggan", "params": {"dropout_rate": 0.1}}}
    with pytest.raises(MedgenInputError, match=r"ablations\.broken: unknown config key "
                       r"'models\.ggan\.params\.dropout_rate'"):
        planning.expression_inference_ablations(config)


def test_inference_model_must_be_listed():
    config = _inference_config()
    assert config["expression_inference"]["infer"]["model"] == ""
    assert planning.expression_inference_model(config) == "ggan"  # the first listed
    config["expression_inference"]["families"] = ["dgex", "ggan"]
    assert planning.expression_inference_model(config) == "dgex"
    config["expression_inference"]["infer"]["model"] = "ggan"
    assert planning.expression_inference_model(config) == "ggan"
    config["expression_inference"]["infer"]["model"] = "tybalt"
    with pytest.raises(MedgenInputError, match=re.escape(
            "config key 'expression_inference.infer.model' is 'tybalt'; expected one of "
            "expression_inference.families (dgex, ggan)")):
        planning.expression_inference_model(config)
    config["expression_inference"]["infer"]["model"] = ""
    config["expression_inference"]["families"] = []
    with pytest.raises(MedgenInputError, match=re.escape(
            "config key 'expression_inference.infer.model' is ''; expected one of "
            "expression_inference.families (none listed)")):
        planning.expression_inference_model(config)


def test_anomaly_preparation_leaves_out_later_steps():
    config = _config()
    evaluation = planning.anomaly_preparation(config)
    training = planning.anomaly_preparation(config, training=True)
    assert "scoring" not in evaluation and "evaluation" not in evaluation
    assert "families" not in evaluation  # which models run must not re-prepare the data
    other = _config(anomaly={"families": ["anogan"]})
    assert planning.anomaly_preparation(other) == evaluation
    assert "synthetic_anomalies" in evaluation and "synthetic_anomalies" not in training
    assert training["image_size"] == 16


def test_expression_inference_preparation_leaves_out_later_steps():
    config = _inference_config()
    prepared = planning.expression_inference_preparation(config)
    assert set(prepared) == {"source", "table", "gene_sets", "folds"}
    # new profiles, another model or another baseline: the same preparation
    later = _inference_config(expression_inference={
        "families": ["dgex"], "evaluation": {"scatter_genes": 3},
        "infer": {"path": "new.gctx", "model": "dgex", "input_scale": "zscore"}})
    assert planning.expression_inference_preparation(later) == prepared
    other = _inference_config(expression_inference={"gene_sets": {"min_found": 0.5}})
    assert planning.expression_inference_preparation(other) != prepared


def test_generator_baseline_only_when_asked():
    config = _config()
    assert planning.generator_l1_hparams(config) is None
    config["synthesis"]["evaluation"]["baselines"] = ["generator_l1"]
    config["training"]["max_epochs"] = 2
    assert planning.generator_l1_hparams(config)["max_epochs"] == 2


def test_one_error_wrapper_gives_one_line():
    with pytest.raises(WorkflowError) as err, planning.refused_before_run("invalid thing"):
        raise MedgenInputError("config key 'x' is 1; expected 2")
    assert str(err.value) == "invalid thing: config key 'x' is 1; expected 2"
    assert err.value.__cause__ is None  # no chained traceback
    with pytest.raises(ValueError), planning.refused_before_run("a bug stays a bug"):
        raise ValueError("not a user's input")


def test_every_task_spec_is_complete():
    from medgen.family import resolve

    for name in registry.TASKS:
        spec = registry.task(name)
        assert spec.name == name
        assert callable(resolve(spec.training_data))
        for reference in (spec.apply, spec.check_apply):
            assert reference is None or callable(resolve(reference))
        assert (ROOT / "workflow" / "rules" / f"{name}.smk").exists()
    with pytest.raises(MedgenInputError, match="unknown task 'imaging'; valid tasks:"):
        registry.task("imaging")


def test_a_dry_run_imports_neither_torch_nor_matplotlib(tmp_path):
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('HEAVY', sorted(m for m in ('torch', 'matplotlib', "
        "'lightning', 'monai') if m in sys.modules), file=sys.__stderr__))\n"
        "from snakemake.cli import main\n"
        f"sys.argv = ['snakemake', '-n', '--quiet', '--directory', {str(ROOT)!r}, "
        f"'--snakefile', {str(ROOT / 'Snakefile')!r}, '--config', "
        f"'results_dir={tmp_path}']\n"
        "main()\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT)
    assert "HEAVY []" in run.stderr, run.stderr[-2000:]


def test_replicates_seeds_split_and_per_seed_evaluation_images():
    assert planning.replicate_seeds(_config()) == []  # one run with 'seed', as always
    assert not planning.redraws_split(_config())
    replicated = _config(replicates={"seeds": [2, 0, 7]})
    assert planning.replicate_seeds(replicated) == [2, 0, 7]
    assert not planning.redraws_split(replicated)
    # the demo draws its synthetic anomalies per seed; labelled data keep one evaluation set
    assert planning.anomaly_evaluation_per_seed(replicated)
    sheet = {"kind": "npz2d", "families": ["fanogan"]}
    assert not planning.anomaly_evaluation_per_seed(
        _config(replicates={"seeds": [0, 1]}, anomaly=sheet))
    assert planning.anomaly_evaluation_per_seed(
        _config(replicates={"seeds": [0, 1], "redraw_split": True}, anomaly=sheet))
    assert planning.redraws_split(_config(replicates={"seeds": [0, 1], "redraw_split": True}))
    # apply mode applies one model: no replicates
    applied = _config(replicates={"seeds": [0, 1]}, apply={"activate": True, "model": "m.pt"})
    assert planning.replicate_seeds(applied) == []
    with pytest.raises(MedgenInputError, match=r"'replicates.seeds' is \[3\]: one replicate"):
        planning.replicate_seeds(_config(replicates={"seeds": [3]}))
    with pytest.raises(MedgenInputError, match="replicates.seeds"):
        _config(replicates={"seeds": [1, 1]})  # the schema: unique seeds
    # 1.0 is an integer to the schema: the seed<k> folders and params take 1
    assert planning.replicate_seeds(_config(replicates={"seeds": [1.0, 2.0]})) == [1, 2]
    with pytest.raises(MedgenInputError, match=r"replicates.seeds\[1\]"):
        _config(replicates={"seeds": [0, 2**32]})  # numpy's seeds are 32-bit
