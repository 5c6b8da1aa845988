"""Paired cross-modality synthesis of 3D volumes with auto-context (Nie et al. 2017) beside
the constant, source-copy, linear, UNet and generator-only baselines: pairs, preparation,
loaders, whole-volume inference, auto-context levels, metrics, evaluation, figures and
apply."""

from medgen.task import MetricSpec, TaskSpec

INTENDED_USE = (
    "Research use: synthesising a missing MR/CT modality from co-registered sources to study "
    "cross-modality synthesis. Not for diagnosis or treatment planning: synthesised images "
    "can miss or invent lesions.")

TASK = TaskSpec(
    name="synthesis",
    description="paired 3D cross-modality synthesis with auto-context (Nie et al. 2017)",
    section="synthesis",
    training_data="medgen.tasks.synthesis.loaders:training_data",
    check_config="medgen.tasks.synthesis.config_checks:check_config",
    metrics=(MetricSpec("psnr", higher_is_better=True),
             MetricSpec("ssim", higher_is_better=True),
             MetricSpec("mae", higher_is_better=False)),
    training_input="synthesis/data/level1",
    apply="medgen.tasks.synthesis.apply:apply_synthesis",
    check_apply="medgen.tasks.synthesis.apply:check_new_data",
    baseline_epochs=("synthesis.evaluation.unet.max_epochs",),
    intended_use=INTENDED_USE,
)
