# The anomaly task (AnoGAN, f-AnoGAN beside the conv AE, PCA and trivial scores): prepare
# the training units and the val/test images, score every method, evaluate them side by
# side.


rule prepare_training_images:
    input:
        lambda wildcards: image_files(TRAINING_SPLITS, run_seed(wildcards)),
    output:
        data=directory(TRAINING_IMAGES),
    log:
        f"{SPLIT_LOGS}/prepare_training_images.log",
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        anomaly=preprocessing_settings(training=True),
        subjects=lambda wildcards: sheet_subjects(TRAINING_SPLITS, run_seed(wildcards)),
        splits=TRAINING_SPLITS,
        seed=run_seed,
        cache_dir=f"{CACHE}/imaging",
    script:
        "../scripts/prepare_images.py"


rule prepare_evaluation_images:
    input:
        lambda wildcards: image_files(EVALUATION_SPLITS, run_seed(wildcards)),
    output:
        data=directory(ANOMALY_DATA),
    log:
        f"{ANOMALY_DATA_LOGS}/prepare_evaluation_images.log",
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        anomaly=preprocessing_settings(),
        subjects=lambda wildcards: sheet_subjects(EVALUATION_SPLITS, run_seed(wildcards)),
        splits=EVALUATION_SPLITS,
        seed=run_seed,
        cache_dir=f"{CACHE}/imaging",
    script:
        "../scripts/prepare_images.py"


rule fit_pca_baseline:
    input:
        data=TRAINING_IMAGES,
    output:
        model=f"{ANOMALY}/models/pca.npz",
    log:
        f"{REPLICATE_LOGS}/fit_pca_baseline.log",
    params:
        components=config["anomaly"]["evaluation"]["pca_components"],
    script:
        "../scripts/fit_pca_baseline.py"


rule score_anomalies:
    input:
        data=ANOMALY_DATA,
        model=lambda wildcards: anomaly_model(wildcards.method),
    output:
        scores=directory(f"{ANOMALY}/scores/{{method}}"),
    log:
        f"{REPLICATE_LOGS}/score_{{method}}.log",
    # torch runs on the rule's threads (medgen.smk.logged): AnoGAN's mapping uses them all
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        gpu=lambda wildcards: scoring_gpus(wildcards.method),
        mem_mb=8000,
        runtime=120,
    params:
        scoring=config["anomaly"]["scoring"],
        kind=config["anomaly"]["kind"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/score_anomalies.py"


rule evaluate_anomaly:
    input:
        data=ANOMALY_DATA,
        training=TRAINING_IMAGES,
        scores=expand(f"{ANOMALY}/scores/{{method}}", method=anomaly_methods(), allow_missing=True),
    output:
        metrics=f"{ANOMALY}/report/metrics.json",
        tidy=f"{ANOMALY}/report/metrics_tidy.tsv",
        operating_points=f"{ANOMALY}/report/operating_points.json",
        scores=f"{ANOMALY}/report/scores.tsv",
        table=report(
            f"{ANOMALY}/report/metrics.tsv",
            caption="../report/anomaly_metrics.rst",
            category="Anomaly detection",
            labels={**SEED_LABEL, "figure": "metrics vs baselines"},
        ),
        roc=[
            report(
                f"{ANOMALY}/report/roc_{split}.png",
                caption="../report/anomaly_roc.rst",
                category="Anomaly detection",
                labels={**SEED_LABEL, "figure": f"ROC ({split})"},
            )
            for split in evaluated_splits()
        ],
        hist=[
            report(
                f"{ANOMALY}/report/hist_{split}.png",
                caption="../report/anomaly_hist.rst",
                category="Anomaly detection",
                labels={**SEED_LABEL, "figure": f"score histograms ({split})"},
            )
            for split in evaluated_splits()
        ],
        grids=[
            report(
                f"{ANOMALY}/report/grid_{method}.png",
                caption="../report/anomaly_grid.rst",
                category="Anomaly detection",
                labels={**SEED_LABEL, "figure": f"{method}: inputs, reconstructions, residuals"},
            )
            for method in anomaly_methods()
            if method not in TRIVIAL_SCORES
        ],
        slices_by_subject=report(
            f"{ANOMALY}/report/slices_by_subject.tsv",
            caption="../report/anomaly_slices_by_subject.rst",
            category="Anomaly detection",
            labels={**SEED_LABEL, "figure": "slice level per subject"},
        ),
        notes=report(
            f"{ANOMALY}/report/notes.txt",
            caption="../report/anomaly_notes.rst",
            category="Anomaly detection",
            labels={**SEED_LABEL, "figure": "notes on these numbers"},
        ),
        by_subject=(
            [
                report(
                    f"{ANOMALY}/report/pixel_by_subject.tsv",
                    caption="../report/anomaly_pixel_by_subject.rst",
                    category="Anomaly detection",
                    labels={**SEED_LABEL, "figure": "pixel level per subject"},
                )
            ]
            if config["anomaly"]["evaluation"]["pixel_level"]
            else []
        ),
    log:
        f"{REPLICATE_LOGS}/evaluate_anomaly.log",
    params:
        methods=anomaly_methods(),
        # without the synthetic section: its settings rerun only its own job
        anomaly=anomaly_evaluation_settings(),
        seed=run_seed,
    script:
        "../scripts/evaluate_anomaly.py"


SYNTHETIC_IMAGES = f"{ANOMALY}/synthetic/{{family}}"


# Images drawn from a GAN family's generator beside simple image generators fitted on the
# training units, scored against the test split's normal units
# (anomaly.evaluation.synthetic).
rule evaluate_synthetic_images:
    input:
        training=TRAINING_IMAGES,
        data=ANOMALY_DATA,
        model=f"{MODELS}/{{family}}/model.pt",
    output:
        metrics=report(
            f"{SYNTHETIC_IMAGES}/metrics.tsv",
            caption="../report/anomaly_synthetic_metrics.rst",
            category="Anomaly detection",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "synthetic image metrics"},
        ),
        tidy=f"{SYNTHETIC_IMAGES}/metrics_tidy.tsv",
        samples=f"{SYNTHETIC_IMAGES}/samples.npz",
        samples_json=f"{SYNTHETIC_IMAGES}/samples.json",
        samples_grid=f"{SYNTHETIC_IMAGES}/samples.png",
        grid=report(
            f"{SYNTHETIC_IMAGES}/grid.png",
            caption="../report/anomaly_synthetic_grid.rst",
            category="Anomaly detection",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "synthetic vs real images"},
        ),
        pca=report(
            f"{SYNTHETIC_IMAGES}/pca.png",
            caption="../report/anomaly_synthetic_pca.rst",
            category="Anomaly detection",
            subcategory="{family}",
            labels={**SEED_LABEL, "model": "{family}", "figure": "synthetic vs real: PCA"},
        ),
    log:
        f"{REPLICATE_LOGS}/evaluate_synthetic_images_{{family}}.log",
    wildcard_constraints:
        family=one_of(ANOMALY_GENERATIVE_FAMILIES),
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        synthetic=config["anomaly"]["evaluation"]["synthetic"],
        anomaly=preprocessing_settings(),
        seed=run_seed,
    script:
        "../scripts/evaluate_synthetic_images.py"
