# Paths and input functions of rules/sequence_design.smk (kept apart from the rules, as
# Snakemake's linter asks).
from medgen.planning import SEQUENCE_GENERATORS

SEQUENCE_DESIGN_DATA = f"{RUN}/{SPLIT}{registry.task('sequence_design').training_input}"
SEQUENCE_DESIGN = f"{RUN}/{REPLICATE}sequence_design"
SEQUENCE_EVAL = f"{SEQUENCE_DESIGN}/eval"
SEQUENCE_ORACLE = f"{SEQUENCE_DESIGN}/oracle/model.pt"
SEQUENCE_DESIGNS = f"{SEQUENCE_DESIGN}/design"
SEQUENCE_DESIGN_EVAL = f"{SEQUENCE_DESIGN}/design_eval"


def sequence_design_inputs(wildcards=None):
    """The FASTA or measurement table the data are prepared from (none in apply mode
    without one: a generator samples without data)."""
    return [config["sequence_design"]["path"]] if config["sequence_design"]["path"] else []


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


def designing():
    """Design runs when the task trains a sequence_predictor (the design objective)."""
    return "sequence_predictor" in task_families("sequence_design")


def design_settings():
    """sequence_design.design (the design job's settings)."""
    return config["sequence_design"]["design"]


def design_generator(wildcards=None):
    """The trained dna_gan of joint design: when it is among the families and joint is
    among the methods (or the methods are left to default)."""
    methods = design_settings()["methods"]
    if "dna_gan" in task_families("sequence_design") and (methods is None or "joint" in methods):
        return [f"{MODELS}/dna_gan/model.pt"]
    return []


def design_motif_ids():
    """The JASPAR IDs design reads (the motif objective, the motif experiment)."""
    return [i for i in (design_settings()["motif"], design_settings()["motif_experiment"]) if i]


def design_motif_inputs(wildcards=None):
    """The JASPAR file, when design reads a motif from it."""
    return sequence_motif_inputs() if design_motif_ids() else []


def sequence_design_outputs():
    """The prepared data, the trained models and, with a generator (dna_gan), the
    generation evaluation (its tidy table feeds model cards and replicate comparisons)."""
    families = task_families("sequence_design")
    if not families:
        return []
    outputs = [SEQUENCE_DESIGN_DATA] + [f"{MODELS}/{family}/model.pt" for family in families]
    if sequence_generators():
        outputs.append(f"{SEQUENCE_EVAL}/metrics.json")
    if designing():
        outputs.append(f"{SEQUENCE_DESIGN_EVAL}/metrics.json")
    return outputs


def sequence_design_tidy():
    """The generation evaluation's tidy table (with dna_gan) and the design evaluation's
    (with sequence_predictor)."""
    return [f"{SEQUENCE_EVAL}/metrics_tidy.tsv"] * bool(sequence_generators()) + [
        f"{SEQUENCE_DESIGN_EVAL}/metrics_tidy.tsv"
    ] * designing()


def sequence_design_run_inputs():
    """Every input file (the run's provenance): the FASTA or table and the motif file (in
    apply mode the new sequences alone: apply reads no motif file nor oracle table)."""
    if apply_mode():
        return sequence_design_inputs()
    motifs = sequence_generators() or (designing() and design_motif_ids())
    oracle_tables = design_settings()["oracle_tables"] if designing() else []
    return (
        sequence_design_inputs()
        + (sequence_motif_inputs() if motifs else [])
        + list(oracle_tables)
    )


TASK_OUTPUTS["sequence_design"] = sequence_design_outputs
TASK_TIDY["sequence_design"] = sequence_design_tidy
TASK_INPUTS["sequence_design"] = sequence_design_run_inputs
