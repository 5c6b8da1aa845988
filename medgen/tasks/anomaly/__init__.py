"""Unsupervised anomaly detection in images (AnoGAN, f-AnoGAN; Schlegl et al. 2017, 2019)
beside the conv autoencoder, PCA and trivial scores: image preparation (slices, patches,
the MNI152 demo, synthetic anomalies), scoring, metrics, evaluation, figures and apply."""

from medgen.task import SYNTHETIC_DATA_METRICS, MetricSpec, TaskSpec

# families whose trained model holds a generator of images from z ~ N(0, I): the
# synthetic-image evaluation samples them (medgen.tasks.anomaly.synthetic)
GENERATIVE_FAMILIES = ("anogan", "fanogan")

INTENDED_USE = (
    "Research use: ranking images, slices and pixels by how unlike the training normals they "
    "are, to study unsupervised anomaly detection. Not a diagnostic device: its operating "
    "points are calibrated on a few validation subjects and it has not been validated "
    "clinically.")

TASK = TaskSpec(
    name="anomaly",
    description="unsupervised anomaly detection in images (Schlegl et al. 2017, 2019)",
    section="anomaly",
    training_data="medgen.tasks.anomaly.loaders:training_data",
    check_config="medgen.tasks.anomaly.config_checks:check_config",
    metrics=(MetricSpec("auroc", higher_is_better=True),
             MetricSpec("auprc", higher_is_better=True),
             MetricSpec("pixel_auprc", higher_is_better=True),
             MetricSpec("dice_at_val_threshold", higher_is_better=True),
             # the generators' samples (medgen.tasks.anomaly.synthetic), when evaluated
             *SYNTHETIC_DATA_METRICS),
    training_input="anomaly/training",
    apply="medgen.tasks.anomaly.apply:apply_anomaly",
    check_apply="medgen.tasks.anomaly.apply:check_new_data",
    baseline_epochs=("anomaly.evaluation.convae_epochs",),
    intended_use=INTENDED_USE,
)
