"""What a model family declares: its task, presets, training stages and inference loader.

Each family folder ``medgen/models/<name>/`` exports one :class:`FamilySpec` as ``FAMILY``
in its ``__init__.py``; ``medgen.registry.FAMILIES`` lists them, one line each. What the
family trains on, how it is evaluated and applied is its task's
(``medgen.tasks.<task>``, declared by a :class:`medgen.task.TaskSpec`); the trainer, the
workflow's planning and the config schema's preset choices find the rest through this spec,
so a new family of an existing task is its folder, a registry line and its schema block.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from medgen.errors import MedgenInputError


def resolve(reference: str) -> Any:
    """The object a ``"package.module:attribute"`` reference names (imported on first use:
    the registry and config validation must not pay for torch and Lightning)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Stage:
    """One training stage: a Lightning plan trained to its epoch count, then exported.

    Attributes
    ----------
    name
        Sub-folder of the training folder for this stage's checkpoints and metrics
        ('' for a one-stage family: the training folder itself).
    plan
        ``"module:Class"`` of the stage's LightningModule. The class provides
        ``build(hparams, dims, previous)`` (``dims``: the data's sizes,
        ``TrainingData.dims``; ``previous``: the state dicts the earlier stages exported)
        and ``export_state()`` -> {network name: state dict}, kept in ``model.pt``; an
        optional ``export_provenance()`` -> dict is added to ``model.pt``'s provenance
        (context_gan: which epoch was exported, ``model_selection``).
    epochs_key
        Hyperparameter holding this stage's epochs (``training.max_epochs`` overrides it
        unless the family is a baseline).
    seed_offset
        Added to the run's seed for this stage (f-AnoGAN's encoder: +1), so that stages draw
        different random numbers and a stage's result does not depend on the ones before.
    frozen_modules
        True when the plan keeps pretrained modules in eval mode on purpose (Lightning's
        warning about them is then noise).
    """

    name: str
    plan: str
    epochs_key: str = "max_epochs"
    seed_offset: int = 0
    frozen_modules: bool = False


@dataclass(frozen=True)
class FamilySpec:
    """A model family as the rest of medgen sees it.

    Attributes
    ----------
    name
        Registry name; also the ``models.<name>`` config key and the ``{family}`` wildcard.
    task
        What the family is for: a ``medgen.registry.TASKS`` name, whose spec gives the
        training data, the evaluation rules and the apply step.
    presets
        Preset name -> flat dict of hyperparameters (plain values, so checkpoints load with
        ``weights_only=True``); overrides are type-checked against them.
    stages
        Training stages in order (f-AnoGAN: the GAN, then the encoder).
    load
        ``"module:function"``; ``function(checkpoint, device)`` -> the trained model ready
        for inference (``checkpoint``: a ``medgen.checkpoint.Checkpoint``): for
        'expression' a module with ``encode``/``decode``/``gene_weights``, for 'anomaly' a
        scorer with ``score(images) -> Scores``.
    description
        One line for the config schema and ``medgen presets``; cite the paper.
    baseline
        A baseline trained in the same harness (the conv autoencoder): not a
        ``models.<name>`` config entry; its hyperparameters come from ``config_hparams``
        and ``training.max_epochs`` does not shorten it.
    config_hparams
        For baselines: ``config_hparams(config)`` -> hyperparameters from the resolved
        config.
    resources
        Scheduler resources of the training job (``mem_mb``, ``runtime`` in minutes).
    check
        ``check(hparams, key)`` raises MedgenInputError for hyperparameters that pass the
        type checks but cannot build or train (e.g. a patch too small for a discriminator),
        naming the config key (``key``: e.g. 'models.<name>.params'); called when a config
        is validated and when a plan is built, so the error comes before any job runs.
        Must not import torch (config validation stays fast).
    positive
        Hyperparameters that must be positive, refused otherwise by ``check_positive``
        before ``check``: counts and sizes (an integer >= 1, or a list of integers >= 1
        such as hidden-layer widths) and rates (a finite number > 0), by the preset's type.
        Each stage's ``epochs_key`` is added (``positive_keys``): Lightning trains 0 epochs
        silently and reads -1 as "train forever".
    limitations
        What the family cannot do whatever the data (model cards list these before what the
        model's own evaluation shows; ``medgen.model_card``).
    """

    name: str
    task: str
    presets: Mapping[str, dict[str, Any]]
    stages: tuple[Stage, ...]
    load: str
    description: str
    baseline: bool = False
    config_hparams: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    resources: Mapping[str, int] = field(
        default_factory=lambda: {"mem_mb": 8000, "runtime": 240})
    check: Callable[[dict[str, Any], str], None] | None = None
    positive: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError(f"family {self.name!r} declares no training stage")
        for preset, hparams in self.presets.items():
            for name in self.positive_keys:
                value = hparams.get(name)
                if isinstance(value, bool) or not isinstance(value, (int, float, list)):
                    raise ValueError(
                        f"family {self.name!r}: positive key {name!r} is {value!r} in preset "
                        f"{preset!r}; expected a number or a list of integers")

    @property
    def positive_keys(self) -> tuple[str, ...]:
        """``positive`` and each stage's ``epochs_key``, in that order, once each."""
        return tuple(dict.fromkeys((*self.positive, *(s.epochs_key for s in self.stages))))

    def with_epochs(self, hparams: dict[str, Any], max_epochs: int | None) -> dict[str, Any]:
        """``hparams`` with every stage's ``epochs_key`` set to ``max_epochs`` (the config's
        ``training.max_epochs``): the one place that override is made. Unchanged when
        ``max_epochs`` is None or 0, and for baselines (trained as their own settings say)."""
        if not max_epochs or self.baseline:
            return dict(hparams)
        return {**hparams, **{stage.epochs_key: max_epochs for stage in self.stages}}

    def check_positive(self, hparams: dict[str, Any], key: str) -> None:
        """Refuse a value of ``positive_keys`` that is not positive, naming ``<key>.<name>``.

        The preset's type says what is expected: for an int an integer >= 1, for a float a
        finite number > 0, for a list integers >= 1 (widths; an empty list: no hidden layer). Keys
        absent from ``hparams`` (model files written before the key existed) are skipped.

        Raises
        ------
        MedgenInputError
            ``config key '<key>.<name>' is <value>; expected an integer >= 1`` (or ``a
            finite number > 0``, ``a list of integers >= 1``).
        """
        reference = next(iter(self.presets.values()))
        for name in self.positive_keys:
            if name not in hparams:
                continue
            value, kind = hparams[name], type(reference[name])
            if kind is list:
                ok = isinstance(value, list) and all(_count(v) for v in value)
                expected = "a list of integers >= 1"
            elif kind is float:
                ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                      and 0 < value < math.inf)  # NaN fails too
                expected = "a finite number > 0"
            else:
                ok, expected = _count(value), "an integer >= 1"
            if not ok:
                raise MedgenInputError(
                    f"config key '{key}.{name}' is {value!r}; expected {expected}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
