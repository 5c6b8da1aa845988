# The sequence-design task (Killoran et al. 2017): equal-length sequences prepared once per
# run (FASTA windows or a measurement table, split by identity); the families train on them
# through rules/train.smk; the generators (dna_gan) are evaluated beside the i.i.d. and
# Markov-chain baselines on the held-out windows. Design comes next (issue 30).


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


rule evaluate_sequence_generation:
    input:
        data=SEQUENCE_DESIGN_DATA,
        models=lambda wildcards: expand(
            "{models}/{family}/model.pt", models=MODELS, family=sequence_generators()
        ),
        motifs=sequence_motif_inputs,
    output:
        metrics=f"{SEQUENCE_EVAL}/metrics.json",
        table=report(
            f"{SEQUENCE_EVAL}/metrics.tsv",
            caption="../report/sequence_design_metrics.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "generation metrics vs baselines"},
        ),
        tidy=f"{SEQUENCE_EVAL}/metrics_tidy.tsv",
        gc_values=f"{SEQUENCE_EVAL}/gc_content.tsv",
        generated=directory(f"{SEQUENCE_EVAL}/generated"),
        kmer=report(
            f"{SEQUENCE_EVAL}/kmer_js.png",
            caption="../report/sequence_design_kmer_js.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "k-mer spectra"},
        ),
        gc=report(
            f"{SEQUENCE_EVAL}/gc_content.png",
            caption="../report/sequence_design_gc.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "GC content"},
        ),
    log:
        f"{REPLICATE_LOGS}/evaluate_sequence_generation.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        families=sequence_generators(),
        evaluation=sequence_evaluation(),
        seed=run_seed,
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/evaluate_sequence_generation.py"
