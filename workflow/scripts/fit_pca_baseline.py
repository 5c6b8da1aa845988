"""PCA of the normal training images: the reconstruction-error baseline."""

from pathlib import Path

from medgen.evaluate.scorers import fit_pca
from medgen.smk import logged

with logged(snakemake):  # noqa: F821 - injected by Snakemake
    fit_pca(Path(snakemake.input.data) / "train.npz", snakemake.params.components,  # noqa: F821
            snakemake.output.model)  # noqa: F821
