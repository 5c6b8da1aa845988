# The expression-inference task (GGAN, D-GEX beside the mean, ridge and KNN): landmark and
# target matrices once per run, every family and baseline evaluated on one split, and the
# chosen model inferring the targets of new landmark profiles.


rule prepare_expression_inference:
    input:
        expression_inference_inputs,
    output:
        h5ad=EXPRESSION_INFERENCE_DATA,
    log:
        f"{SPLIT_LOGS}/prepare_expression_inference.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # the section less families, evaluation and infer: those rerun only their own jobs
        section=expression_inference_preparation(),
        seed=run_seed,
        expression_h5ad=lambda wildcards: with_seed(EXPRESSION_DATA, wildcards),
    script:
        "../scripts/prepare_expression_inference.py"


rule evaluate_expression_inference:
    input:
        data=EXPRESSION_INFERENCE_DATA,
        models=lambda wildcards: expand(
            "{models}/{family}/model.pt",
            models=MODELS,
            family=task_families("expression_inference"),
        ),
    output:
        metrics=f"{EXPRESSION_INFERENCE}/eval/metrics.json",
        table=report(
            f"{EXPRESSION_INFERENCE}/eval/metrics.tsv",
            caption="../report/expression_inference_metrics.rst",
            category="Expression inference",
            labels={**SEED_LABEL, "figure": "metrics vs baselines"},
        ),
        per_gene=f"{EXPRESSION_INFERENCE}/eval/per_gene.tsv",
        tidy=f"{EXPRESSION_INFERENCE}/eval/metrics_tidy.tsv",
        scatter_values=f"{EXPRESSION_INFERENCE}/eval/scatter.tsv",
        distributions=report(
            f"{EXPRESSION_INFERENCE}/eval/per_gene.png",
            caption="../report/expression_inference_per_gene.rst",
            category="Expression inference",
            labels={**SEED_LABEL, "figure": "per-gene MAE and r"},
        ),
        scatter=report(
            f"{EXPRESSION_INFERENCE}/eval/scatter.png",
            caption="../report/expression_inference_scatter.rst",
            category="Expression inference",
            labels={**SEED_LABEL, "figure": "predicted vs measured"},
        ),
    log:
        f"{REPLICATE_LOGS}/evaluate_expression_inference.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        families=task_families("expression_inference"),
        hparams={f: trained_hparams(f) for f in task_families("expression_inference")},
        ablations=expression_inference_ablations(),
        evaluation=config["expression_inference"]["evaluation"],
        seed=run_seed,
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/evaluate_expression_inference.py"


rule infer_targets:
    input:
        model=f"{MODELS}/{{family}}/model.pt",
        profiles=infer_inputs(),
    output:
        gctx=f"{EXPRESSION_INFERENCE}/inferred/{{family}}.gctx",
        h5ad=f"{EXPRESSION_INFERENCE}/inferred/{{family}}.h5ad",
    log:
        f"{REPLICATE_LOGS}/infer_targets_{{family}}.log",
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
