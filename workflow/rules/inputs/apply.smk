# Paths and input functions of rules/apply.smk (kept apart from the rules, as
# Snakemake's linter asks).
def apply_inputs(wildcards=None):
    """The trained model (every level of a synthesis cascade) and the new data it is
    applied to; in sampling mode (<task>.sampling.n_samples) the model alone."""
    task = apply_task()
    if task == "synthesis":
        from medgen.tasks.synthesis.cascade import load_levels

        paths, _ = load_levels(config["apply"]["model"])
        return [str(path) for path in paths] + TASK_INPUTS[task]()
    if task == "sequence_design":
        from medgen.tasks.sequence_design.apply import generates

        if generates(config["apply"]["model"]):  # a dna_gan samples: no new data read
            return [config["apply"]["model"]]
    sampling = config[task].get("sampling") or {}
    if sampling.get("n_samples") is not None:
        # expression / anomaly sampling mode: the model (and the training h5ad it may need)
        extra = sampling.get("training_data")
        return [config["apply"]["model"]] + ([extra] if extra else [])
    return [config["apply"]["model"], *TASK_INPUTS[task]()]
