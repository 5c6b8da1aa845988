"""Each shipped dataset config runs its own data set, and nothing the default config adds.

A dataset config overrides config/config.yaml key by key but replaces its lists, so its
``tasks`` list replaces the default's (the TCGA expression run and the MNI152 anomaly
demo): a task it does not list must not run. Dry runs only: the job list, never a training.

What a config is about is read from the file itself: the tasks of its ``tasks`` list, each
training the families of its section's ``families``. Model rules are matched by their
output paths (``/tybalt/``, ``/<family>/``), not by rule names, so the checks hold for
either rule layout; the data and scoring rules are matched by name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from medgen import config as medgen_config
from medgen import registry

from conftest import REPO_ROOT, run_snakemake

DATASETS = sorted((REPO_ROOT / "config" / "datasets").glob("*.yaml"))  # not the sample sheets
EXPRESSION_FAMILIES = tuple(registry.names("expression"))
IMAGING_FAMILIES = tuple(registry.names("anomaly"))  # with the conv-autoencoder baseline
INFERENCE_FAMILIES = tuple(registry.names("expression_inference"))
INFERENCE_RULES = {"prepare_expression_inference", "evaluate_expression_inference",
                   "infer_targets"}
SYNTHESIS_FAMILIES = tuple(registry.names("synthesis"))
SYNTHESIS_RULES = {"prepare_synthesis", "train_synthesis_level", "synthesis_context",
                   "evaluate_synthesis", "synthesis_report"}
SEQUENCE_FAMILIES = tuple(registry.names("sequence_design"))
GENERATION_RULES = {"evaluate_sequence_generation"}  # with dna_gan listed
DESIGN_RULES = {"train_design_oracle", "design_sequences", "evaluate_sequence_design"}
SEQUENCE_RULES = {"prepare_sequence_design", *GENERATION_RULES, *DESIGN_RULES}
EXPRESSION_RULES = {"fetch_syng_bts", "fetch_url", "preprocess_expression"}
IMAGING_RULES = {"prepare_training_images", "prepare_evaluation_images", "fit_pca_baseline",
                 "score_anomalies", "evaluate_anomaly"}
JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n?)*)", re.MULTILINE)


def _paths(body: str, key: str) -> list[str]:
    found = re.search(rf"^\s+{key}: (.*)$", body, re.MULTILINE)
    return found.group(1).split(", ") if found else []


def planned_jobs(stdout: str) -> list[dict]:
    """The dry run's jobs: rule name, input and output paths."""
    return [{"rule": rule, "input": _paths(body, "input"), "output": _paths(body, "output")}
            for rule, body in JOB.findall(stdout)]


ACTIVATE = re.compile(r"\bactivate\s*:")


def subjects(path: Path) -> set[str]:
    """The tasks the file itself lists (its ``tasks``, which replaces the default's)."""
    return set(medgen_config.load_yaml(path).get("tasks") or [])


def needs_shared_data(path: Path) -> bool:
    return "../shared/data" in path.read_text()


def test_every_model_family_belongs_to_a_branch():
    # a family of a task without a workflow branch here would go unchecked
    branches = (set(EXPRESSION_FAMILIES) | set(IMAGING_FAMILIES) | set(INFERENCE_FAMILIES)
                | set(SYNTHESIS_FAMILIES) | set(SEQUENCE_FAMILIES))
    assert set(registry.FAMILIES) <= branches


def test_there_are_dataset_configs():
    assert DATASETS, "config/datasets/ holds no dataset config"


@pytest.mark.parametrize("path", DATASETS, ids=[path.stem for path in DATASETS])
def test_no_dataset_config_has_an_activate_switch(path):
    # what runs is chosen by lists (tasks, <task>.families); read as text, so that a switch
    # anywhere (a section, models.<family>, flow style) is found, comments aside
    found = [f"{path.name}:{number}: {line.strip()}"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if ACTIVATE.search(line.split("#", 1)[0])]
    assert found == []


