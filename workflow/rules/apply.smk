# Apply mode (apply.activate): a trained model run on the new data its task's config section
# names; nothing is trained.


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
        tasks=config["tasks"],
        anomaly=config["anomaly"],
        synthesis=config["synthesis"],
        sequence_design=config["sequence_design"],
        seed=config["seed"],
        accelerator=config["training"]["accelerator"],
    script:
        "../scripts/apply_model.py"
