# The sequence-design task (Killoran et al. 2017): equal-length sequences prepared once per
# run (FASTA windows or a measurement table, split by identity); the families train on them
# through rules/train.smk; the generators (dna_gan) are evaluated beside the i.i.d. and
# Markov-chain baselines on the held-out windows; with a sequence_predictor, design: the
# evaluation oracle, the designs of every method and their evaluation by the oracle.


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


rule train_design_oracle:
    input:
        data=SEQUENCE_DESIGN_DATA,
        tables=lambda wildcards: design_settings()["oracle_tables"],
    output:
        SEQUENCE_ORACLE,
    log:
        f"{REPLICATE_LOGS}/train_design_oracle.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        epochs=lambda wildcards: design_settings()["oracle_epochs"],
        table=config["sequence_design"]["table"],
        u_policy=config["sequence_design"]["u_policy"],
        seed=run_seed,
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/train_design_oracle.py"


rule design_sequences:
    input:
        data=SEQUENCE_DESIGN_DATA,
        predictor=f"{MODELS}/sequence_predictor/model.pt",
        generator=design_generator,
        motifs=design_motif_inputs,
    output:
        designs=f"{SEQUENCE_DESIGNS}/designs.tsv",
        trajectories=f"{SEQUENCE_DESIGNS}/trajectories.tsv",
        fasta=directory(f"{SEQUENCE_DESIGNS}/designed"),
        record=f"{SEQUENCE_DESIGNS}/design.json",
    log:
        f"{REPLICATE_LOGS}/design_sequences.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=lambda wildcards: design_settings(),
        seed=run_seed,
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/design_sequences.py"


rule evaluate_sequence_design:
    input:
        data=SEQUENCE_DESIGN_DATA,
        designs=f"{SEQUENCE_DESIGNS}/designs.tsv",
        trajectories=f"{SEQUENCE_DESIGNS}/trajectories.tsv",
        oracle=SEQUENCE_ORACLE,
        predictor=f"{MODELS}/sequence_predictor/model.pt",
        motifs=design_motif_inputs,
    output:
        metrics=f"{SEQUENCE_DESIGN_EVAL}/metrics.json",
        accuracy=report(
            f"{SEQUENCE_DESIGN_EVAL}/predictor_metrics.tsv",
            caption="../report/sequence_design_predictor.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "predictor accuracy vs baselines"},
        ),
        table=report(
            f"{SEQUENCE_DESIGN_EVAL}/metrics.tsv",
            caption="../report/sequence_design_design_metrics.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "designs scored by the oracle"},
        ),
        tidy=f"{SEQUENCE_DESIGN_EVAL}/metrics_tidy.tsv",
        scores=f"{SEQUENCE_DESIGN_EVAL}/oracle_scores.tsv",
        trajectories=report(
            f"{SEQUENCE_DESIGN_EVAL}/design_trajectories.png",
            caption="../report/sequence_design_trajectories.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "design trajectories"},
        ),
        oracle_scores=report(
            f"{SEQUENCE_DESIGN_EVAL}/oracle_scores.png",
            caption="../report/sequence_design_oracle_scores.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "oracle scores of the designs"},
        ),
        logos=report(
            f"{SEQUENCE_DESIGN_EVAL}/logos.png",
            caption="../report/sequence_design_logos.rst",
            category="Sequence design",
            labels={**SEED_LABEL, "figure": "logos of the designs"},
        ),
    log:
        f"{REPLICATE_LOGS}/evaluate_sequence_design.log",
    threads: config["training"]["num_threads"] or workflow.cores
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        target=lambda wildcards: design_settings()["target"],
        motif_experiment=lambda wildcards: design_settings()["motif_experiment"],
        seed=run_seed,
        num_threads=config["training"]["num_threads"],
    script:
        "../scripts/evaluate_sequence_design.py"
