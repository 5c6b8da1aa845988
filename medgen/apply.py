"""Apply a trained model to new data (as scvi-tools maps query data onto a trained model, or
a MONAI bundle runs inference): the model's own preprocessing settings, inference, and an
evaluation when the new data carry labels. Nothing is trained. Each task's own apply step
(``TaskSpec.apply``, in ``medgen/tasks/<task>/apply.py``) does the work:

- expression: the new tables are normalised as in training and reduced to the model's genes
  with its stored scaling ranges; outputs: latent means, per-sample reconstruction error,
  reconstruction metrics and, for each label, node-label associations.
- anomaly: the new sample sheet's images are prepared with the model's imaging settings
  (all of them as evaluation data); outputs: per-image scores and residual maps, and the
  image-level (and, with masks, pixel-level) metrics when both classes are present.
- synthesis: the auto-context cascade that ``apply.model`` ends (level K's model.pt, or the
  family folder; ``medgen.tasks.synthesis.cascade``) runs on the ``synthesis`` sample
  sheet's subjects, prepared with the model's normalisation (measured per subject, as the
  method defines); outputs: one NIfTI per subject and auto-context level in the source grid
  and, for subjects with a target, the evaluation's metrics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medgen import checkpoint, registry
from medgen.errors import MedgenInputError
from medgen.family import resolve
from medgen.synthetic_output import SAMPLING_SECTIONS, sampling_requested

APPLY_DIR = "apply"


def model_task(model_path: str | os.PathLike) -> str:
    """The task of the family that wrote ``model_path`` (MedgenInputError if unreadable);
    a folder of ``level<k>/model.pt`` is a synthesis cascade."""
    from medgen.tasks.synthesis.cascade import last_level

    return registry.get(checkpoint.load(last_level(model_path)).family).task


def check_apply_config(config: dict[str, Any]) -> str:
    """The task of ``apply.model``, once the config names new data that fit it.

    Raises MedgenInputError (naming the key) when the model cannot be read, when its task
    cannot be applied, when its task is not in ``tasks`` (its section,
    ``TaskSpec.section``, would name the default config's demo or training data rather than
    new data), or when the task's own check (``TaskSpec.check_apply``) refuses the new data.
    """
    model = config["apply"]["model"]
    if not model:
        raise MedgenInputError("config key 'apply.model' is empty; give the path of a model.pt")
    task = model_task(model)
    spec = registry.task(task)
    for section in SAMPLING_SECTIONS:
        if sampling_requested(config, section) and section != spec.section:
            raise MedgenInputError(
                f"config key '{section}.sampling.n_samples' is set, but apply.model ({model}) "
                f"is a model of task {task!r}: sampling takes a model of that section's task")
    if spec.apply is None:
        raise MedgenInputError(f"{model}: applying a model of task {task!r} is not supported "
                               "yet")
    if task not in config["tasks"]:
        raise MedgenInputError(
            f"config key 'tasks' is {config['tasks']}, but apply.model ({model}) is a "
            f"model of task {task!r}, whose new data (or sampling) come from the "
            f"'{spec.section}' section: list {task} in tasks and name the new data there"
        )
    if spec.check_apply is not None:
        resolve(spec.check_apply)(config, model)
    return task


def apply_model(model_path: str | os.PathLike, config: dict[str, Any],
                out_dir: str | os.PathLike, device: str = "cpu") -> Path:
    """Run a trained ``model.pt`` on the new data that ``config`` names; returns the
    metrics (or, without labels, the scores) file written under ``out_dir``.

    Parameters
    ----------
    model_path
        A medgen ``model.pt`` of any registered family; for a synthesis cascade the last
        level's (earlier levels in the sibling ``level<k>`` folders) or the family folder.
    config
        The resolved config of this run: its ``expression`` (tables, metadata, labels),
        ``anomaly`` (sample_sheet, data_root) or ``synthesis`` (sample_sheet, data_root,
        mask, inference) section names the new data; preprocessing settings come from the
        model's own stored config.
    out_dir
        Output folder (``data/``, then the task's outputs).
    device
        Where networks run ('cpu', 'cuda').

    Raises
    ------
    MedgenInputError
        Unreadable model, new data that do not fit it (other genes, channels), or a model
        whose checkpoint lacks the settings needed to prepare new data.
    """
    task = check_apply_config({**config, "apply": {"model": str(model_path)}})
    return resolve(registry.task(task).apply)(model_path, config, Path(out_dir), device)
