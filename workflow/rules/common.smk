# Validation, paths and small helpers shared by every rule file. What runs, with which
# settings, is planned by medgen.planning; each task's rules, paths and input functions are
# in rules/<task>.smk, which registers the task's final targets and input files below.
import functools
import os
import re

import medgen.config
from medgen import planning, registry
from medgen.planning import refused_before_run

# Validate before anything runs: one message naming the key and the valid choices.
with refused_before_run("invalid medgen config"):
    _resolved = medgen.config.validate(config)
config.clear()
config.update(_resolved)

# The image of the global container directive (workflow/Snakefile); it is used only with
# --software-deployment-method apptainer (README: a container on SLURM).
with refused_before_run("container"):
    CONTAINER = planning.container_image(
        os.environ, workflow.deployment_settings.deployment_method
    )

RUN = f"{config['results_dir']}/{config['run_name']}"
CACHE = config["cache_dir"]
LOGS = f"{RUN}/logs"
APPLY = f"{RUN}/apply"
# Replicates (replicates.seeds): what a seed changes lives under seed<k>/, a {seed} wildcard
# in the paths of models, scores and evaluations (and of the prepared data when each
# replicate redraws the split); without replicates the prefixes are empty and the paths
# are what they always were.
SEEDS = planning.replicate_seeds(config)
REPLICATE = "seed{seed}/" if SEEDS else ""
SPLIT = REPLICATE if planning.redraws_split(config) else ""
REPLICATE_LOGS = f"{LOGS}/{REPLICATE}".rstrip("/")
SPLIT_LOGS = f"{LOGS}/{SPLIT}".rstrip("/")
MODELS = f"{RUN}/{REPLICATE}models"
# report entries of one replicate say which (the aggregate is in "Across replicates")
SEED_LABEL = {"seed": "{seed}"} if SEEDS else {}

# task -> function giving its final targets / the input files it reads (for the run's
# provenance) / its tidy metric tables (aggregated over replicates); filled by each task's
# rule file
TASK_OUTPUTS = {}
TASK_INPUTS = {}
TASK_TIDY = {}
REPLICATES = f"{RUN}/replicates"
COMPARISONS = "comparisons.tsv"


def apply_mode():
    """True when the run applies a trained model (apply.activate) instead of training."""
    return planning.apply_mode(config)


def task_on(task):
    """True when ``task`` is in the config's tasks list."""
    return planning.task_on(config, task)


def task_families(task):
    """The families ``task`` trains (its section's families list)."""
    return planning.task_families(config, task)


def run_seed(wildcards):
    """The seed of a job: its replicate's, else the config's."""
    return int(wildcards.seed) if "seed" in wildcards.keys() else config["seed"]


def fill_seed(value, seed):
    """``value`` (a path, or lists and dicts of them) with ``{seed}`` replaced by ``seed``:
    the one place a replicate's seed is written into a path."""
    if isinstance(value, str):
        return value.replace("{seed}", str(seed))
    if isinstance(value, dict):
        return {key: fill_seed(item, seed) for key, item in value.items()}
    if isinstance(value, list):
        return [fill_seed(item, seed) for item in value]
    return value


def with_seed(value, wildcards):
    """``value`` with the job's replicate filled in (``fill_seed``): params, unlike
    inputs, are not formatted by Snakemake."""
    return fill_seed(value, wildcards.seed) if "seed" in wildcards.keys() else value


def one_of(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def family_hparams(family):
    """The family's preset with the dataset config's overrides applied (or, for a baseline,
    its own evaluation settings)."""
    return registry.family_hparams(family, config)


def trained_hparams(family):
    """The family's hyperparameters as its training job trains with them
    (training.max_epochs, when set, replaces the preset's epochs)."""
    return planning.trained_hparams(config, family)


def training_settings(family):
    """Trainer settings that can change the weights (medgen.planning.training_settings)."""
    return planning.training_settings(config, family)


def training_resources(family):
    return registry.get(family).resources


def training_data(wildcards):
    """The prepared training data of the family's task (TaskSpec.training_input)."""
    return f"{RUN}/{SPLIT}{registry.task(registry.get(wildcards.family).task).training_input}"


def gpus_requested():
    """GPUs to ask the scheduler for: only when the config asks for GPU training."""
    if config["training"]["accelerator"] == "gpu":
        return config["training"]["devices"]
    return 0


@functools.cache
def apply_task():
    """The task of the model that apply.model names, once the config's data fit it."""
    # torch and the task code: imported only in apply mode
    from medgen.apply import check_apply_config

    with refused_before_run("invalid apply config"):
        return check_apply_config(config)


def run_inputs():
    """Every input file of this run, for its provenance."""
    if apply_mode():
        return apply_inputs()
    inputs = []
    for task in registry.TASKS:
        if task_on(task):
            inputs += TASK_INPUTS[task]()
    # a file prepared per replicate (a redrawn split) is the run's output, not its input
    return [path for path in dict.fromkeys(inputs) if "{seed}" not in path]


def replicate_tables(wildcards):
    """seed<k> -> the task's tidy metric tables of that replicate (the aggregation's input)."""
    return {f"seed{seed}": fill_seed(TASK_TIDY[wildcards.task](), seed) for seed in SEEDS}


def all_outputs():
    """The run's final targets: the provenance, then each activated task's targets and
    model cards (rules/model_card.smk), once per replicate and aggregated over them (or, in apply mode, the apply folder).
    """
    targets = [f"{RUN}/provenance.json"]
    if apply_mode():
        return targets + [APPLY]
    for task in registry.TASKS:
        if task_on(task) and TASK_OUTPUTS[task]():
            # model cards and replicate comparisons read the task's tidy metrics: a task
            # without an evaluation (sequence_design without dna_gan) delivers its models alone
            evaluated = bool(TASK_TIDY[task]())
            outputs = TASK_OUTPUTS[task]() + (model_cards(task) if evaluated else [])
            if SEEDS:
                outputs = [path for seed in SEEDS for path in fill_seed(outputs, seed)]
                outputs += [f"{REPLICATES}/{task}/{COMPARISONS}"] if evaluated else []
            targets += outputs
    return list(dict.fromkeys(targets))
