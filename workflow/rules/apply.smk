# Apply mode (apply.activate): a trained model run on the new data its task's config section
# names; nothing is trained.


def apply_inputs(wildcards=None):
    """The trained model (every stage of a synthesis cascade) and the new data it is
    applied to."""
    task = apply_task()
    if task == "synthesis":
        from medgen.tasks.synthesis.cascade import load_stages

        paths, _ = load_stages(config["apply"]["model"])
        return [str(path) for path in paths] + synthesis_files()
    data = expression_inputs() if task == "expression" else imaging_inputs()
    return [config["apply"]["model"], *data]


rule apply_model:
    input:
        apply_inputs,
    output:
        directory(APPLY),
    log:
        f"{LOGS}/apply_model.log",
    resources:
        gpu=min(gpus_requested(), 1),
        mem_mb=8000,
        runtime=120,
    params:
        model=config["apply"]["model"],
        expression=config["expression"],
        imaging=config["imaging"],
        synthesis=config["synthesis"],
        seed=config["seed"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/apply_model.py"
