# The HTML report (snakemake --report): provenance of the whole run; each task's rule file
# marks its own report outputs.


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