def test_the_activate_check_finds_a_switch():
    assert ACTIVATE.search("  activate: true") and ACTIVATE.search("tybalt: {activate: true}")
    assert not ACTIVATE.search("tasks: [anomaly]   # no activate switch".split("#", 1)[0])


@pytest.mark.parametrize("path", DATASETS, ids=[path.stem for path in DATASETS])
def test_each_dataset_config_lists_its_tasks_and_sets_their_sections(path):
    raw = medgen_config.load_yaml(path)
    about = subjects(path)
    assert about, f"{path.name} lists no tasks: it would run the default config's"
    assert about <= set(registry.TASKS)
    for task in about:
        section = registry.task(task).section
        assert isinstance(raw.get(section), dict), f"{path.name} lists {task}, sets no {section}"
        assert raw[section].get("families"), f"{path.name}: no {section}.families of its own"
    # on the default config, the file's list replaces the default's
    assert medgen_config.load(path)["tasks"] == raw["tasks"]


@pytest.mark.workflow
@pytest.mark.parametrize("path", [
    pytest.param(path, id=path.stem,
                 marks=[pytest.mark.realdata] if needs_shared_data(path) else [])
    for path in DATASETS
])
def test_dataset_config_schedules_only_its_own_branch(path, tmp_path, request):
    if needs_shared_data(path):
        request.getfixturevalue("shared_data")  # its relative ../shared/data paths resolve
    about = subjects(path)
    assert about, f"{path.name} lists no tasks"
    resolved = medgen_config.load(path)
    # exactly the tasks the file lists: a task the file is not about stays off after the
    # default config is layered under it (the default lists its TCGA run and MNI152 demo)
    tasks_on = {task for task in registry.TASKS if task in resolved["tasks"]}
    assert tasks_on == about, f"{path.name}: tasks {sorted(resolved['tasks'])}"

    override = tmp_path / "override.yaml"  # outputs and downloads away from the checkout
    override.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results"),
                                        "cache_dir": str(tmp_path / "cache")}))
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(path), str(override))
    jobs = planned_jobs(result.stdout)
    assert jobs, result.stdout
    rules = {job["rule"] for job in jobs}
    outputs = [out for job in jobs for out in job["output"]]
    inputs = [inp for job in jobs for inp in job["input"]]

    def trained(family: str) -> bool:
        return any(f"/{family}/" in out and out.endswith("model.pt") for out in outputs)

    def touches(family: str) -> list[str]:
        return [p for p in outputs + inputs if f"/{family}/" in p]

    # expression inference on the run's preprocessed expression (expression.source etc.)
    inference_reads_expression = ("expression_inference" in about and
                                  resolved["expression_inference"]["source"] == "expression")
    if "expression" in about:
        assert "preprocess_expression" in rules, result.stdout
        for family in EXPRESSION_FAMILIES:
            if family in resolved["expression"]["families"]:
                assert trained(family), f"no {family} training job:\n{result.stdout}"
                # the evaluation reads the trained model
                assert any(f"/{family}/" in inp and inp.endswith("model.pt") for inp in inputs), \
                    f"no job evaluates {family}:\n{result.stdout}"
    else:
        for family in EXPRESSION_FAMILIES:
            assert not touches(family), f"{path.name} runs {family}: {touches(family)}"
        if inference_reads_expression:  # the expression task's data, none of its models
            assert "preprocess_expression" in rules, result.stdout
        else:
            assert not rules & EXPRESSION_RULES, \
                f"{path.name} runs expression jobs: {sorted(rules)}"

    if "anomaly" in about:
        assert {"prepare_training_images", "prepare_evaluation_images", "score_anomalies",
                "evaluate_anomaly"} <= rules, result.stdout
        baselines = resolved["anomaly"]["evaluation"]["baselines"]
        if "pca" in baselines:
            assert "fit_pca_baseline" in rules, result.stdout
        networks = [f for f in IMAGING_FAMILIES
                    if f in baselines or f in resolved["anomaly"]["families"]]
        assert networks, f"{path.name} trains no anomaly model"
        for family in networks:
            assert trained(family), f"no {family} training job:\n{result.stdout}"
        for family in set(IMAGING_FAMILIES) - set(networks):  # a family not listed
            assert not trained(family), f"{path.name} trains {family}:\n{result.stdout}"
    else:
        assert not rules & IMAGING_RULES, f"{path.name} runs anomaly jobs: {sorted(rules)}"
        for family in IMAGING_FAMILIES:
            assert not touches(family), f"{path.name} runs {family}: {touches(family)}"

    if "expression_inference" in about:
        assert {"prepare_expression_inference", "evaluate_expression_inference"} <= rules, \
            result.stdout
        listed = resolved["expression_inference"]["families"]
        assert listed, f"{path.name} trains no expression-inference model"
        for family in INFERENCE_FAMILIES:
            assert trained(family) == (family in listed), \
                f"{family} ({'' if family in listed else 'not '}listed):\n{result.stdout}"
        if resolved["expression_inference"]["infer"]["path"]:
            assert "infer_targets" in rules, result.stdout
    else:
        assert not rules & INFERENCE_RULES, f"{path.name} runs inference jobs: {sorted(rules)}"
        for family in INFERENCE_FAMILIES:
            assert not touches(family), f"{path.name} runs {family}: {touches(family)}"

    if "synthesis" in about:
        assert {"prepare_synthesis", "train_synthesis_level", "evaluate_synthesis",
                "synthesis_report"} <= rules, result.stdout
        listed = resolved["synthesis"]["families"]
        assert listed, f"{path.name} trains no synthesis model"
        for family in listed:  # one training job per auto-context level
            levels = registry.family_hparams(family, resolved)["auto_context_levels"]
            for k in range(1, levels + 1):
                assert any(out.endswith(f"/{family}/level{k}/model.pt") for out in outputs), \
                    f"no {family} level {k} training job:\n{result.stdout}"
    else:
        assert not rules & SYNTHESIS_RULES, f"{path.name} runs synthesis jobs: {sorted(rules)}"
        for family in SYNTHESIS_FAMILIES:
            assert not touches(family), f"{path.name} runs {family}: {touches(family)}"

    if "sequence_design" in about:
        listed = resolved["sequence_design"]["families"]
        assert "prepare_sequence_design" in rules, result.stdout
        # generation is evaluated with a generator, design runs with a predictor
        assert (GENERATION_RULES <= rules) == ("dna_gan" in listed), sorted(rules)
        assert (DESIGN_RULES <= rules) == ("sequence_predictor" in listed), sorted(rules)
        assert listed, f"{path.name} trains no sequence-design model"
        for family in SEQUENCE_FAMILIES:
            assert trained(family) == (family in listed), \
                f"{family} ({'' if family in listed else 'not '}listed):\n{result.stdout}"
    else:
        assert not rules & SEQUENCE_RULES, f"{path.name} runs sequence jobs: {sorted(rules)}"
        for family in SEQUENCE_FAMILIES:
            assert not touches(family), f"{path.name} runs {family}: {touches(family)}"


@pytest.mark.workflow
@pytest.mark.realdata
def test_synthetic_anomalies_on_labelled_data_are_refused_before_any_job(tmp_path,
                                                                        shared_data):
    # the sheet is read when the workflow plans: the error comes then, not from a job
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"),
        "anomaly": {"synthetic_anomalies": {"activate": True}}}))
    brats = REPO_ROOT / "config" / "datasets" / "brats_anomaly.yaml"
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(brats), str(override),
                           check=False)
    assert result.returncode != 0
    assert "synthetic anomalies are for healthy data" in result.stdout + result.stderr
    assert "_seg.nii.gz" in result.stdout + result.stderr  # names the label file
    assert not (tmp_path / "results").exists()
