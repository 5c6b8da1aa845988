# Model training: one rule per family, each declaring what a cluster profile maps to sbatch.


rule train_tybalt:
    input:
        h5ad=f"{RUN}/data/expression.h5ad",
    output:
        model=f"{RUN}/tybalt/train/model.pt",
        metrics=f"{RUN}/tybalt/train/metrics.csv",
    log:
        f"{LOGS}/train_tybalt.log",
    params:
        hparams=model_hparams("tybalt") if is_activated("models.tybalt") else {},
        training=config["training"],
        seed=config["seed"],
    threads: 2
    resources:
        gpu=gpus_requested(),
        mem_mb=8000,
        runtime=120,
    script:
        "../scripts/train_tybalt.py"
