# Paths and input functions of rules/sequence_design.smk (kept apart from the rules, as
# Snakemake's linter asks).
from medgen.planning import SEQUENCE_GENERATORS

SEQUENCE_DESIGN_DATA = f"{RUN}/{SPLIT}{registry.task('sequence_design').training_input}"
SEQUENCE_DESIGN = f"{RUN}/{REPLICATE}sequence_design"
SEQUENCE_EVAL = f"{SEQUENCE_DESIGN}/eval"


def sequence_design_inputs(wildcards=None):
    """The FASTA or measurement table the data are prepared from."""
    return [config["sequence_design"]["path"]]


def sequence_design_preparation():
    """The settings the data are prepared with (medgen.planning)."""
    return planning.sequence_design_preparation(config)


def sequence_generators():
    """The task's families the generation evaluation samples (dna_gan)."""
    return [f for f in task_families("sequence_design") if f in SEQUENCE_GENERATORS]


def sequence_evaluation():
    """sequence_design.evaluation, its motif file as given ("" = no motif metric)."""
    return config["sequence_design"]["evaluation"]


def sequence_motif_inputs(wildcards=None):
    """The JASPAR file of the motif metric, when set (a new file reruns the evaluation)."""
    motifs = sequence_evaluation()["motifs"]
    return [motifs] if motifs else []


def sequence_design_outputs():
    """The prepared data, the trained models and, with a generator (dna_gan), the
    generation evaluation (its tidy table feeds model cards and replicate comparisons)."""
    families = task_families("sequence_design")
    if not families:
        return []
    outputs = [SEQUENCE_DESIGN_DATA] + [f"{MODELS}/{family}/model.pt" for family in families]
    if sequence_generators():
        outputs.append(f"{SEQUENCE_EVAL}/metrics.json")
    return outputs


def sequence_design_tidy():
    return [f"{SEQUENCE_EVAL}/metrics_tidy.tsv"] if sequence_generators() else []


def sequence_design_run_inputs():
    """Every input file (the run's provenance): the FASTA or table and the motif file."""
    return sequence_design_inputs() + (sequence_motif_inputs() if sequence_generators() else [])


TASK_OUTPUTS["sequence_design"] = sequence_design_outputs
TASK_TIDY["sequence_design"] = sequence_design_tidy
TASK_INPUTS["sequence_design"] = sequence_design_run_inputs
