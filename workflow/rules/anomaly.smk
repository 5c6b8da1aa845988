# The anomaly task (AnoGAN, f-AnoGAN beside the conv AE, PCA and trivial scores): prepare
# the training units and the val/test images, score every method, evaluate them side by
# side.
from medgen.tasks.anomaly.methods import TRIVIAL as TRIVIAL_SCORES  # no model needed

IMAGING = f"{RUN}/imaging"
TRAINING_IMAGES = f"{RUN}/{registry.task('anomaly').training_input}"
TRAINING_SPLITS = ["train"]
EVALUATION_SPLITS = ["val", "test"]


def imaging_methods():
    """Every scorer evaluated side by side: the activated families, then the baselines."""
    return planning.anomaly_methods(config)


def preprocessing_settings(training=False):
    """The imaging section without scoring and evaluation (medgen.planning)."""
    return planning.anomaly_preparation(config, training)


def imaging_model(method):
    """What a method scores with: a trained model.pt, the PCA fit, or nothing."""
    if method in TRIVIAL_SCORES:
        return []
    if method == "pca":
        return f"{IMAGING}/models/pca.npz"
    return f"{MODELS}/{method}/model.pt"


def scoring_gpus(method):
    """One GPU for scoring with a trained network (AnoGAN maps latents for minutes to hours)
    when the config trains on GPUs; PCA and trivial scores run on the CPU."""
    networks = method not in TRIVIAL_SCORES and method != "pca"
    return min(gpus_requested(), 1) if networks else 0


@functools.cache
def sheet_rows():
    """The sample sheet's rows, splits assigned (read once; [] for the built-in demo)."""
    from medgen.tasks.anomaly.sheet import read_imaging_sheet

    # refused here, before any job runs, rather than inside the preparation job
    with refused_before_run("invalid imaging sample sheet"):
        return read_imaging_sheet(
            config["imaging"], config["seed"], new_data=is_activated("apply")
        )


def evaluated_splits():
    """The evaluation splits the prepared data hold: the demo's val and test, else those
    with a subject in the sample sheet (test always: the anomaly report's figures need it)."""
    if config["imaging"]["kind"] == "mni152_demo":
        return EVALUATION_SPLITS
    present = {row.split for row in sheet_rows()}
    return [s for s in EVALUATION_SPLITS if s in present or s == "test"]


def image_files(splits):
    """Every file of the subjects in ``splits``, so changed images rerun their side only."""
    rows = [row for row in sheet_rows() if row.split in splits]
    return list(dict.fromkeys(str(path) for row in rows for path in row.paths()))


def sheet_subjects(splits):
    """Subject -> its files, for the subjects in ``splits``: a params value, so adding or
    moving a subject reruns the side it belongs to."""
    return {
        row.subject: [str(path) for path in row.paths()]
        for row in sheet_rows()
        if row.split in splits
    }


def imaging_inputs(wildcards=None):
    """The sample sheet and every image it lists (the run's provenance)."""
    sheet = config["imaging"]["sample_sheet"]
    if not sheet_rows():
        return []
    return [sheet, *image_files(TRAINING_SPLITS + EVALUATION_SPLITS)]


def anomaly_outputs():
    return [f"{IMAGING}/report/metrics.json"] if imaging_methods() else []


TASK_OUTPUTS["anomaly"] = anomaly_outputs
TASK_INPUTS["anomaly"] = imaging_inputs


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


rule fit_pca_baseline:
    input:
        data=TRAINING_IMAGES,
    output:
        model=f"{IMAGING}/models/pca.npz",
    log:
        f"{LOGS}/fit_pca_baseline.log",
    params:
        components=config["imaging"]["evaluation"]["pca_components"],
    script:
        "../scripts/fit_pca_baseline.py"


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
