"""PCA of the normal training images: the reconstruction-error baseline."""

from pathlib import Path

from medgen.smk import logged
from medgen.tasks.anomaly.scorers import fit_pca

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    fit_pca(Path(snakemake.input.data) / "train.npz", snakemake.params.components,  # noqa: F821
            snakemake.output.model)  # noqa: F821
