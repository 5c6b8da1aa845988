# Validation, paths, toggles and input functions shared by every rule file.
import functools
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

import medgen.config
from medgen import registry
from medgen.errors import MedgenInputError

# Validate before anything runs: one message naming the key and the valid choices.
try:
    _resolved = medgen.config.validate(config)
except MedgenInputError as err:
    raise WorkflowError(f"invalid medgen config: {err}") from None
config.clear()
config.update(_resolved)

RUN = f"{config['results_dir']}/{config['run_name']}"
CACHE = config["cache_dir"]
LOGS = f"{RUN}/logs"


def is_activated(section):
    """True when config[section] (a dotted path, e.g. 'models.<family>') has activate: true."""
    node = config
    for key in section.split("."):
        node = node.get(key, {})
    return bool(node.get("activate", False))


def activated_families(task):
    """Registered families of ``task`` switched on in the config (baselines come from the
    task's own evaluation settings instead)."""
    return [
        family
        for family in registry.names(task, baselines=False)
        if is_activated(f"models.{family}")
    ]


def one_of(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def family_hparams(family):
    """The family's preset with the dataset config's overrides applied (or, for a baseline,
    its own evaluation settings)."""
    return registry.family_hparams(family, config)


def gpus_requested():
    """GPUs to ask the scheduler for: only when the config asks for GPU training."""
    if config["training"]["accelerator"] == "gpu":
        return config["training"]["devices"]
    return 0


def syng_bts_dir():
    return f"{CACHE}/syng_bts-{config['expression']['syng_bts']['version']}"


def syng_bts_checksums():
    """The run's record of the cached syng-bts tables, written once verify_syng_bts checked
    (or rebuilt) them."""
    return f"{RUN}/data/syng_bts_sha256.json"


def verified_expression_inputs():
    """What steps reading the expression tables wait for besides the tables: the syng-bts
    checksum record, so they read the cache only after a job has verified (or rebuilt) it."""
    if config["expression"]["source"] == "syng_bts":
        return [syng_bts_checksums()]
    return []


def url_download_path():
    url_cfg = config["expression"]["url"]
    if not url_cfg["url"] or not url_cfg["sha256"]:
        raise WorkflowError(
            "expression.source is 'url' but expression.url.url or expression.url.sha256 is "
            "empty; give both (the sha256 is checked after download)"
        )
    name = Path(url_cfg["url"].split("?")[0]).name or "download"
    return f"{CACHE}/url/{url_cfg['sha256'][:16]}/{name}"


def expression_table_specs():
    """Each input table as {path, format, orientation, group}, whatever the source."""
    expr = config["expression"]
    if expr["source"] == "syng_bts":
        return [
            {
                "path": f"{syng_bts_dir()}/{name}.parquet",
                "format": "parquet",
                "orientation": "samples_as_rows",
                "group": name,
            }
            for name in expr["syng_bts"]["tables"]
        ]
    if expr["source"] == "url":
        return [
            {
                "path": url_download_path(),
                "format": expr["url"]["format"],
                "orientation": expr["url"]["orientation"],
                "layer": expr["url"]["layer"],
                "group": None,
            }
        ]
    if not expr["files"]:
        raise WorkflowError("expression.source is 'files' but expression.files is empty")
    return [dict(spec) for spec in expr["files"]]


def expression_inputs(wildcards=None):
    paths = [spec["path"] for spec in expression_table_specs()]
    if config["expression"]["metadata"]["path"]:
        paths.append(config["expression"]["metadata"]["path"])
    return paths


MODELS = f"{RUN}/models"
IMAGING = f"{RUN}/imaging"
from medgen.evaluate.anomaly import TRIVIAL as TRIVIAL_SCORES  # no model needed

INFERENCE = f"{RUN}/expression_inference"

# where each task's training data come from (the training rule's input)
TRAINING_DATA = {
    "expression": f"{RUN}/data/expression.h5ad",
    "anomaly": f"{IMAGING}/training",
    "expression_inference": f"{INFERENCE}/data.h5ad",
}
TRAINING_IMAGES = TRAINING_DATA["anomaly"]
TRAINING_SPLITS = ["train"]
EVALUATION_SPLITS = ["val", "test"]


def training_data(wildcards):
    return TRAINING_DATA[registry.get(wildcards.family).task]


def imaging_methods():
    """Every scorer evaluated side by side: the activated families, then the baselines."""
    return activated_families("anomaly") + list(config["imaging"]["evaluation"]["baselines"])


LOG_ONLY_SETTINGS = ("progress_bar", "checkpoint_every_n_epochs")


def training_settings(family):
    """Trainer settings that can change the weights, as a rule's params. progress_bar and
    checkpoint_every_n_epochs change only the log and the resume points, so they are left out
    (the scripts read them from config): turning the bar off for SLURM logs must not retrain.
    max_epochs does not apply to baselines."""
    settings = {
        key: value for key, value in config["training"].items() if key not in LOG_ONLY_SETTINGS
    }
    if registry.get(family).baseline:
        settings["max_epochs"] = None
    return settings


def training_resources(family):
    return registry.get(family).resources


def preprocessing_settings(training=False):
    """The imaging section without the later stages' sections (scoring, evaluation): a
    change to how results are scored must not rerun preprocessing, and with it every
    training job. Training data also leave out what touches only the evaluation slices
    (synthetic anomalies)."""
    later = ("scoring", "evaluation") + (("synthetic_anomalies",) if training else ())
    return {key: value for key, value in config["imaging"].items() if key not in later}


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
    from medgen.data.imaging.sheet import read_imaging_sheet

    try:
        # refused here, before any job runs, rather than inside the preparation job
        return read_imaging_sheet(
            config["imaging"], config["seed"], new_data=is_activated("apply")
        )
    except MedgenInputError as err:
        raise WorkflowError(f"invalid imaging sample sheet: {err}") from None


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


def inference_inputs(wildcards=None):
    """Files the landmark/target matrices are built from: the table (and its metadata and
    gene maps), or the run's preprocessed expression."""
    section = config["expression_inference"]
    if section["source"] == "expression":
        return [TRAINING_DATA["expression"]]
    table, gene_sets = section["table"], section["gene_sets"]
    if not table["path"]:
        raise WorkflowError(
            "expression_inference.source is 'table' but expression_inference.table.path "
            "is empty; name the expression table"
        )
    paths = [table["path"]] + ([table["metadata"]] if table["metadata"] else [])
    if gene_sets["source"] == "maps":
        paths += [gene_sets["landmark_map"], gene_sets["target_map"]]
    return paths


def trained_hparams(family):
    """The family's hyperparameters as its training job trains with them
    (training.max_epochs, when set, replaces the preset's epochs)."""
    hparams = family_hparams(family)
    epochs = config["training"]["max_epochs"]
    if epochs and not registry.get(family).baseline:
        hparams = {**hparams, "max_epochs": epochs}
    return hparams


def inference_ablations():
    """Ablations of activated families: name -> [family, hyperparameters]."""
    families = activated_families("expression_inference")
    ablations = config["expression_inference"]["evaluation"]["ablations"]
    resolved = {}
    for name, spec in ablations.items():
        if spec["family"] not in families:
            continue
        try:
            hparams = registry.resolve_hparams(
                spec["family"],
                config["models"][spec["family"]]["preset"],
                {**config["models"][spec["family"]].get("params", {}), **spec["params"]},
            )
        except MedgenInputError as err:
            raise WorkflowError(
                f"expression_inference.evaluation.ablations.{name}: {err}"
            ) from None
        if config["training"]["max_epochs"]:
            hparams["max_epochs"] = config["training"]["max_epochs"]
        resolved[name] = [spec["family"], hparams]
    return resolved


def inference_model():
    """The family whose model infers new profiles (expression_inference.infer.model)."""
    families = activated_families("expression_inference")
    wanted = config["expression_inference"]["infer"]["model"] or (families or [""])[0]
    if wanted not in families:
        raise WorkflowError(
            f"expression_inference.infer.model is {wanted!r}; activate it under models "
            f"(activated expression-inference families: {', '.join(families) or 'none'})"
        )
    return wanted


APPLY = f"{RUN}/apply"


@functools.cache
def apply_task():
    """The task of the model that apply.model names, once the config's data fit it."""
    # torch and the task code: imported only in apply mode
    from medgen.apply import check_apply_config

    try:
        return check_apply_config(config)
    except MedgenInputError as err:
        raise WorkflowError(f"invalid apply config: {err}") from None


def apply_inputs(wildcards=None):
    """The trained model (every stage of a synthesis cascade) and the new data it is
    applied to."""
    task = apply_task()
    if task == "synthesis":
        from medgen.evaluate.synthesis_cascade import load_stages

        paths, _ = load_stages(config["apply"]["model"])
        return [str(path) for path in paths] + synthesis_files()
    data = expression_inputs() if task == "expression" else imaging_inputs()
    return [config["apply"]["model"], *data]


def run_inputs():
    """Every input file of this run, for its provenance."""
    if is_activated("apply"):
        return apply_inputs()
    inputs = []
    if is_activated("expression"):
        inputs += expression_inputs() + verified_expression_inputs()
    if is_activated("imaging"):
        inputs += imaging_inputs()
    if is_activated("expression_inference"):
        inputs += [path for path in inference_inputs() if path not in inputs]
        if config["expression_inference"]["infer"]["path"]:
            inputs.append(config["expression_inference"]["infer"]["path"])
    if is_activated("synthesis"):
        inputs += [path for path in synthesis_files() if path not in inputs]
    return inputs


def all_outputs():
    targets = [f"{RUN}/provenance.json"]
    if is_activated("apply"):
        return targets + [APPLY]
    if is_activated("expression"):
        targets += expand(
            "{run}/{family}/eval/metrics.json",
            run=RUN,
            family=activated_families("expression"),
        )
    if is_activated("imaging") and imaging_methods():
        targets += [f"{IMAGING}/report/metrics.json"]
    if is_activated("expression_inference") and activated_families("expression_inference"):
        targets += [f"{INFERENCE}/eval/metrics.json"]
        if config["expression_inference"]["infer"]["path"]:
            targets += [f"{INFERENCE}/inferred/{inference_model()}.gctx"]
    if is_activated("synthesis") and activated_families("synthesis"):
        targets += [f"{RUN}/synthesis/eval/metrics.json", f"{SYNTHESIS}/report/metrics.tsv"]
    return targets


# Image synthesis (rules/synthesis.smk)
SYNTHESIS = f"{RUN}/synthesis"


def synthesis_stages(family):
    """K: the family's auto-context stages (its hyperparameter auto_context_stages)."""
    return int(family_hparams(family).get("auto_context_stages", 1))


def synthesis_stage_data(family, stage):
    """Stage 1 trains on the prepared pairs; stage k on them plus stage k-1's output."""
    if int(stage) == 1:
        return f"{SYNTHESIS}/data/stage1"
    return f"{SYNTHESIS}/{family}/data/stage{stage}"


def synthesis_stage_models(family):
    return [f"{MODELS}/{family}/stage{k}/model.pt" for k in range(1, synthesis_stages(family) + 1)]


def synthesis_files(wildcards=None):
    """The sample sheet and every file it names (changed files rerun preparation); in apply
    mode the new subjects, whose target is optional."""
    section = config["synthesis"]
    from medgen.data.imaging.pairs import read_synthesis_sheet

    try:
        pairs = read_synthesis_sheet(section, new_data=is_activated("apply"))
    except MedgenInputError as err:
        raise WorkflowError(f"invalid synthesis sample sheet: {err}") from None
    files = [section["sample_sheet"]]
    for pair in pairs:
        files += [
            str(p) for p in (*pair.sources.values(), pair.target, pair.mask, pair.label) if p
        ]
    return files


def generator_l1_hparams():
    """The context_gan hyperparameters the 'generator_l1' baseline trains its generator with
    (the configured preset, its overrides and training.max_epochs); None when the baseline is
    not asked for."""
    if "generator_l1" not in config["synthesis"]["evaluation"]["baselines"]:
        return None
    return trained_hparams("context_gan")


def preparation_settings():
    """The synthesis section without evaluation and inference: changing them must not
    re-prepare the data and retrain."""
    return {
        k: v
        for k, v in config["synthesis"].items()
        if k not in ("evaluation", "inference", "activate")
    }


@functools.cache
def synthesis_report_subjects():
    """The test subjects of the synthesis sample sheet (one mid-slice figure each); none
    when synthesis is off or a model is applied."""
    if is_activated("apply") or not (
        is_activated("synthesis") and activated_families("synthesis")
    ):
        return []
    from medgen.data.imaging.pairs import read_synthesis_sheet

    try:
        pairs = read_synthesis_sheet(config["synthesis"])
    except MedgenInputError as err:
        raise WorkflowError(f"invalid synthesis sample sheet: {err}") from None
    return [pair.subject for pair in pairs if pair.split == "test"]


def synthesis_models(wildcards=None):
    """Family -> its stage model.pt paths, for every activated synthesis family."""
    if not is_activated("synthesis"):
        return {}
    return {family: synthesis_stage_models(family) for family in activated_families("synthesis")}
