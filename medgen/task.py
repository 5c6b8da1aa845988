"""What a task declares: its config section, training data, training input and apply step.

A task is what a group of model families is for (a latent space of expression profiles,
anomaly detection, image synthesis, expression inference). Each task folder
``medgen/tasks/<name>/`` holds the task's data preparation and loaders, inference,
baselines, metrics, output writers, figures and apply step, one module each, and exports
one :class:`TaskSpec` as ``TASK`` in its ``__init__.py``; ``medgen.registry.TASKS`` lists
the tasks, one line each. The trainer, ``medgen apply`` and the workflow's planning find
what is task-specific through the spec. References are ``"package.module:attribute"``
strings, imported on first use (resolved by ``medgen.family.resolve``), so that planning a
run and validating a config never import torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """A metric of a task's tidy table that replicates are compared on.

    Attributes
    ----------
    name
        The metric as the tidy table names it (whole-split rows, unit 'all'; where the task
        writes none, the replicate value is the mean of ``unit_metric`` over units).
    higher_is_better
        Direction of "better" (AUROC, PSNR: True; MAE: False).
    unit
        The same measurement per unit (subject, slice, gene, sample) when its name differs
        (a median per-gene r over genes is ``pearson`` per gene); None: ``name``.
    """

    name: str
    higher_is_better: bool
    unit: str | None = None

    @property
    def unit_metric(self) -> str:
        return self.unit or self.name


# The shared synthetic-data evaluation's metrics (``medgen.evaluate.synthetic``) that
# replicates compare, for tasks whose generators it scores (expression, anomaly). A
# two-sample or membership AUROC is best at chance, so it is compared as its distance from
# 0.5 (the ``*_excess`` rows of ``medgen.evaluate.synthetic.tidy_table``).
SYNTHETIC_DATA_METRICS = (
    MetricSpec("c2st_auroc_excess", higher_is_better=False),
    MetricSpec("mmd2", higher_is_better=False),
    MetricSpec("wasserstein_mean", higher_is_better=False),
    MetricSpec("corr_frobenius", higher_is_better=False),
    MetricSpec("precision", higher_is_better=True),
    MetricSpec("coverage", higher_is_better=True),
    MetricSpec("tstr_balanced_accuracy", higher_is_better=True),
    MetricSpec("membership_auroc_excess", higher_is_better=False),
)


# how a task with an apply step (TaskSpec.apply) is applied, for model cards
APPLY_HOWTO = """\
A config names the model and the new data (the task's section, `{section}`), layered on the
dataset config the model was trained with:

```yaml
run_name: my_new_data
apply: {{activate: true, model: {model}}}
{section}: ...   # the new data: README, "Apply a trained model to new data"
```

then `snakemake --cores 2 --configfile config/datasets/<dataset>.yaml apply.yaml`
(`medgen validate` checks the pair first). The new data are preprocessed with the model's
stored settings."""


@dataclass(frozen=True)
class TaskSpec:
    """A task as the rest of medgen sees it.

    Attributes
    ----------
    name
        Registry name; also the ``task`` of its families (``FamilySpec.task``) and the name of
        its rule file (``workflow/rules/<name>.smk``).
    description
        One line for ``medgen presets`` and the docs; cite the paper the task comes from.
    section
        The config section that names the task's data (and, in apply mode, the new data).
    training_data
        ``"module:function"``; ``function(data_path, hparams, seed, family)`` ->
        ``medgen.data.training_data.TrainingData``: the loaders every family of the task
        trains on.
    training_input
        Where the workflow writes the prepared training data, relative to the run folder
        (``results/<run_name>/``): the training rule's input.
    apply
        ``"module:function"``; ``function(model_path, config, out_dir, device)`` -> Path of
        the metrics (or outputs) file: a trained model run on new data. None: not supported.
    check_config
        ``"module:function"``; ``function(config)`` raises MedgenInputError for values of the
        resolved config that the schema cannot check and only this task knows (e.g. image
        sides its networks take); called by ``medgen.config.validate`` for every registered
        task, so it must stay torch-free and decide itself whether the task is listed.
        None: the schema is enough.
    metrics
        The metrics replicates are compared on (``medgen.evaluate.replicates``), the headline
        first (the critical-difference diagram's); others in the tidy table are summarised
        without a verdict.
    check_apply
        ``"module:function"``; ``function(config, model_path)`` raises MedgenInputError when
        the config's ``section`` does not name new data the model can be applied to (called
        when a run is planned, before any job). None: nothing beyond the generic checks.
    baseline_epochs
        Dotted config keys holding the epochs of the task's trained baselines (e.g.
        ``"anomaly.evaluation.convae_epochs"``): a study budget's ``max_epochs`` caps them as
        ``training.max_epochs`` caps the families (``medgen.studies.budget_override``), so
        that a cut budget never pits 2-epoch models against fully trained baselines.
    intended_use
        What the task's models are for and not for, as a model card states it
        (``medgen.model_card``).
    how_to_apply
        Markdown telling a user how to apply a trained model (``{model}``: its path,
        ``{section}``: the task's config section); empty: ``APPLY_HOWTO`` when the task has
        an ``apply`` step.
    compared_as_models
        Methods of the task's tidy tables that are not trained families but are compared
        with the baselines as models over replicates (sequence design's optimisers against
        random and best measured sequences); trained families always are.
    """

    name: str
    description: str
    section: str
    training_data: str
    training_input: str
    check_config: str | None = None
    metrics: tuple[MetricSpec, ...] = ()
    apply: str | None = None
    check_apply: str | None = None
    baseline_epochs: tuple[str, ...] = ()
    intended_use: str = ""
    how_to_apply: str = ""
    compared_as_models: tuple[str, ...] = ()
