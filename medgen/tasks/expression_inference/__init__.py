"""Expression inference, landmark genes -> target genes (GGAN, Wang et al. 2018; D-GEX, Chen
et al. 2016) beside the mean, ridge and KNN: gene sets, the landmark/target data, loaders,
evaluation with cross-validation, figures and inference of new profiles (GCTX)."""

from medgen.task import MetricSpec, TaskSpec

TASK = TaskSpec(
    name="expression_inference",
    description="landmark -> target gene inference (Wang et al. 2018; Chen et al. 2016)",
    section="expression_inference",
    training_data="medgen.tasks.expression_inference.loaders:training_data",
    metrics=(MetricSpec("mae", higher_is_better=False),
             MetricSpec("median_pearson", higher_is_better=True, unit="pearson")),
    training_input="expression_inference/data.h5ad",
)
