# Evaluation against baselines on the held-out patients, with figures for the report.

TYBALT_EVAL = f"{RUN}/tybalt/eval"


rule evaluate_tybalt:
    input:
        h5ad=f"{RUN}/data/expression.h5ad",
        model=f"{RUN}/tybalt/train/model.pt",
        train_metrics=f"{RUN}/tybalt/train/metrics.csv",
    output:
        metrics=f"{TYBALT_EVAL}/metrics.json",
        metrics_table=report(
            f"{TYBALT_EVAL}/metrics.tsv",
            caption="../report/tybalt_metrics.rst",
            category="Tybalt VAE",
            labels={"figure": "metrics vs baselines"},
        ),
        latent=f"{TYBALT_EVAL}/latent.h5ad",
        latent_tsv=f"{TYBALT_EVAL}/latent.tsv",
        gene_weights=f"{TYBALT_EVAL}/gene_weights.tsv",
        associations=report(
            f"{TYBALT_EVAL}/node_associations.tsv",
            caption="../report/tybalt_associations.rst",
            category="Tybalt VAE",
            labels={"figure": "node-label associations"},
        ),
        prior_samples=f"{TYBALT_EVAL}/prior_samples.tsv",
        traversal=f"{TYBALT_EVAL}/traversal.tsv",
        curves=report(
            f"{TYBALT_EVAL}/training_curves.png",
            caption="../report/tybalt_curves.rst",
            category="Tybalt VAE",
            labels={"figure": "training curves"},
        ),
        umap=report(
            f"{TYBALT_EVAL}/latent_umap.png",
            caption="../report/tybalt_umap.rst",
            category="Tybalt VAE",
            labels={"figure": "latent UMAP"},
        ),
    log:
        f"{LOGS}/evaluate_tybalt.log",
    params:
        evaluation=config["evaluation"],
        labels=config["expression"]["labels"],
        seed=config["seed"],
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/evaluate_tybalt.py"
