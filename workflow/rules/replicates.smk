# Replicates (replicates.seeds): every seed-dependent job runs once per seed under
# seed<k>/; this rule aggregates one task's tidy metric tables over the seeds.


rule aggregate_replicates:
    input:
        unpack(replicate_tables),
    output:
        comparisons=report(
            f"{REPLICATES}/{{task}}/{COMPARISONS}",
            caption="../report/replicates_comparisons.rst",
            category="Across replicates",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "1. models against baselines (verdicts)"},
        ),
        summary=report(
            f"{REPLICATES}/{{task}}/summary.tsv",
            caption="../report/replicates_summary.rst",
            category="Across replicates",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "2. mean and 95% interval per method"},
        ),
        tables=f"{REPLICATES}/{{task}}/replicates_tidy.tsv",
        diagram=report(
            f"{REPLICATES}/{{task}}/critical_difference.png",
            caption="../report/replicates_diagram.rst",
            category="Across replicates",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "3. critical-difference diagram"},
        ),
    log:
        f"{LOGS}/aggregate_replicates_{{task}}.log",
    wildcard_constraints:
        task=one_of(registry.TASKS),
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/aggregate_replicates.py"
