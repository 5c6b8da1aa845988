# Provenance of the whole run, shown in the HTML report (snakemake --report).


rule provenance:
    input:
        expression_inputs() if is_activated("expression") else [],
        verified_expression_inputs() if is_activated("expression") else [],
        imaging_inputs() if is_activated("imaging") else [],
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
