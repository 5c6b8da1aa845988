"""Latent spaces of expression profiles (Tybalt VAE, Way & Greene 2018) beside PCA, ICA and
NMF: preprocessing is ``medgen.data.expression`` (shared with expression inference); here
the loaders, baselines, metrics (latent structure, associations, reconstruction),
evaluation, figures and apply step."""

from medgen.task import TaskSpec

TASK = TaskSpec(
    name="expression",
    description="latent spaces of expression profiles (Way & Greene 2018) beside PCA/ICA/NMF",
    section="expression",
    training_data="medgen.tasks.expression.loaders:training_data",
    training_input="data/expression.h5ad",
    apply="medgen.tasks.expression.apply:apply_expression",
    check_apply="medgen.tasks.expression.apply:check_new_data",
)
