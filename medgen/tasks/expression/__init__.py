"""Latent spaces of expression profiles (Tybalt VAE, Way & Greene 2018) beside PCA, ICA and
NMF: preprocessing is ``medgen.data.expression`` (shared with expression inference); here
the loaders, baselines, metrics (latent structure, associations, reconstruction),
evaluation, figures and apply step."""

from medgen.task import SYNTHETIC_DATA_METRICS, MetricSpec, TaskSpec

INTENDED_USE = (
    "Research use: a low-dimensional latent space of expression profiles for exploration "
    "(clusters, node-label associations, generated profiles) beside PCA/ICA/NMF. Not for "
    "classifying individual patients.")

# families whose trained model decodes profiles from its prior: the synthetic-data
# evaluation samples them (medgen.tasks.expression.synthetic)
GENERATIVE_FAMILIES = ("tybalt",)

TASK = TaskSpec(
    name="expression",
    description="latent spaces of expression profiles (Way & Greene 2018) beside PCA/ICA/NMF",
    section="expression",
    training_data="medgen.tasks.expression.loaders:training_data",
    metrics=(MetricSpec("test_mse", higher_is_better=False),
             MetricSpec("test_bce_above_floor", higher_is_better=False),
             MetricSpec("knn_balanced_accuracy_*", higher_is_better=True),
             # Tybalt's generated profiles (medgen.tasks.expression.synthetic), when evaluated
             *SYNTHETIC_DATA_METRICS),
    training_input="data/expression.h5ad",
    apply="medgen.tasks.expression.apply:apply_expression",
    check_apply="medgen.tasks.expression.apply:check_new_data",
    intended_use=INTENDED_USE,
)
