# Paths and input functions of rules/sequence_design.smk (kept apart from the rules, as
# Snakemake's linter asks).
SEQUENCE_DESIGN_DATA = f"{RUN}/{SPLIT}{registry.task('sequence_design').training_input}"


def sequence_design_inputs(wildcards=None):
    """The FASTA or measurement table the data are prepared from."""
    return [config["sequence_design"]["path"]]


def sequence_design_preparation():
    """The settings the data are prepared with (medgen.planning)."""
    return planning.sequence_design_preparation(config)


def sequence_design_outputs():
    """The prepared data and the trained models; the generation evaluation (and with it
    TASK_TIDY, model cards and replicate comparisons) comes next (issue 30)."""
    families = task_families("sequence_design")
    if not families:
        return []
    return [SEQUENCE_DESIGN_DATA] + [f"{MODELS}/{family}/model.pt" for family in families]


TASK_OUTPUTS["sequence_design"] = sequence_design_outputs
TASK_TIDY["sequence_design"] = lambda: []
TASK_INPUTS["sequence_design"] = sequence_design_inputs
