"""Landmark and target gene sets for expression inference (the D-GEX / GGAN / L1000 setting:
measure ~1,000 landmark genes, infer the rest).

Gene sets come from map files (D-GEX's ``map_lm.txt`` / ``map_tg.txt``: symbol, Ensembl ID,
comma-separated GPL96 probes), from explicit lists, or from the training data (the most
variable genes as landmarks). Probe-level data collapse to genes by the mean of a gene's
probes. Profiles are always matched by gene name, never by column position.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medgen.data.gene_matching import average, match_genes
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)
MAP_COLUMNS = ("symbol", "ensembl", "probes")


@dataclass(frozen=True)
class GeneSets:
    """Ordered landmark (input) and target (output) gene symbols.

    Sets from probe maps may share symbols measured by different probes (D-GEX: 445 of
    the 943 landmark genes also have other probes among the targets); their values come
    from each set's own probes, and the evaluation scores such targets apart from the
    others. Sets chosen on gene-level data are disjoint.
    """

    landmarks: tuple[str, ...]
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        for name, genes in (("landmark", self.landmarks), ("target", self.targets)):
            duplicated = sorted({g for g in genes if genes.count(g) > 1})
            if duplicated:
                raise MedgenInputError(f"duplicate {name} genes: {duplicated[:5]}")


def read_gene_map(path: str | os.PathLike) -> pd.DataFrame:
    """A D-GEX map file (tab-separated: symbol, Ensembl ID, probes separated by commas) as a
    frame with columns symbol, ensembl, probes (a list per gene). A symbol on several lines
    becomes one gene with the probes of all of them (logged). MedgenInputError for a file
    with another layout."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t", header=None, dtype=str)
    except (OSError, pd.errors.ParserError) as err:
        raise MedgenInputError(f"cannot read gene map {path}: {err}") from None
    if frame.shape[1] != len(MAP_COLUMNS) or frame.isna().any().any():
        raise MedgenInputError(
            f"gene map {path}: expected {len(MAP_COLUMNS)} tab-separated columns "
            f"({', '.join(MAP_COLUMNS)}) on every line, got {frame.shape[1]} columns")
    frame.columns = list(MAP_COLUMNS)
    frame["probes"] = frame["probes"].str.split(",")
    duplicated = frame["symbol"][frame["symbol"].duplicated()].tolist()
    if duplicated:
        # D-GEX's target map lists IL9R twice (its X and Y pseudo-autosomal Ensembl IDs):
        # one gene symbol, so one gene, measured by the probes of both lines
        log.warning("gene map %s: %d symbols on several lines (%s); their probes are merged",
                    path, len(duplicated), ", ".join(duplicated[:5]))
        frame = frame.groupby("symbol", sort=False, as_index=False).agg(
            {"ensembl": ",".join, "probes": lambda lists: [p for ps in lists for p in ps]})
    return frame


def gene_sets_from_maps(
    landmark_map: str | os.PathLike, target_map: str | os.PathLike
) -> tuple[GeneSets, dict[str, list[str]], dict[str, list[str]]]:
    """Gene sets and each set's gene -> probes mapping (D-GEX: 943 landmark genes, 9,519
    target genes on 9,520 lines)."""
    landmarks, targets = read_gene_map(landmark_map), read_gene_map(target_map)
    probes = [{row.symbol: list(row.probes) for row in frame.itertuples()}
              for frame in (landmarks, targets)]
    return GeneSets(tuple(landmarks["symbol"]), tuple(targets["symbol"])), *probes


def collapse_probes(values: pd.DataFrame, probes: dict[str, list[str]]) -> pd.DataFrame:
    """Samples x probes -> samples x genes: the mean of each gene's probes that are present.

    Genes none of whose probes are present are left out (``select_genes`` then reports
    them). MedgenInputError when no gene at all is found.
    """
    present = set(values.columns)
    columns = {}
    for gene, gene_probes in probes.items():
        found = [p for p in gene_probes if p in present]
        if found:
            columns[gene] = values[found].to_numpy(dtype=np.float64).mean(axis=1)
    if not columns:
        raise MedgenInputError(
            "no probe of the gene map is a column of the data (first data columns: "
            f"{list(values.columns[:5])}); are these probe-level data of that platform?")
    return pd.DataFrame(columns, index=values.index)


def select_genes(values: pd.DataFrame, genes: tuple[str, ...], what: str,
                 min_found: float = 0.9, duplicates: str = "refuse", key: str | None = None
                 ) -> tuple[pd.DataFrame, list[str]]:
    """The columns of ``genes`` found in ``values`` (in gene-set order) and the missing ones,
    matched by ``medgen.data.gene_matching.match_genes`` (a gene of the set named by
    several columns: refused, or averaged with ``duplicates: mean``).

    Raises MedgenInputError naming the first missing genes when fewer than ``min_found``
    (a fraction) of the set are present, or the duplicated genes (and ``key``).
    """
    positions, missing = match_genes(values.columns, genes, duplicates, "the data", key)
    found = list(positions)
    if len(found) < min_found * len(genes):
        raise MedgenInputError(
            f"only {len(found)} of {len(genes)} {what} genes are in the data (first "
            f"missing: {missing[:5]}); at least {min_found:.0%} are needed")
    if all(len(columns) == 1 for columns in positions.values()):
        return values[found], missing
    return pd.DataFrame(average(values.to_numpy(), positions), index=values.index,
                        columns=found), missing


def top_variance_landmarks(train: pd.DataFrame, fraction: float) -> GeneSets:
    """Landmarks: the ``fraction`` of genes with the largest variance on the training
    samples (ties broken by name); targets: the rest. Fitted on training data only."""
    if not 0 < fraction < 1:
        raise MedgenInputError(f"landmark fraction must be in (0, 1), got {fraction}")
    variance = train.var(axis=0, ddof=0)  # landmarks and targets disjoint by construction
    order = sorted(variance.index, key=lambda g: (-variance[g], g))
    k = max(1, round(fraction * len(order)))
    landmarks = tuple(sorted(order[:k]))
    return GeneSets(landmarks, tuple(g for g in train.columns if g not in set(landmarks)))
