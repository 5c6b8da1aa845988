# Model training: one rule for every registered family; its task's TaskSpec names the
# training data (a synthesis family trains per auto-context level: rules/synthesis.smk).


rule train_model:
    input:
        data=training_data,
    output:
        model=f"{MODELS}/{{family}}/model.pt",
    log:
        f"{REPLICATE_LOGS}/train_{{family}}.log",
    wildcard_constraints:
        family=one_of(registry.names()),
    # CPU results depend on the thread count: the rule reserves what torch will use
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        gpu=gpus_requested(),
        mem_mb=lambda wildcards: training_resources(wildcards.family)["mem_mb"],
        runtime=lambda wildcards: training_resources(wildcards.family)["runtime"],
    params:
        hparams=lambda wildcards: family_hparams(wildcards.family),
        training=lambda wildcards: training_settings(wildcards.family),
        seed=run_seed,
    script:
        "../scripts/train_model.py"
