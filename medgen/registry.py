"""The registries: task name -> its :class:`medgen.task.TaskSpec` and family name -> its
:class:`medgen.family.FamilySpec`, one line each.

Explicit and small (as MONAI's factories): a typo in a config fails with the list of valid
names. Task and family modules are imported on first use, so validating a config stays fast.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from medgen.errors import MedgenInputError
from medgen.family import FamilySpec
from medgen.task import TaskSpec

TASKS: dict[str, str] = {
    "expression": "medgen.tasks.expression",  # latent spaces of expression profiles
    "anomaly": "medgen.tasks.anomaly",  # unsupervised anomaly detection in images
    "expression_inference": "medgen.tasks.expression_inference",  # landmark -> target genes
    "synthesis": "medgen.tasks.synthesis",  # paired cross-modality image synthesis
    "sequence_design": "medgen.tasks.sequence_design",  # DNA generation and design
}

FAMILIES: dict[str, str] = {
    "tybalt": "medgen.models.tybalt",  # Way & Greene 2018: VAE on expression
    "anogan": "medgen.models.anogan",  # Schlegl et al. 2017: DCGAN + latent mapping
    "fanogan": "medgen.models.fanogan",  # Schlegl et al. 2019: WGAN-GP + izi_f encoder
    "convae": "medgen.models.convae",  # baseline: convolutional autoencoder
    "ggan": "medgen.models.ggan",  # Wang et al. 2018: conditional GAN, landmark -> targets
    "dgex": "medgen.models.dgex",  # Chen et al. 2016: D-GEX MLP, landmark -> targets
    "context_gan": "medgen.models.context_gan",  # Nie et al. 2017: 3D synthesis GAN
    "dna_gan": "medgen.models.dna_gan",  # Killoran et al. 2017: WGAN-GP generating DNA
    "sequence_predictor": "medgen.models.sequence_predictor",  # Killoran et al. 2017: CNN
}


@cache
def task(name: str) -> TaskSpec:
    """The spec of task ``name``; MedgenInputError naming the valid tasks otherwise."""
    if name not in TASKS:
        raise MedgenInputError(f"unknown task '{name}'; valid tasks: {', '.join(TASKS)}")
    spec = importlib.import_module(TASKS[name]).TASK
    if spec.name != name:  # a copied folder that kept the old name
        raise RuntimeError(f"{TASKS[name]}.TASK is named {spec.name!r}, not {name!r}")
    return spec


@cache
def get(family: str) -> FamilySpec:
    """The spec of ``family``; MedgenInputError naming the valid families otherwise."""
    if family not in FAMILIES:
        raise MedgenInputError(
            f"unknown model family '{family}'; valid families: {', '.join(sorted(FAMILIES))}"
        )
    spec = importlib.import_module(FAMILIES[family]).FAMILY
    if spec.name != family:  # a copied folder that kept the old name
        raise RuntimeError(f"{FAMILIES[family]}.FAMILY is named {spec.name!r}, not {family!r}")
    if spec.task not in TASKS:
        raise RuntimeError(f"family {family!r}: unknown task {spec.task!r}; one of {list(TASKS)}")
    return spec


def names(task: str | None = None, baselines: bool = True) -> list[str]:
    """Registered family names (of one task; without baselines when ``baselines`` is False)."""
    return [name for name in FAMILIES
            if (task is None or get(name).task == task) and (baselines or not get(name).baseline)]


def configurable() -> list[str]:
    """Families configured under ``models.<name>`` (every family but the baselines)."""
    return names(baselines=False)


def presets(family: str) -> dict[str, dict[str, Any]]:
    """Preset name -> hyperparameters of ``family`` (MedgenInputError for unknown names)."""
    return dict(get(family).presets)


def resolve_hparams(
    family: str, preset: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The preset's hyperparameters with ``params`` applied key by key.

    An unknown preset or key fails with the valid choices, so typos never pass silently;
    then the family's positive keys are checked (``FamilySpec.check_positive``: epochs,
    batch sizes, widths >= 1, learning rates > 0) and its own ``check``
    (``FamilySpec.check``) refuses values it cannot train.

    Raises
    ------
    MedgenInputError
        Unknown family, preset or key; a value of another type than the preset's; a
        positive key that is not (``config key 'models.<family>.params.<key>' is -1;
        expected an integer >= 1``); what the family's ``check`` refuses.
    """
    available = presets(family)
    if preset not in available:
        raise MedgenInputError(
            f"config key 'models.{family}.preset' is {preset!r}; "
            f"expected one of: {', '.join(available)}"
        )
    hparams = dict(available[preset])
    for key, value in (params or {}).items():
        if key not in hparams:
            raise MedgenInputError(
                f"unknown config key 'models.{family}.params.{key}'; "
                f"valid keys: {', '.join(sorted(hparams))}"
            )
        expected = type(hparams[key])
        if hparams[key] is not None and not _compatible(value, expected):
            # PyYAML reads 1e-4 (no dot) as a string, a YAML 1.1 rule few expect
            hint = (f"; YAML reads {value} as text: write it with a dot, e.g. "
                    f"{float(value)!r}" if expected is float and _float_text(value) else "")
            raise MedgenInputError(
                f"config key 'models.{family}.params.{key}' is {value!r} "
                f"({type(value).__name__}); expected {expected.__name__}{hint}"
            )
        hparams[key] = value
    spec = get(family)
    spec.check_positive(hparams, f"models.{family}.params")
    if spec.check is not None:
        spec.check(hparams, f"models.{family}.params")
    return hparams


def family_hparams(family: str, config: dict[str, Any]) -> dict[str, Any]:
    """A family's hyperparameters from a resolved config: ``models.<family>`` (preset and
    overrides), or the baseline's own config keys."""
    spec = get(family)
    if spec.config_hparams is not None:
        return spec.config_hparams(config)
    section = config["models"][family]
    return resolve_hparams(family, section["preset"], section.get("params"))


def _float_text(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(float(value) == float(value))
    except ValueError:
        return False


def _compatible(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
