# Paths and input functions of rules/synthesis.smk (kept apart from the rules, as
# Snakemake's linter asks).
SYNTHESIS = f"{RUN}/{REPLICATE}synthesis"
# the sheet fixes the synthesis split: prepared once, whatever the replicates
SYNTHESIS_DATA = f"{RUN}/{registry.task('synthesis').training_input}"


def synthesis_levels(family):
    """K: the family's auto-context levels (its hyperparameter auto_context_levels)."""
    return planning.synthesis_levels(config, family)


def synthesis_level_data(family, level):
    """Level 1 trains on the prepared pairs; level k on them plus level k-1's output."""
    if int(level) == 1:
        return SYNTHESIS_DATA
    return f"{SYNTHESIS}/{family}/data/level{level}"


def synthesis_level_models(family):
    return [f"{MODELS}/{family}/level{k}/model.pt" for k in range(1, synthesis_levels(family) + 1)]


def synthesis_files(wildcards=None):
    """The sample sheet and every file it names (changed files rerun preparation); in apply
    mode the new subjects, whose target is optional."""
    section = config["synthesis"]
    from medgen.tasks.synthesis.pairs import read_synthesis_sheet

    with refused_before_run("invalid synthesis sample sheet"):
        pairs = read_synthesis_sheet(section, new_data=apply_mode())
    files = [section["sample_sheet"]]
    for pair in pairs:
        files += [
            str(p) for p in (*pair.sources.values(), pair.target, pair.mask, pair.label) if p
        ]
    return files


def preparation_settings():
    """The synthesis section without evaluation and inference (medgen.planning)."""
    return planning.synthesis_preparation(config)


@functools.cache
def synthesis_report_subjects():
    """The test subjects of the synthesis sample sheet (one mid-slice figure each); none
    when synthesis is off or a model is applied."""
    if apply_mode() or not (task_on("synthesis") and task_families("synthesis")):
        return []
    from medgen.tasks.synthesis.pairs import read_synthesis_sheet

    with refused_before_run("invalid synthesis sample sheet"):
        pairs = read_synthesis_sheet(config["synthesis"])
    return [pair.subject for pair in pairs if pair.split == "test"]


def synthesis_models(wildcards=None):
    """Family -> its level model.pt paths, for every activated synthesis family."""
    if not task_on("synthesis"):
        return {}
    return {family: synthesis_level_models(family) for family in task_families("synthesis")}


def synthesis_outputs():
    if not task_families("synthesis"):
        return []
    return [f"{SYNTHESIS}/eval/metrics.json", f"{SYNTHESIS}/report/metrics.tsv"]


TASK_OUTPUTS["synthesis"] = synthesis_outputs
TASK_TIDY["synthesis"] = lambda: [f"{SYNTHESIS}/eval/metrics_tidy.tsv"]
TASK_INPUTS["synthesis"] = synthesis_files
