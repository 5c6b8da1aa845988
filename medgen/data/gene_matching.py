"""Match genes by name: the one matcher of expression inference's training data, evaluation
and inference (landmark and target genes, L1000-style profiles).

A gene named by more than one column (two probes mapped to one symbol, a table with a gene
twice) is refused by default, naming the genes and the config key; ``mean`` averages its
columns on request, as ``expression.duplicate_samples`` does for samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medgen.errors import MedgenInputError

DUPLICATE_GENES = ("refuse", "mean")


def match_genes(names: Sequence[str], wanted: Sequence[str], duplicates: str = "refuse",
                where: str = "the data", key: str | None = None,
                ids: Sequence[str] | None = None
                ) -> tuple[dict[str, list[int]], list[str]]:
    """Where each wanted gene is among ``names`` (the columns or rows of a table).

    Parameters
    ----------
    names
        Gene name of each column (or row), in the table's order.
    wanted
        The genes to find (landmarks or targets), in the model's order.
    duplicates
        'refuse' (default): a wanted gene named more than once is an error; 'mean': its
        columns are averaged (``average``). Duplicates of genes that are not wanted are
        never read and never refused.
    where
        The table, for messages.
    key
        The config key that sets ``duplicates``, named in the message.
    ids
        The id of each column (or row) when it differs from its gene name (an h5ad's var
        names with symbols in a var column, probes, Entrez ids): the refusal names the ids
        of each repeated gene.

    Returns
    -------
    (positions, missing): wanted gene -> the positions of its columns, in ``wanted``'s
    order, for the genes found; the wanted genes not found, in ``wanted``'s order.

    Raises
    ------
    MedgenInputError
        ``duplicates`` is not one of ``DUPLICATE_GENES``; a wanted gene named more than once
        with ``duplicates: refuse`` (the first five are named, with the key to set).
    """
    if duplicates not in DUPLICATE_GENES:
        raise MedgenInputError(
            f"duplicate-gene rule {duplicates!r}; expected one of {', '.join(DUPLICATE_GENES)}")
    wanted_set = set(wanted)
    found: dict[str, list[int]] = {}
    for position, name in enumerate(map(str, names)):
        if name in wanted_set:
            found.setdefault(name, []).append(position)
    repeated = [gene for gene in wanted if len(found.get(gene, ())) > 1]
    if repeated and duplicates == "refuse":
        setting = f"set {key}: mean to average them" if key else "average them with 'mean'"
        named = (repeated[:5] if ids is None else
                 "; ".join(f"{gene!r} (ids {', '.join(repr(str(ids[p])) for p in found[gene])})"
                           for gene in repeated[:5]))
        raise MedgenInputError(
            f"{where}: {len(repeated)} gene(s) appear more than once (first: "
            f"{named}); keep one column per gene, or {setting}")
    positions = {gene: found[gene] for gene in wanted if gene in found}
    return positions, [gene for gene in wanted if gene not in found]


def average(values: np.ndarray, positions: dict[str, list[int]]) -> np.ndarray:
    """(n, len(positions)) float64: per matched gene, its one column of ``values`` (n x
    columns) as it is, or the mean of its several columns."""
    values = np.asarray(values)
    out = np.empty((values.shape[0], len(positions)), dtype=np.float64)
    for j, columns in enumerate(positions.values()):
        out[:, j] = (values[:, columns[0]] if len(columns) == 1
                     else values[:, columns].astype(np.float64).mean(axis=1))
    return out


def averaging_matrix(n_names: int, positions: dict[str, list[int]]) -> np.ndarray:
    """(n_names, len(positions)) float32 weights whose product with a (samples x names)
    block averages each matched gene's columns (streamed inference, chunk by chunk)."""
    weights = np.zeros((n_names, len(positions)), dtype=np.float32)
    for j, columns in enumerate(positions.values()):
        weights[columns, j] = 1.0 / len(columns)
    return weights
