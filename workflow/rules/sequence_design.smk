# The sequence-design task (Killoran et al. 2017): equal-length sequences prepared once per
# run (FASTA windows or a measurement table, split by identity); the families train on them
# through rules/train.smk. The generation evaluation and design come next (issue 30).


rule prepare_sequence_design:
    input:
        sequence_design_inputs,
    output:
        data=SEQUENCE_DESIGN_DATA,
        provenance=SEQUENCE_DESIGN_DATA.removesuffix(".npz") + ".json",
    log:
        f"{SPLIT_LOGS}/prepare_sequence_design.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # the section less families: which models train does not rerun preparation
        section=sequence_design_preparation(),
        seed=run_seed,
    script:
        "../scripts/prepare_sequence_design.py"
