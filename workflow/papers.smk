# The four papers' comparisons in one invocation (config/studies/papers.yaml): each study
# is the medgen workflow as a Snakemake module on its dataset config, with replicates;
# `papers_summary` sets each paper's claim beside our numbers.
#   snakemake -s workflow/papers.smk --cores 2 [--config budget=small]
#   snakemake -s workflow/papers.smk --report results/papers/report.html
# On SLURM add --profile config/profiles/slurm: one job per dataset x family x seed.
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

import medgen.studies
from medgen.planning import container_image, refused_before_run

min_version("9.0")


configfile: "config/studies/papers.yaml"


# The studies' image, as in workflow/Snakefile (each module sets its own, the same one): used
# only with --software-deployment-method apptainer.
with refused_before_run("container"):
    CONTAINER = container_image(os.environ, workflow.deployment_settings.deployment_method)


container: CONTAINER


# the study file as Snakemake read it: --config budget=small or results_dir=... apply; the
# studies themselves are the modules below (one per study, named alike)
with refused_before_run("invalid study config"):
    STUDIES = medgen.studies.load_studies(dict(config), config["budget"])
RUNS = {name: study["run_config"] for name, study in STUDIES["studies"].items()}
DECLARED = [
    "tybalt_tcga",
    "fanogan_pneumoniamnist",
    "anomaly_brats",
    "synthesis_brats",
    "ggan_gpl96",
    "ggan_tcga",
]
if sorted(RUNS) != sorted(DECLARED):
    raise WorkflowError(
        f"config/studies/papers.yaml lists studies {sorted(RUNS)}; workflow/papers.smk "
        f"declares a module for each of {sorted(DECLARED)}: keep the two in step"
    )


module tybalt_tcga:
    snakefile:
        "Snakefile"
    config:
        RUNS["tybalt_tcga"]


use rule * from tybalt_tcga as tybalt_tcga_*


module fanogan_pneumoniamnist:
    snakefile:
        "Snakefile"
    config:
        RUNS["fanogan_pneumoniamnist"]


use rule * from fanogan_pneumoniamnist as fanogan_pneumoniamnist_*


module anomaly_brats:
    snakefile:
        "Snakefile"
    config:
        RUNS["anomaly_brats"]


use rule * from anomaly_brats as anomaly_brats_*


module synthesis_brats:
    snakefile:
        "Snakefile"
    config:
        RUNS["synthesis_brats"]


use rule * from synthesis_brats as synthesis_brats_*


module ggan_gpl96:
    snakefile:
        "Snakefile"
    config:
        RUNS["ggan_gpl96"]


use rule * from ggan_gpl96 as ggan_gpl96_*


module ggan_tcga:
    snakefile:
        "Snakefile"
    config:
        RUNS["ggan_tcga"]


use rule * from ggan_tcga as ggan_tcga_*


rule papers_summary:
    default_target: True
    input:
        rules.tybalt_tcga_all.input,
        rules.fanogan_pneumoniamnist_all.input,
        rules.anomaly_brats_all.input,
        rules.synthesis_brats_all.input,
        rules.ggan_gpl96_all.input,
        rules.ggan_tcga_all.input,
    output:
        table=report(
            f"{STUDIES['results_dir']}/summary.tsv",
            caption="report/papers_summary.rst",
            category="0. Summary: the papers' claims",
        ),
        markdown=f"{STUDIES['results_dir']}/summary.md",
    log:
        f"{STUDIES['results_dir']}/logs/papers_summary.log",
    params:
        budget=config["budget"],
    script:
        "scripts/papers_summary.py"
