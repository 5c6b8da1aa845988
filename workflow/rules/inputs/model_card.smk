# Input functions of rules/model_card.smk (kept apart from the rules, as Snakemake's
# linter asks).
def card_task(wildcards):
    """The task of the carded model (its family's, from the registry)."""
    return registry.get(wildcards.model.split("/")[0]).task


def card_inputs(wildcards):
    """The model, its replicate's tidy metric tables and, with replicates, the task's
    aggregated summary and comparisons."""
    task = card_task(wildcards)
    inputs = {
        "model": f"{MODELS}/{wildcards.model}/model.pt",
        "metrics": with_seed(TASK_TIDY[task](), wildcards),
    }
    if SEEDS:
        inputs["summary"] = f"{REPLICATES}/{task}/summary.tsv"
        inputs["comparisons"] = f"{REPLICATES}/{task}/{COMPARISONS}"
    return inputs


def model_cards(task):
    """The model cards of ``task``'s trained models (a final target of every run)."""
    return [f"{MODELS}/{model}/model_card.md" for model in planning.carded_models(config, task)]
