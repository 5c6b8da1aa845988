# Paths and input functions of rules/expression.smk (kept apart from the rules, as
# Snakemake's linter asks).
from pathlib import Path

from snakemake.exceptions import WorkflowError

from medgen.tasks.expression import GENERATIVE_FAMILIES

EXPRESSION_DATA = f"{RUN}/{SPLIT}{registry.task('expression').training_input}"


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


def synthetic_families():
    """The expression families whose synthetic profiles are evaluated: those that generate,
    when expression.evaluation.synthetic.enabled."""
    if not config["expression"]["evaluation"]["synthetic"]["enabled"]:
        return []
    return [f for f in task_families("expression") if f in GENERATIVE_FAMILIES]


def expression_outputs():
    return [
        f"{RUN}/{REPLICATE}{family}/eval/metrics.json" for family in task_families("expression")
    ] + [
        f"{RUN}/{REPLICATE}{family}/eval/synthetic/metrics.tsv" for family in synthetic_families()
    ]


TASK_OUTPUTS["expression"] = expression_outputs
# each family's latent-space table, then the generated profiles' tables (their metrics too
# are compared over replicates and carried by the model cards)
TASK_TIDY["expression"] = lambda: [
    f"{RUN}/{REPLICATE}{family}/eval/metrics_tidy.tsv" for family in task_families("expression")
] + [
    f"{RUN}/{REPLICATE}{family}/eval/synthetic/metrics_tidy.tsv" for family in synthetic_families()
]
TASK_INPUTS["expression"] = lambda: expression_inputs() + verified_expression_inputs()
