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
from collections.abc import Iterator
from typing import Any

from medgen import registry
from medgen.errors import MedgenInputError

# trainer settings that change only the log and the resume points, never the weights
LOG_ONLY_SETTINGS = ("progress_bar", "checkpoint_every_n_epochs")
SYNTHESIS_GENERATOR_FAMILY = "context_gan"  # the 'generator_l1' baseline trains its generator


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


def is_activated(config: dict[str, Any], section: str) -> bool:
    """True when ``config[section]`` (a dotted path, e.g. 'models.tybalt') has
    ``activate: true``."""
    node = config
    for key in section.split("."):
        node = node.get(key, {})
    return bool(node.get("activate", False))


def activated_families(config: dict[str, Any], task: str) -> list[str]:
    """Registered families of ``task`` switched on under ``models`` (registry order;
    baselines come from the task's own evaluation settings instead)."""
    return [family for family in registry.names(task, baselines=False)
            if is_activated(config, f"models.{family}")]


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
    baselines.
    """
    settings = {key: value for key, value in config["training"].items()
                if key not in LOG_ONLY_SETTINGS}
    if registry.get(family).baseline:
        settings["max_epochs"] = None
    return settings


def anomaly_methods(config: dict[str, Any]) -> list[str]:
    """Every anomaly scorer evaluated side by side: the activated families, then the
    baselines of ``imaging.evaluation.baselines`` (conv AE, PCA, trivial scores)."""
    return activated_families(config, "anomaly") + list(
        config["imaging"]["evaluation"]["baselines"])


def anomaly_preparation(config: dict[str, Any], training: bool = False) -> dict[str, Any]:
    """The imaging section without the later steps' sections (scoring, evaluation): a
    change to how results are scored must not rerun preparation, and with it every training
    job. Training data also leave out what touches only the evaluation slices (synthetic
    anomalies)."""
    later = ("scoring", "evaluation") + (("synthetic_anomalies",) if training else ())
    return {key: value for key, value in config["imaging"].items() if key not in later}


def inference_ablations(config: dict[str, Any]) -> dict[str, list[Any]]:
    """Ablations of activated expression-inference families: name -> [family,
    hyperparameters as trained] (``expression_inference.evaluation.ablations``).

    Raises
    ------
    MedgenInputError
        ``expression_inference.evaluation.ablations.<name>: <what the family refuses>``.
    """
    families = activated_families(config, "expression_inference")
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


def inference_model(config: dict[str, Any]) -> str:
    """The family whose model infers new profiles (``expression_inference.infer.model``,
    default: the first activated expression-inference family).

    Raises
    ------
    MedgenInputError
        The named family is not activated.
    """
    families = activated_families(config, "expression_inference")
    wanted = config["expression_inference"]["infer"]["model"] or (families or [""])[0]
    if wanted not in families:
        raise MedgenInputError(
            f"expression_inference.infer.model is {wanted!r}; activate it under models "
            f"(activated expression-inference families: {', '.join(families) or 'none'})")
    return wanted


def synthesis_levels(config: dict[str, Any], family: str) -> int:
    """K, the number of auto-context levels of a synthesis family (its hyperparameter
    ``auto_context_stages``; 1 without auto-context)."""
    return int(registry.family_hparams(family, config).get("auto_context_stages", 1))


def generator_l1_hparams(config: dict[str, Any]) -> dict[str, Any] | None:
    """The hyperparameters the 'generator_l1' synthesis baseline trains its generator with
    (the configured generator family's preset, overrides and ``training.max_epochs``); None
    when the baseline is not asked for."""
    if "generator_l1" not in config["synthesis"]["evaluation"]["baselines"]:
        return None
    return trained_hparams(config, SYNTHESIS_GENERATOR_FAMILY)


def synthesis_preparation(config: dict[str, Any]) -> dict[str, Any]:
    """The synthesis section without evaluation and inference: changing them must not
    re-prepare the data and retrain."""
    return {key: value for key, value in config["synthesis"].items()
            if key not in ("evaluation", "inference", "activate")}
