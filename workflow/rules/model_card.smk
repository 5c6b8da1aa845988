# A model card beside every trained model.pt (medgen.model_card): written once the task's
# evaluation (and, with replicates, the aggregation over the seeds) has scored it.


def card_task(wildcards):
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
    return [f"{MODELS}/{model}/model_card.md" for model in planning.trained_models(config, task)]


rule model_card:
    input:
        unpack(card_inputs),
    output:
        md=report(
            f"{MODELS}/{{model}}/model_card.md",
            caption="../report/model_card.rst",
            category="Model cards",
            labels={**SEED_LABEL, "model": "{model}"},
        ),
        json=f"{MODELS}/{{model}}/model_card.json",
    log:
        f"{REPLICATE_LOGS}/model_card_{{model}}.log",
    wildcard_constraints:
        model=f"({one_of(registry.names())})(/level[0-9]+)?",
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/model_card.py"
