# Model training: one rule per family, each declaring what a cluster profile maps to sbatch.


rule train_tybalt:
    input:
        h5ad=f"{RUN}/data/expression.h5ad",
    output:
        model=f"{RUN}/tybalt/train/model.pt",
        metrics=f"{RUN}/tybalt/train/metrics.csv",
    log:
        f"{LOGS}/train_tybalt.log",
    threads: 2
    resources:
        gpu=gpus_requested(),
        mem_mb=8000,
        runtime=120,
    params:
        hparams=model_hparams("tybalt") if is_activated("models.tybalt") else {},
        training=training_settings(),
        seed=config["seed"],
    script:
        "../scripts/train_tybalt.py"


rule train_anomaly_model:
    input:
        data=f"{IMAGING}/data",
    output:
        model=f"{IMAGING}/models/{{family}}/model.pt",
    log:
        f"{LOGS}/train_{{family}}.log",
    wildcard_constraints:
        family="anogan|fanogan|convae",
    threads: 2
    resources:
        gpu=gpus_requested(),
        mem_mb=8000,
        runtime=240,
    params:
        hparams=lambda wildcards: anomaly_hparams(wildcards.family),
        training=lambda wildcards: training_settings(wildcards.family),
        seed=config["seed"],
    script:
        "../scripts/train_anomaly_model.py"


rule fit_pca_baseline:
    input:
        data=f"{IMAGING}/data",
    output:
        model=f"{IMAGING}/models/pca.npz",
    log:
        f"{LOGS}/fit_pca_baseline.log",
    params:
        components=config["imaging"]["evaluation"]["pca_components"],
    script:
        "../scripts/fit_pca_baseline.py"
