# Image synthesis (models.context_gan): prepare the paired volumes once, train each
# auto-context stage as its own job (stage k reads stage k-1's whole-volume output), then
# evaluate every stage beside the baselines on the test and validation subjects.


rule prepare_synthesis:
    input:
        synthesis_files,
    output:
        data=directory(f"{SYNTHESIS}/data/stage1"),
    log:
        f"{LOGS}/prepare_synthesis.log",
    params:
        settings=preparation_settings(),
    script:
        "../scripts/prepare_synthesis.py"


rule train_synthesis_stage:
    input:
        data=lambda wildcards: synthesis_stage_data(wildcards.family, wildcards.stage),
    output:
        model=f"{MODELS}/{{family}}/stage{{stage}}/model.pt",
    log:
        f"{LOGS}/train_{{family}}_stage{{stage}}.log",
    wildcard_constraints:
        family=one_of(registry.names("synthesis")),
        stage=r"\d+",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        gpu=gpus_requested(),
        mem_mb=lambda wildcards: training_resources(wildcards.family)["mem_mb"],
        runtime=lambda wildcards: training_resources(wildcards.family)["runtime"],
    params:
        hparams=lambda wildcards: trained_hparams(wildcards.family),
        training=lambda wildcards: training_settings(wildcards.family),
        seed=config["seed"],
    script:
        "../scripts/train_model.py"


rule synthesis_context:
    input:
        data=lambda wildcards: synthesis_stage_data(wildcards.family, int(wildcards.stage) - 1),
        model=lambda wildcards: f"{MODELS}/{wildcards.family}/stage{int(wildcards.stage) - 1}/model.pt",
    output:
        data=directory(f"{SYNTHESIS}/{{family}}/data/stage{{stage}}"),
    log:
        f"{LOGS}/synthesis_context_{{family}}_stage{{stage}}.log",
    wildcard_constraints:
        family=one_of(registry.names("synthesis")),
        stage=r"[2-9]|\d\d+",
    resources:
        gpu=min(gpus_requested(), 1),
    params:
        inference=config["synthesis"]["inference"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/synthesis_context.py"


rule evaluate_synthesis:
    input:
        data=f"{SYNTHESIS}/data/stage1",
        models=lambda wildcards: [
            model
            for family in activated_families("synthesis")
            for model in synthesis_stage_models(family)
        ],
    output:
        metrics=f"{SYNTHESIS}/eval/metrics.json",
        table=f"{SYNTHESIS}/eval/metrics.tsv",
    log:
        f"{LOGS}/evaluate_synthesis.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        gpu=min(gpus_requested(), 1),
    params:
        models=(
            {family: synthesis_stage_models(family) for family in activated_families("synthesis")}
            if is_activated("synthesis")
            else {}
        ),
        evaluation=config["synthesis"]["evaluation"],
        inference=config["synthesis"]["inference"],
        generator=generator_l1_hparams(),
        seed=config["seed"],
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/evaluate_synthesis.py"
