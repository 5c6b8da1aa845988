# Paths and input functions of rules/expression_inference.smk (kept apart from the rules, as
# Snakemake's linter asks).
from snakemake.exceptions import WorkflowError

EXPRESSION_INFERENCE = f"{RUN}/{REPLICATE}expression_inference"
EXPRESSION_INFERENCE_DATA = f"{RUN}/{SPLIT}{registry.task('expression_inference').training_input}"


def expression_inference_inputs(wildcards=None):
    """Files the landmark/target matrices are built from: the table (and its metadata and
    gene maps), or the run's preprocessed expression."""
    section = config["expression_inference"]
    if section["source"] == "expression":
        return [EXPRESSION_DATA]
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


def expression_inference_preparation():
    """The settings the landmark/target matrices are built from (medgen.planning)."""
    return planning.expression_inference_preparation(config)


def expression_inference_ablations():
    """Ablations of the task's families: name -> [family, hyperparameters]."""
    with refused_before_run("invalid medgen config"):
        return planning.expression_inference_ablations(config)


def expression_inference_model():
    """The family whose model infers new profiles (expression_inference.infer.model)."""
    with refused_before_run("invalid medgen config"):
        return planning.expression_inference_model(config)


def expression_inference_outputs():
    if not task_families("expression_inference"):
        return []
    targets = [f"{EXPRESSION_INFERENCE}/eval/metrics.json"]
    if config["expression_inference"]["infer"]["path"]:
        targets.append(f"{EXPRESSION_INFERENCE}/inferred/{expression_inference_model()}.gctx")
    return targets


TASK_OUTPUTS["expression_inference"] = expression_inference_outputs
TASK_TIDY["expression_inference"] = lambda: [f"{EXPRESSION_INFERENCE}/eval/metrics_tidy.tsv"]


def expression_inference_run_inputs():
    """Every input file (the run's provenance): the expression tables when the matrices
    come from the run's preprocessed expression, the table and gene maps otherwise, and the
    profiles to infer with their annotation and gene id map."""
    section = config["expression_inference"]
    upstream = []
    if section["source"] == "expression":
        upstream = expression_inputs() + verified_expression_inputs()
    return upstream + expression_inference_inputs() + infer_inputs()


def infer_inputs():
    """The files inference reads: the profiles, and their platform annotation and gene id
    map when set (so that a new annotation or map reruns inference)."""
    infer = config["expression_inference"]["infer"]
    if not infer["path"]:
        return []
    return [infer[key] for key in ("path", "annotation", "gene_id_map") if infer[key]]


TASK_INPUTS["expression_inference"] = expression_inference_run_inputs
