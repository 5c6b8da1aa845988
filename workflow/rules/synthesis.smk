# The synthesis task: prepare the paired volumes once, train each auto-context level of
# each family as its own job (level k reads level k-1's whole-volume output), then
# evaluate every level beside the baselines on the test and validation subjects, and draw
# the report's figures from the written tables.


rule prepare_synthesis:
    input:
        synthesis_files,
    output:
        data=directory(SYNTHESIS_DATA),
    log:
        f"{LOGS}/prepare_synthesis.log",
    params:
        settings=preparation_settings(),
    script:
        "../scripts/prepare_synthesis.py"


rule train_synthesis_level:
    input:
        data=lambda wildcards: synthesis_level_data(wildcards.family, wildcards.level),
    output:
        model=f"{MODELS}/{{family}}/level{{level}}/model.pt",
    log:
        f"{REPLICATE_LOGS}/train_{{family}}_level{{level}}.log",
    wildcard_constraints:
        family=one_of(registry.names("synthesis")),
        level=r"\d+",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        gpu=gpus_requested(),
        mem_mb=lambda wildcards: training_resources(wildcards.family)["mem_mb"],
        runtime=lambda wildcards: training_resources(wildcards.family)["runtime"],
    params:
        hparams=lambda wildcards: trained_hparams(wildcards.family),
        training=lambda wildcards: training_settings(wildcards.family),
        seed=run_seed,
    script:
        "../scripts/train_model.py"


rule synthesis_context:
    input:
        data=lambda wildcards: synthesis_level_data(wildcards.family, int(wildcards.level) - 1),
        model=lambda wildcards: f"{MODELS}/{wildcards.family}/level{int(wildcards.level) - 1}/model.pt",
    output:
        data=directory(f"{SYNTHESIS}/{{family}}/data/level{{level}}"),
    log:
        f"{REPLICATE_LOGS}/synthesis_context_{{family}}_level{{level}}.log",
    wildcard_constraints:
        family=one_of(registry.names("synthesis")),
        level=r"[2-9]|\d\d+",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        gpu=min(gpus_requested(), 1),
    params:
        inference=config["synthesis"]["inference"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/synthesis_context.py"


rule evaluate_synthesis:
    input:
        data=SYNTHESIS_DATA,
        models=lambda wildcards: [
            model
            for family in task_families("synthesis")
            for model in synthesis_level_models(family)
        ],
    output:
        metrics=f"{SYNTHESIS}/eval/metrics.json",
        table=f"{SYNTHESIS}/eval/metrics.tsv",
        tidy=f"{SYNTHESIS}/eval/metrics_tidy.tsv",
    log:
        f"{REPLICATE_LOGS}/evaluate_synthesis.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        gpu=min(gpus_requested(), 1),
    params:
        models=lambda wildcards: with_seed(synthesis_models(), wildcards),
        evaluation=config["synthesis"]["evaluation"],
        inference=config["synthesis"]["inference"],
        generator=planning.generator_l1_hparams(config),
        seed=run_seed,
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/evaluate_synthesis.py"


rule synthesis_report:
    input:
        metrics=f"{SYNTHESIS}/eval/metrics.tsv",
        data=SYNTHESIS_DATA,
        models=lambda wildcards: [
            model for models in synthesis_models().values() for model in models
        ],
    output:
        table=report(
            f"{SYNTHESIS}/report/metrics.tsv",
            caption="../report/synthesis_metrics.rst",
            category="Image synthesis",
            labels={**SEED_LABEL, "figure": "metrics per subject"},
        ),
        slices=[
            report(
                f"{SYNTHESIS}/report/slices_{subject}.png",
                caption="../report/synthesis_slices.rst",
                category="Image synthesis",
                labels={**SEED_LABEL, "figure": f"mid-slices: {subject}"},
            )
            for subject in synthesis_report_subjects()
        ],
        curves=report(
            f"{SYNTHESIS}/report/training_curves.png",
            caption="../report/synthesis_curves.rst",
            category="Image synthesis",
            labels={**SEED_LABEL, "figure": "training curves"},
        ),
    log:
        f"{REPLICATE_LOGS}/synthesis_report.log",
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        models=lambda wildcards: with_seed(synthesis_models(), wildcards),
        subjects=synthesis_report_subjects(),
        seed=run_seed,
    script:
        "../scripts/synthesis_report.py"
