"""Expression inference, landmark genes -> target genes (GGAN, Wang et al. 2018; D-GEX, Chen
et al. 2016) beside the mean, ridge and KNN: gene sets, the landmark/target data, loaders,
evaluation with cross-validation, figures and inference of new profiles (GCTX)."""

from medgen.task import MetricSpec, TaskSpec

INTENDED_USE = (
    "Research use: inferring target-gene expression from measured landmark genes (the L1000 "
    "setting) for cohorts measured on the same platform and scale as the training data: "
    "only the training target genes, from exactly its landmark genes. Inferred values are "
    "estimates, not measurements; targets poorly predicted in evaluation "
    "(eval/per_gene.tsv) stay poor.")
HOW_TO_APPLY = """\
Name the new landmark profiles in the dataset config the model was trained with and rerun:
only the inference job runs.

```yaml
expression_inference:
  infer: {{path: new_profiles.gctx}}   # README, "Expression inference from landmark genes"
```

The profiles must carry the model's landmark genes on the training data's scale
(`input_scale` checks it); the model file: `{model}`."""
TASK = TaskSpec(
    name="expression_inference",
    description="landmark -> target gene inference (Wang et al. 2018; Chen et al. 2016)",
    section="expression_inference",
    training_data="medgen.tasks.expression_inference.loaders:training_data",
    metrics=(MetricSpec("mae", higher_is_better=False),
             MetricSpec("median_pearson", higher_is_better=True, unit="pearson")),
    training_input="expression_inference/data.h5ad",
    intended_use=INTENDED_USE,
    how_to_apply=HOW_TO_APPLY,
)
