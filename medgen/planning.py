"""What the workflow plans from a validated config: which families and baselines run for
each task, with which hyperparameters and trainer settings, and which settings each
preparation step depends on.

The rule files (``workflow/rules/<task>.smk``) call these functions and hold only paths;
no family name appears there. Everything here is plain Python over the resolved config and
the registries, so it is unit-tested without Snakemake, and it never imports torch or
matplotlib: ``snakemake -n`` stays fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from medgen import registry
from medgen.errors import MedgenInputError

# trainer settings that change only the log and the resume points, never the weights
LOG_ONLY_SETTINGS = ("progress_bar", "checkpoint_every_n_epochs")
SYNTHESIS_GENERATOR_FAMILY = "context_gan"  # the 'generator_l1' baseline trains its generator
# the image of the workflow's global container directive (Apptainer.def at the repository
# root builds it): $MEDGEN_CONTAINER, else medgen.sif in the working directory
CONTAINER_VARIABLE = "MEDGEN_CONTAINER"
DEFAULT_CONTAINER = "medgen.sif"


@contextlib.contextmanager
def refused_before_run(what: str) -> Iterator[None]:
    """Turn a MedgenInputError raised while a run is planned into Snakemake's
    ``WorkflowError``: one line, no traceback, ``"<what>: <message>"``.

    The one wrapper the rule files use (config, sample sheets, ablations, apply).
    """
    try:
        yield
    except MedgenInputError as err:
        from snakemake.exceptions import WorkflowError  # only the workflow pays for it

        raise WorkflowError(f"{what}: {err}") from None


def container_image(environ: Mapping[str, str], deployment_methods: Iterable[Any] = ()) -> str:
    """The image every job runs in under ``--software-deployment-method apptainer``.

    ``environ[CONTAINER_VARIABLE]`` (``$MEDGEN_CONTAINER``): a local image path, relative to
    the working directory, or a URI apptainer pulls (``docker://...``, ``oras://...``);
    else ``DEFAULT_CONTAINER`` (``medgen.sif``). Without that option Snakemake ignores the
    directive and jobs use the environment snakemake runs in.

    ``deployment_methods``: Snakemake's (``workflow.deployment_settings.deployment_method``);
    when it holds apptainer, a local image must exist, so that a missing one is one message
    before the run rather than a failure in every job.

    Raises
    ------
    MedgenInputError
        ``$MEDGEN_CONTAINER`` set but empty or holding whitespace (apptainer cannot be
        given such a name), or apptainer asked for and the local image missing.
    """
    image = environ.get(CONTAINER_VARIABLE, DEFAULT_CONTAINER)
    if not image.strip() or any(char.isspace() for char in image):
        raise MedgenInputError(
            f"{CONTAINER_VARIABLE} is {image!r}; expected an image without spaces: a local "
            "path such as medgen.sif, or a URI such as docker://<registry>/medgen:<version>")
    apptainer = "apptainer" in {str(method) for method in deployment_methods}
    if apptainer and "://" not in image and not Path(image).is_file():
        raise MedgenInputError(
            f"image {image} does not exist in {Path.cwd()}: build it there with "
            f"`apptainer build {image} Apptainer.def`, or set {CONTAINER_VARIABLE} to an "
            "image path or URI (README: a container on SLURM)")
    return image


def apply_mode(config: dict[str, Any]) -> bool:
    """True when the run applies a trained model (``apply.activate``) instead of training."""
    return bool(config["apply"]["activate"])


def task_on(config: dict[str, Any], task: str) -> bool:
    """True when ``task`` is in the config's ``tasks`` list."""
    return task in config["tasks"]


def replicate_seeds(config: dict[str, Any]) -> list[int]:
    """The replicates' seeds (``replicates.seeds``; validation refuses a single one); []
    for one run with ``seed``, and in apply mode (one model is applied: no replicates)."""
    # int(): the schema accepts 1.0 as an integer; paths and params need 1
    return [] if apply_mode(config) else [int(seed) for seed in config["replicates"]["seeds"]]


def redraws_split(config: dict[str, Any]) -> bool:
    """True when each replicate prepares its own data with its seed (a redrawn split)."""
    return bool(replicate_seeds(config)) and bool(config["replicates"]["redraw_split"])


def anomaly_evaluation_per_seed(config: dict[str, Any]) -> bool:
    """True when each replicate prepares its own evaluation images: synthetic anomalies
    (the demo always inserts them) are drawn with the replicate's seed."""
    section = config["anomaly"]
    synthetic = section["kind"] == "mni152_demo" or section["synthetic_anomalies"]["activate"]
    return bool(replicate_seeds(config)) and (synthetic or redraws_split(config))


def task_families(config: dict[str, Any], task: str) -> list[str]:
    """The families ``task`` trains: its section's ``families`` list, in the config's order
    (validated against the registry; baselines come from the task's evaluation settings)."""
    return list(config[registry.task(task).section]["families"])


def trained_hparams(config: dict[str, Any], family: str,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The family's hyperparameters as its training job trains with them: the preset, the
    config's ``models.<family>.params``, then ``params`` (an ablation's overrides), with
    ``training.max_epochs`` replacing the epochs (``FamilySpec.with_epochs``). A baseline
    gets its own config settings (``FamilySpec.config_hparams``).

    Raises
    ------
    MedgenInputError
        Unknown preset or key, or a value the family refuses (naming the key).
    """
    spec = registry.get(family)
    if params is None:
        hparams = registry.family_hparams(family, config)
    else:
        section = config["models"][family]
        hparams = registry.resolve_hparams(family, section["preset"],
                                           {**section.get("params", {}), **params})
    return spec.with_epochs(hparams, config["training"]["max_epochs"])


def training_settings(config: dict[str, Any], family: str) -> dict[str, Any]:
    """Trainer settings that can change the weights, as a training rule's params.

    ``LOG_ONLY_SETTINGS`` are left out (the scripts read them from the config): turning the
    progress bar off for SLURM logs must not retrain. ``max_epochs`` does not apply to
    baselines. ``deterministic`` is in only when not the default (true, what training
    without the key does): 'warn' or false retrains, and runs made before the key existed
    do not.
    """
    settings = {key: value for key, value in config["training"].items()
                if key not in LOG_ONLY_SETTINGS}
    if settings.get("deterministic") is True:
        del settings["deterministic"]
    if registry.get(family).baseline:
        settings["max_epochs"] = None
    return settings


def anomaly_methods(config: dict[str, Any]) -> list[str]:
    """Every anomaly scorer evaluated side by side: the task's families, then the
    baselines of ``anomaly.evaluation.baselines`` (conv AE, PCA, trivial scores)."""
    return task_families(config, "anomaly") + list(
        config["anomaly"]["evaluation"]["baselines"])


def evaluated_methods(config: dict[str, Any], task: str) -> list[str]:
    """Every method ``task``'s evaluation reports, as its tidy table names them: the
    families (a synthesis family once per auto-context level, ``<family>_level<k>``), the
    baselines and the ablations."""
    families = task_families(config, task)
    if task == "anomaly":
        return anomaly_methods(config)
    if task == "expression":
        return families + list(config["expression"]["evaluation"]["baselines"])
    if task == "synthesis":
        levels = [f"{family}_level{k}" for family in families
                  for k in range(1, synthesis_levels(config, family) + 1)]
        # the voxel-wise regressions are evaluated as voxel_linear, voxel_hgb
        return levels + [f"voxel_{name}" if name in ("linear", "hgb") else name
                         for name in config["synthesis"]["evaluation"]["baselines"]]
    if task == "sequence_design":
        return sequence_generation_methods(config) + sequence_design_methods(config)
    section = config["expression_inference"]["evaluation"]
    return list(dict.fromkeys([*families, *expression_inference_ablations(config), "ridge",
                               *section["baselines"]]))


def trained_models(config: dict[str, Any], task: str) -> list[str]:
    """Every model folder ``task`` trains under ``models/`` (each gets a ``model.pt`` and a
    model card): the families (a synthesis family once per auto-context level,
    ``<family>/level<k>``) and the baselines trained as families (the conv AE)."""
    families = task_families(config, task)
    if task == "synthesis":
        return [f"{family}/level{k}" for family in families
                for k in range(1, synthesis_levels(config, family) + 1)]
    trained = set(registry.names(task))
    return families + [m for m in evaluated_methods(config, task)
                       if m in trained and m not in families]


def anomaly_preparation(config: dict[str, Any], training: bool = False) -> dict[str, Any]:
    """The anomaly section without what later steps read (families, scoring, evaluation):
    a change to which models run or how results are scored must not rerun preparation, and
    with it every training job. Training data also leave out what touches only the
    evaluation slices (synthetic anomalies)."""
    later = ("families", "scoring", "evaluation") + (
        ("synthetic_anomalies",) if training else ())
    return {key: value for key, value in config["anomaly"].items() if key not in later}


# sequence_design's families that generate sequences (the others predict a measurement):
# here, not in the task, because planning never imports tasks
SEQUENCE_GENERATORS: tuple[str, ...] = ("dna_gan",)


def sequence_generation_methods(config: dict[str, Any]) -> list[str]:
    """The methods of the sequence-generation evaluation's tidy table: the generator
    families (dna_gan) among sequence_design's families, then the i.i.d. baseline and one
    Markov chain per order (``sequence_design.evaluation.markov_orders``); none without a
    generator (the predictor is evaluated by the design step, ``sequence_design_methods``)."""
    generators = [f for f in task_families(config, "sequence_design")
                  if f in SEQUENCE_GENERATORS]
    if not generators:
        return []
    orders = config["sequence_design"]["evaluation"]["markov_orders"]
    return generators + ["iid"] + [f"markov{k}" for k in sorted(orders)]


# design (the sequence_predictor's use): the optimisers and the baselines beside them, and
# the predictor's own accuracy baselines
DESIGN_OPTIMISERS: tuple[str, ...] = ("activation_maximisation", "joint", "evolution")
DESIGN_BASELINES: tuple[str, ...] = ("random", "best_measured")
PREDICTOR_BASELINES: tuple[str, ...] = ("additive_ridge", "mean")


def design_optimisers(config: dict[str, Any]) -> list[str]:
    """The design methods a run optimises with: ``sequence_design.design.methods``, or all
    that apply (joint only with dna_gan among the families)."""
    families = task_families(config, "sequence_design")
    chosen = config["sequence_design"]["design"]["methods"]
    if chosen is not None:
        return [m for m in DESIGN_OPTIMISERS if m in chosen]
    return [m for m in DESIGN_OPTIMISERS if m != "joint" or "dna_gan" in families]


def sequence_design_methods(config: dict[str, Any]) -> list[str]:
    """The methods of the design evaluation's tidy table (with sequence_predictor among the
    families; none otherwise): the predictor and its accuracy baselines, the design
    optimisers and the design baselines."""
    if "sequence_predictor" not in task_families(config, "sequence_design"):
        return []
    return ["sequence_predictor", *PREDICTOR_BASELINES, *design_optimisers(config),
            *DESIGN_BASELINES]


def carded_models(config: dict[str, Any], task: str) -> list[str]:
    """The trained models that get a model card: those the task's evaluation scores (a
    card reports the model's held-out metrics): every trained model but sequence_design's
    families that no evaluation of the run scores."""
    models = trained_models(config, task)
    if task != "sequence_design":
        return models
    return [m for m in models if m in evaluated_methods(config, task)]


def sequence_design_preparation(config: dict[str, Any]) -> dict[str, Any]:
    """The sequence_design section without ``families``, ``evaluation`` and ``design``:
    which models train and how they are evaluated must not rerun the data preparation (and
    with it every training job)."""
    return {key: value for key, value in config["sequence_design"].items()
            if key not in ("families", "evaluation", "design")}


def expression_inference_ablations(config: dict[str, Any]) -> dict[str, list[Any]]:
    """Ablations of the expression-inference task's families: name -> [family,
    hyperparameters as trained] (``expression_inference.evaluation.ablations``).

    Raises
    ------
    MedgenInputError
        ``expression_inference.evaluation.ablations.<name>: <what the family refuses>``.
    """
    families = task_families(config, "expression_inference")
    resolved = {}
    for name, spec in config["expression_inference"]["evaluation"]["ablations"].items():
        if spec["family"] not in families:
            continue
        try:
            hparams = trained_hparams(config, spec["family"], spec["params"])
        except MedgenInputError as err:
            raise MedgenInputError(
                f"expression_inference.evaluation.ablations.{name}: {err}") from None
        resolved[name] = [spec["family"], hparams]
    return resolved


def expression_inference_model(config: dict[str, Any]) -> str:
    """The family whose model infers new profiles (``expression_inference.infer.model``,
    default: the first of ``expression_inference.families``).

    Raises
    ------
    MedgenInputError
        The named family is not in ``expression_inference.families``.
    """
    families = task_families(config, "expression_inference")
    wanted = config["expression_inference"]["infer"]["model"] or (families or [""])[0]
    if wanted not in families:
        raise MedgenInputError(
            f"config key 'expression_inference.infer.model' is {wanted!r}; expected one of "
            f"expression_inference.families ({', '.join(families) or 'none listed'})")
    return wanted


def expression_inference_preparation(config: dict[str, Any]) -> dict[str, Any]:
    """The expression-inference section without what later steps read (families,
    evaluation, infer): new profiles to infer, another model or baseline must not rebuild
    the landmark/target matrices, and with them retrain and re-evaluate every model."""
    return {key: value for key, value in config["expression_inference"].items()
            if key not in ("families", "evaluation", "infer")}


def synthesis_levels(config: dict[str, Any], family: str) -> int:
    """K, the number of auto-context levels of a synthesis family (its hyperparameter
    ``auto_context_levels``; 1 without auto-context)."""
    return int(registry.family_hparams(family, config).get("auto_context_levels", 1))


def generator_l1_hparams(config: dict[str, Any]) -> dict[str, Any] | None:
    """The hyperparameters the 'generator_l1' synthesis baseline trains its generator with
    (the configured generator family's preset, overrides and ``training.max_epochs``); None
    when the baseline is not asked for."""
    if "generator_l1" not in config["synthesis"]["evaluation"]["baselines"]:
        return None
    return trained_hparams(config, SYNTHESIS_GENERATOR_FAMILY)


def synthesis_preparation(config: dict[str, Any]) -> dict[str, Any]:
    """The synthesis section without what later steps read (families, evaluation,
    inference): changing them must not re-prepare the data and retrain."""
    return {key: value for key, value in config["synthesis"].items()
            if key not in ("families", "evaluation", "inference")}
