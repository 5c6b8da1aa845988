# medgen: the workflow is in workflow/Snakefile (the Snakemake workflow catalog's layout);
# this file lets `snakemake` run it from the repository root.


include: "workflow/Snakefile"


# An included file's default target is not the caller's: name it here.
rule default:
    default_target: True
    input:
        rules.all.input,
