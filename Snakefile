# medgen: table of contents of the workflow. Rules live in workflow/rules/.
include: "workflow/Snakefile"
