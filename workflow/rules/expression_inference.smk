# The expression-inference task (GGAN, D-GEX beside the mean, ridge and KNN): landmark and
# target matrices once per run, every family and baseline evaluated on one split, and the
# chosen model inferring the targets of new landmark profiles.
from snakemake.exceptions import WorkflowError

INFERENCE = f"{RUN}/expression_inference"
INFERENCE_DATA = f"{RUN}/{registry.task('expression_inference').training_input}"


def inference_inputs(wildcards=None):
    """Files the landmark/target matrices are built from: the table (and its metadata and
    gene maps), or the run's preprocessed expression."""
    section = config["expression_inference"]
    if section["source"] == "expression":
        return [EXPRESSION_DATA]
    table, gene_sets = section["table"], section["gene_sets"]
    if not table["path"]:
        raise WorkflowError(
            "expression_inference.source is 'table' but expression_inference.table.path "
            "is empty; name the expression table"
        )
    paths = [table["path"]] + ([table["metadata"]] if table["metadata"] else [])
    if gene_sets["source"] == "maps":
        paths += [gene_sets["landmark_map"], gene_sets["target_map"]]
    return paths


def inference_ablations():
    """Ablations of activated families: name -> [family, hyperparameters]."""
    with refused_before_run("invalid medgen config"):
        return planning.inference_ablations(config)


def inference_model():
    """The family whose model infers new profiles (expression_inference.infer.model)."""
    with refused_before_run("invalid medgen config"):
        return planning.inference_model(config)


def inference_outputs():
    if not activated_families("expression_inference"):
        return []
    targets = [f"{INFERENCE}/eval/metrics.json"]
    if config["expression_inference"]["infer"]["path"]:
        targets.append(f"{INFERENCE}/inferred/{inference_model()}.gctx")
    return targets


TASK_OUTPUTS["expression_inference"] = inference_outputs
TASK_INPUTS["expression_inference"] = lambda: inference_inputs() + (
    [config["expression_inference"]["infer"]["path"]]
    if config["expression_inference"]["infer"]["path"]
    else []
)


rule prepare_inference_data:
    input:
        inference_inputs,
    output:
        h5ad=INFERENCE_DATA,
    log:
        f"{LOGS}/prepare_inference_data.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        section=config["expression_inference"],
        seed=config["seed"],
        expression_h5ad=EXPRESSION_DATA,
    script:
        "../scripts/prepare_inference_data.py"


rule evaluate_expression_inference:
    input:
        data=INFERENCE_DATA,
        models=lambda wildcards: expand(
            "{models}/{family}/model.pt",
            models=MODELS,
            family=activated_families("expression_inference"),
        ),
    output:
        metrics=f"{INFERENCE}/eval/metrics.json",
        table=report(
            f"{INFERENCE}/eval/metrics.tsv",
            caption="../report/inference_metrics.rst",
            category="Expression inference",
            labels={"figure": "metrics vs baselines"},
        ),
        per_gene=f"{INFERENCE}/eval/per_gene.tsv",
        distributions=report(
            f"{INFERENCE}/eval/per_gene.png",
            caption="../report/inference_per_gene.rst",
            category="Expression inference",
            labels={"figure": "per-gene MAE and r"},
        ),
        scatter=report(
            f"{INFERENCE}/eval/scatter.png",
            caption="../report/inference_scatter.rst",
            category="Expression inference",
            labels={"figure": "predicted vs measured"},
        ),
    log:
        f"{LOGS}/evaluate_expression_inference.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        families=activated_families("expression_inference"),
        hparams={f: trained_hparams(f) for f in activated_families("expression_inference")},
        ablations=inference_ablations(),
        evaluation=config["expression_inference"]["evaluation"],
        seed=config["seed"],
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/evaluate_expression_inference.py"


rule infer_targets:
    input:
        model=f"{MODELS}/{{family}}/model.pt",
        profiles=config["expression_inference"]["infer"]["path"] or [],
    output:
        gctx=f"{INFERENCE}/inferred/{{family}}.gctx",
        h5ad=f"{INFERENCE}/inferred/{{family}}.h5ad",
    log:
        f"{LOGS}/infer_targets_{{family}}.log",
    wildcard_constraints:
        family=one_of(registry.names("expression_inference")),
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        infer=config["expression_inference"]["infer"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/infer_targets.py"
