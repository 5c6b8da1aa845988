# Paths and input functions of rules/apply.smk (kept apart from the rules, as
# Snakemake's linter asks).
def apply_inputs(wildcards=None):
    """The trained model (every level of a synthesis cascade) and the new data it is
    applied to."""
    task = apply_task()
    if task == "synthesis":
        from medgen.tasks.synthesis.cascade import load_levels

        paths, _ = load_levels(config["apply"]["model"])
        return [str(path) for path in paths] + TASK_INPUTS[task]()
    return [config["apply"]["model"], *TASK_INPUTS[task]()]
