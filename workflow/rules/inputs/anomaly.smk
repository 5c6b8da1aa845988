# Paths and input functions of rules/anomaly.smk (kept apart from the rules, as
# Snakemake's linter asks).
from medgen.tasks.anomaly.methods import TRIVIAL as TRIVIAL_SCORES  # no model needed
from medgen.tasks.anomaly import GENERATIVE_FAMILIES as ANOMALY_GENERATIVE_FAMILIES

ANOMALY = f"{RUN}/{REPLICATE}anomaly"
TRAINING_IMAGES = f"{RUN}/{SPLIT}{registry.task('anomaly').training_input}"
# the evaluation images: per replicate when each draws its own synthetic anomalies
ANOMALY_EVALUATION = REPLICATE if planning.anomaly_evaluation_per_seed(config) else SPLIT
ANOMALY_DATA = f"{RUN}/{ANOMALY_EVALUATION}anomaly/data"
ANOMALY_DATA_LOGS = f"{LOGS}/{ANOMALY_EVALUATION}".rstrip("/")
TRAINING_SPLITS = ["train"]
EVALUATION_SPLITS = ["val", "test"]


def anomaly_methods():
    """Every scorer evaluated side by side: the task's families, then the baselines."""
    return planning.anomaly_methods(config)


def preprocessing_settings(training=False):
    """The anomaly section without families, scoring and evaluation (medgen.planning)."""
    return planning.anomaly_preparation(config, training)


def anomaly_evaluation_settings():
    """The anomaly section with its evaluation but without the synthetic-image settings,
    which only evaluate_synthetic_images reads."""
    section = dict(config["anomaly"])
    section["evaluation"] = {
        key: value for key, value in section["evaluation"].items() if key != "synthetic"
    }
    return section


def synthetic_image_families():
    """The anomaly families whose generated images are evaluated: the GANs, when
    anomaly.evaluation.synthetic.enabled."""
    if not config["anomaly"]["evaluation"]["synthetic"]["enabled"]:
        return []
    return [f for f in task_families("anomaly") if f in ANOMALY_GENERATIVE_FAMILIES]


def anomaly_model(method):
    """What a method scores with: a trained model.pt, the PCA fit, or nothing."""
    if method in TRIVIAL_SCORES:
        return []
    if method == "pca":
        return f"{ANOMALY}/models/pca.npz"
    return f"{MODELS}/{method}/model.pt"


def scoring_gpus(method):
    """One GPU for scoring with a trained network (AnoGAN maps latents for minutes to hours)
    when the config trains on GPUs; PCA and trivial scores run on the CPU."""
    networks = method not in TRIVIAL_SCORES and method != "pca"
    return min(gpus_requested(), 1) if networks else 0


@functools.cache
def sheet_rows(seed=None):
    """The sample sheet's rows, splits assigned with ``seed`` (default: the config's; read
    once per seed; [] for the built-in demo)."""
    from medgen.tasks.anomaly.sheet import read_anomaly_sheet

    # refused here, before any job runs, rather than inside the preparation job
    with refused_before_run("invalid anomaly sample sheet"):
        return read_anomaly_sheet(
            config["anomaly"],
            config["seed"] if seed is None else seed,
            new_data=planning.apply_mode(config),
        )


def evaluated_splits():
    """The evaluation splits the prepared data hold: the demo's val and test, else those
    with a subject in the sample sheet (test always: the anomaly report's figures need it)."""
    if config["anomaly"]["kind"] == "mni152_demo":
        return EVALUATION_SPLITS
    present = {row.split for row in sheet_rows()}
    return [s for s in EVALUATION_SPLITS if s in present or s == "test"]


def image_files(splits, seed=None):
    """Every file of the subjects in ``splits``, so changed images rerun their side only."""
    rows = [row for row in sheet_rows(seed) if row.split in splits]
    return list(dict.fromkeys(str(path) for row in rows for path in row.paths()))


def sheet_subjects(splits, seed=None):
    """Subject -> its files, for the subjects in ``splits``: a params value, so adding or
    moving a subject reruns the side it belongs to."""
    return {
        row.subject: [str(path) for path in row.paths()]
        for row in sheet_rows(seed)
        if row.split in splits
    }


def anomaly_inputs(wildcards=None):
    """The sample sheet and every image it lists (the run's provenance)."""
    sheet = config["anomaly"]["sample_sheet"]
    if not sheet_rows():
        return []
    return [sheet, *image_files(TRAINING_SPLITS + EVALUATION_SPLITS)]


def anomaly_outputs():
    return ([f"{ANOMALY}/report/metrics.json"] if anomaly_methods() else []) + [
        f"{ANOMALY}/synthetic/{family}/metrics.tsv" for family in synthetic_image_families()
    ]


TASK_OUTPUTS["anomaly"] = anomaly_outputs
# the detection table, then the generators' synthetic-image tables (their metrics too are
# compared over replicates and carried by the model cards)
TASK_TIDY["anomaly"] = lambda: [f"{ANOMALY}/report/metrics_tidy.tsv"] + [
    f"{ANOMALY}/synthetic/{family}/metrics_tidy.tsv" for family in synthetic_image_families()
]
TASK_INPUTS["anomaly"] = anomaly_inputs
