# Provenance of the whole run, shown in the HTML report (snakemake --report).


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
