# Evaluation against baselines on the held-out patients, with figures for the report.

EXPRESSION_EVAL = f"{RUN}/{{family}}/eval"


rule evaluate_expression:
    input:
        h5ad=f"{RUN}/data/expression.h5ad",
        model=f"{MODELS}/{{family}}/model.pt",
    output:
        metrics=f"{EXPRESSION_EVAL}/metrics.json",
        metrics_table=report(
            f"{EXPRESSION_EVAL}/metrics.tsv",
            caption="../report/expression_metrics.rst",
            category="Expression models",
            subcategory="{family}",
            labels={"model": "{family}", "figure": "metrics vs baselines"},
        ),
        latent=f"{EXPRESSION_EVAL}/latent.h5ad",
        latent_tsv=f"{EXPRESSION_EVAL}/latent.tsv",
        gene_weights=f"{EXPRESSION_EVAL}/gene_weights.tsv",
        associations=report(
            f"{EXPRESSION_EVAL}/node_associations.tsv",
            caption="../report/expression_associations.rst",
            category="Expression models",
            subcategory="{family}",
            labels={"model": "{family}", "figure": "node-label associations"},
        ),
        prior_samples=f"{EXPRESSION_EVAL}/prior_samples.tsv",
        traversal=f"{EXPRESSION_EVAL}/traversal.tsv",
        curves=report(
            f"{EXPRESSION_EVAL}/training_curves.png",
            caption="../report/expression_curves.rst",
            category="Expression models",
            subcategory="{family}",
            labels={"model": "{family}", "figure": "training curves"},
        ),
        umap=report(
            f"{EXPRESSION_EVAL}/latent_umap.png",
            caption="../report/expression_umap.rst",
            category="Expression models",
            subcategory="{family}",
            labels={"model": "{family}", "figure": "latent UMAP"},
        ),
    log:
        f"{LOGS}/evaluate_{{family}}.log",
    wildcard_constraints:
        family=one_of(registry.names("expression")),
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        evaluation=config["evaluation"],
        labels=config["expression"]["labels"],
        seed=config["seed"],
        # the family's own description, for the report's captions
        model=lambda wildcards: registry.get(wildcards.family).description,
    script:
        "../scripts/evaluate_expression.py"


rule score_anomalies:
    input:
        data=f"{IMAGING}/data",
        model=lambda wildcards: imaging_model(wildcards.method),
    output:
        scores=directory(f"{IMAGING}/scores/{{method}}"),
    log:
        f"{LOGS}/score_{{method}}.log",
    resources:
        gpu=lambda wildcards: scoring_gpus(wildcards.method),
        mem_mb=8000,
        runtime=120,
    params:
        scoring=config["imaging"]["scoring"],
        kind=config["imaging"]["kind"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/score_anomalies.py"


rule evaluate_anomaly:
    input:
        data=f"{IMAGING}/data",
        training=TRAINING_IMAGES,
        scores=expand(f"{IMAGING}/scores/{{method}}", method=imaging_methods()),
    output:
        metrics=f"{IMAGING}/report/metrics.json",
        table=report(
            f"{IMAGING}/report/metrics.tsv",
            caption="../report/anomaly_metrics.rst",
            category="Anomaly detection",
            labels={"figure": "metrics vs baselines"},
        ),
        roc=[
            report(
                f"{IMAGING}/report/roc_{split}.png",
                caption="../report/anomaly_roc.rst",
                category="Anomaly detection",
                labels={"figure": f"ROC ({split})"},
            )
            for split in evaluated_splits()
        ],
        hist=[
            report(
                f"{IMAGING}/report/hist_{split}.png",
                caption="../report/anomaly_hist.rst",
                category="Anomaly detection",
                labels={"figure": f"score histograms ({split})"},
            )
            for split in evaluated_splits()
        ],
        grids=[
            report(
                f"{IMAGING}/report/grid_{method}.png",
                caption="../report/anomaly_grid.rst",
                category="Anomaly detection",
                labels={"figure": f"{method}: inputs, reconstructions, residuals"},
            )
            for method in imaging_methods()
            if method not in TRIVIAL_SCORES
        ],
        slices_by_subject=report(
            f"{IMAGING}/report/slices_by_subject.tsv",
            caption="../report/anomaly_slices_by_subject.rst",
            category="Anomaly detection",
            labels={"figure": "slice level per subject"},
        ),
        notes=report(
            f"{IMAGING}/report/notes.txt",
            caption="../report/anomaly_notes.rst",
            category="Anomaly detection",
            labels={"figure": "notes on these numbers"},
        ),
        by_subject=(
            [
                report(
                    f"{IMAGING}/report/pixel_by_subject.tsv",
                    caption="../report/anomaly_pixel_by_subject.rst",
                    category="Anomaly detection",
                    labels={"figure": "pixel level per subject"},
                )
            ]
            if config["imaging"]["evaluation"]["pixel_level"]
            else []
        ),
    log:
        f"{LOGS}/evaluate_anomaly.log",
    params:
        methods=imaging_methods(),
        imaging=config["imaging"],
        seed=config["seed"],
    script:
        "../scripts/evaluate_anomaly.py"


rule apply_model:
    input:
        apply_inputs,
    output:
        directory(APPLY),
    log:
        f"{LOGS}/apply_model.log",
    resources:
        gpu=min(gpus_requested(), 1),
        mem_mb=8000,
        runtime=120,
    params:
        model=config["apply"]["model"],
        expression=config["expression"],
        imaging=config["imaging"],
        synthesis=config["synthesis"],
        seed=config["seed"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/apply_model.py"


rule evaluate_expression_inference:
    input:
        data=TRAINING_DATA["expression_inference"],
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
