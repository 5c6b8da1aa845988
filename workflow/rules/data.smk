# Obtaining and preprocessing input data.

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
        h5ad=f"{RUN}/data/expression.h5ad",
        split=f"{RUN}/data/split_manifest.tsv",
    log:
        f"{LOGS}/preprocess_expression.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        expression=config["expression"],
        tables=expression_table_specs(),
        seed=config["seed"],
    script:
        "../scripts/preprocess_expression.py"


# Training units and evaluation data are separate outputs: a subject added to the val or
# test split of the sample sheet reruns only the evaluation side, never training.
rule prepare_inference_data:
    input:
        inference_inputs,
    output:
        h5ad=TRAINING_DATA["expression_inference"],
    log:
        f"{LOGS}/prepare_inference_data.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        section=config["expression_inference"],
        seed=config["seed"],
        expression_h5ad=TRAINING_DATA["expression"],
    script:
        "../scripts/prepare_inference_data.py"


rule prepare_training_images:
    input:
        lambda wildcards: image_files(TRAINING_SPLITS),
    output:
        data=directory(TRAINING_IMAGES),
    log:
        f"{LOGS}/prepare_training_images.log",
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        imaging=preprocessing_settings(training=True),
        subjects=lambda wildcards: sheet_subjects(TRAINING_SPLITS),
        splits=TRAINING_SPLITS,
        seed=config["seed"],
        cache_dir=f"{CACHE}/imaging",
    script:
        "../scripts/prepare_images.py"


rule prepare_evaluation_images:
    input:
        lambda wildcards: image_files(EVALUATION_SPLITS),
    output:
        data=directory(f"{IMAGING}/data"),
    log:
        f"{LOGS}/prepare_evaluation_images.log",
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        imaging=preprocessing_settings(),
        subjects=lambda wildcards: sheet_subjects(EVALUATION_SPLITS),
        splits=EVALUATION_SPLITS,
        seed=config["seed"],
        cache_dir=f"{CACHE}/imaging",
    script:
        "../scripts/prepare_images.py"
