# The HTML report (snakemake --report): provenance of the whole run, and sections that
# only gather what the evaluations wrote.


rule provenance:
    input:
        run_inputs(),
    output:
        report(
            f"{RUN}/provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        f"{LOGS}/provenance.log",
    params:
        config=config,
    script:
        "../scripts/write_provenance.py"


rule synthesis_report:
    input:
        metrics=f"{SYNTHESIS}/eval/metrics.tsv",
        data=f"{SYNTHESIS}/data/stage1",
        models=lambda wildcards: [
            model for models in synthesis_models().values() for model in models
        ],
    output:
        table=report(
            f"{SYNTHESIS}/report/metrics.tsv",
            caption="../report/synthesis_metrics.rst",
            category="Image synthesis",
            labels={"figure": "metrics per subject"},
        ),
        slices=[
            report(
                f"{SYNTHESIS}/report/slices_{subject}.png",
                caption="../report/synthesis_slices.rst",
                category="Image synthesis",
                labels={"figure": f"mid-slices: {subject}"},
            )
            for subject in synthesis_report_subjects()
        ],
        curves=report(
            f"{SYNTHESIS}/report/training_curves.png",
            caption="../report/synthesis_curves.rst",
            category="Image synthesis",
            labels={"figure": "training curves"},
        ),
    log:
        f"{LOGS}/synthesis_report.log",
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        models=synthesis_models(),
        subjects=synthesis_report_subjects(),
    script:
        "../scripts/synthesis_report.py"
