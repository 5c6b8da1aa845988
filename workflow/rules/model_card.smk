# A model card beside every trained model.pt (medgen.model_card): written once the task's
# evaluation (and, with replicates, the aggregation over the seeds) has scored it.


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
