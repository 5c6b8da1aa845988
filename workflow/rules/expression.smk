# The expression task (Tybalt beside PCA/ICA/NMF): obtain the tables (syng-bts wheel, a URL
# or local files), preprocess them once per run, evaluate each trained family.


if config["expression"]["source"] == "syng_bts":

    rule fetch_syng_bts:
        output:
            tables=expand(
                "{folder}/{table}.parquet",
                folder=syng_bts_dir(),
                table=config["expression"]["syng_bts"]["tables"],
            ),
        log:
            f"{CACHE}/logs/fetch_syng_bts.log",
        params:
            syng_bts=config["expression"]["syng_bts"],
            # the cache root: tables land in <cache>/syng_bts-<version>/
            cache_dir=lambda wildcards, output: str(Path(output.tables[0]).parent.parent),
        script:
            "../scripts/fetch_syng_bts.py"

    # Checks the cached tables inside a job (never while the DAG is built, so -n, --lint and
    # --report hash and delete nothing): a table changed since the last check is newer than
    # this rule's output, so the job reruns, finds the mismatch and rebuilds the table.
    rule verify_syng_bts:
        input:
            tables=rules.fetch_syng_bts.output.tables,
        output:
            checksums=syng_bts_checksums(),
        log:
            f"{LOGS}/verify_syng_bts.log",
        params:
            syng_bts=config["expression"]["syng_bts"],
            cache_dir=lambda wildcards, input: str(Path(input.tables[0]).parent.parent),
        script:
            "../scripts/fetch_syng_bts.py"


if config["expression"]["source"] == "url":

    rule fetch_url:
        output:
            table=url_download_path(),
        log:
            f"{CACHE}/logs/fetch_url.log",
        params:
            url=config["expression"]["url"],
        script:
            "../scripts/fetch_url.py"


rule preprocess_expression:
    input:
        tables=expression_inputs,
        verified=verified_expression_inputs(),
    output:
        h5ad=EXPRESSION_DATA,
        split=f"{RUN}/{SPLIT}data/split_manifest.tsv",
    log:
        f"{SPLIT_LOGS}/preprocess_expression.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        expression=config["expression"],
        tables=expression_table_specs(),
        seed=run_seed,
    script:
        "../scripts/preprocess_expression.py"


# Training units and evaluation data are separate outputs: a subject added to the val or
# test split of the sample sheet reruns only the evaluation side, never training.


EXPRESSION_EVAL = f"{RUN}/{REPLICATE}{{family}}/eval"


rule evaluate_expression:
    input:
        h5ad=EXPRESSION_DATA,
        model=f"{MODELS}/{{family}}/model.pt",
    output:
        metrics=f"{EXPRESSION_EVAL}/metrics.json",
        metrics_table=report(
            f"{EXPRESSION_EVAL}/metrics.tsv",
            caption="../report/expression_metrics.rst",
            category="Expression models",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "metrics vs baselines"},
        ),
        tidy=f"{EXPRESSION_EVAL}/metrics_tidy.tsv",
        latent=f"{EXPRESSION_EVAL}/latent.h5ad",
        latent_tsv=f"{EXPRESSION_EVAL}/latent.tsv",
        gene_weights=f"{EXPRESSION_EVAL}/gene_weights.tsv",
        associations=report(
            f"{EXPRESSION_EVAL}/node_associations.tsv",
            caption="../report/expression_associations.rst",
            category="Expression models",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "node-label associations"},
        ),
        prior_samples=f"{EXPRESSION_EVAL}/prior_samples.tsv",
        traversal=f"{EXPRESSION_EVAL}/traversal.tsv",
        curves=report(
            f"{EXPRESSION_EVAL}/training_curves.png",
            caption="../report/expression_curves.rst",
            category="Expression models",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "training curves"},
        ),
        umap=report(
            f"{EXPRESSION_EVAL}/latent_umap.png",
            caption="../report/expression_umap.rst",
            category="Expression models",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "latent UMAP"},
        ),
    log:
        f"{REPLICATE_LOGS}/evaluate_{{family}}.log",
    wildcard_constraints:
        family=one_of(registry.names("expression")),
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # without the synthetic section: its settings rerun only its own job
        evaluation={
            key: value
            for key, value in config["expression"]["evaluation"].items()
            if key != "synthetic"
        },
        labels=config["expression"]["labels"],
        seed=run_seed,
        # the family's own description, for the report's captions
        model=lambda wildcards: registry.get(wildcards.family).description,
    script:
        "../scripts/evaluate_expression.py"


SYNTHETIC_EVAL = f"{EXPRESSION_EVAL}/synthetic"


# Profiles decoded from the model's prior beside simple generators fitted on the training
# split, scored against the test split (expression.evaluation.synthetic).
rule evaluate_synthetic_expression:
    input:
        h5ad=EXPRESSION_DATA,
        model=f"{MODELS}/{{family}}/model.pt",
    output:
        metrics=report(
            f"{SYNTHETIC_EVAL}/metrics.tsv",
            caption="../report/expression_synthetic_metrics.rst",
            category="Expression models",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "synthetic data metrics"},
        ),
        tidy=f"{SYNTHETIC_EVAL}/metrics_tidy.tsv",
        samples=f"{SYNTHETIC_EVAL}/synthetic.h5ad",
        posterior_samples=f"{SYNTHETIC_EVAL}/synthetic_aggregate_posterior.h5ad",
        pca=report(
            f"{SYNTHETIC_EVAL}/pca.png",
            caption="../report/expression_synthetic_pca.rst",
            category="Expression models",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "synthetic vs real: PCA"},
        ),
        moments=report(
            f"{SYNTHETIC_EVAL}/gene_moments.png",
            caption="../report/expression_synthetic_moments.rst",
            category="Expression models",
            subcategory="{family}",
            labels={
                **SEED_LABEL,
                "model": "{family}",
                "figure": "synthetic vs real: gene means and variances",
            },
        ),
        correlations=report(
            f"{SYNTHETIC_EVAL}/correlation_difference.png",
            caption="../report/expression_synthetic_correlations.rst",
            category="Expression models",
            subcategory="{family}",
            labels={
                **SEED_LABEL,
                "model": "{family}",
                "figure": "synthetic vs real: correlation difference",
            },
        ),
        augmentation=report(
            f"{SYNTHETIC_EVAL}/augmentation.png",
            caption="../report/expression_synthetic_augmentation.rst",
            category="Expression models",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "augmentation curve"},
        ),
    log:
        f"{REPLICATE_LOGS}/evaluate_synthetic_{{family}}.log",
    wildcard_constraints:
        family=one_of(GENERATIVE_FAMILIES),
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        synthetic=config["expression"]["evaluation"]["synthetic"],
        labels=config["expression"]["labels"],
        seed=run_seed,
    script:
        "../scripts/evaluate_synthetic_expression.py"
