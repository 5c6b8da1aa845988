"""Read Xena/Firehose expression tables whose gene IDs read ``SYMBOL|EntrezID``.

Gene naming (deterministic, so two runs give the same var_names):

* a symbol that occurs once names its gene (``A1BG|1`` -> ``A1BG``);
* a symbol that occurs more than once keeps its full ``SYMBOL|EntrezID`` for every
  occurrence (``SLC35E2|728661``, ``SLC35E2|9906``), so no gene is dropped or merged;
* the unknown symbol ``?`` names the gene by its Entrez ID (``?|100133144`` -> ``100133144``),
  with ``symbol`` left empty.

``var`` gets ``symbol`` and ``entrez_id`` (both strings; empty symbol for ``?``).
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import pandas as pd

from medgen.data.io.delimited import read_delimited
from medgen.errors import MedgenInputError

UNKNOWN_SYMBOL = "?"


def split_gene_ids(gene_ids: list[str], path: str | Path = "<table>") -> pd.DataFrame:
    """Parse ``SYMBOL|EntrezID`` IDs into var: index = gene name, columns symbol, entrez_id.

    Raises
    ------
    MedgenInputError
        If an ID lacks the ``|`` separator or its Entrez part, or names are still duplicated
        (the same ``SYMBOL|EntrezID`` twice).
    """
    symbols, entrez = [], []
    for gene_id in gene_ids:
        symbol, sep, entrez_id = str(gene_id).partition("|")
        if not sep or not entrez_id or not symbol:
            raise MedgenInputError(
                f"{path}: gene ID {gene_id!r} is not of the form SYMBOL|EntrezID (Xena/Firehose);"
                " check the table's format and orientation"
            )
        symbols.append(symbol)
        entrez.append(entrez_id)
    symbol_series = pd.Series(symbols)
    known = symbol_series != UNKNOWN_SYMBOL
    duplicated = symbol_series.duplicated(keep=False) & known
    names = [
        full if dup else (sym if is_known else ent)
        for full, sym, ent, dup, is_known in zip(
            map(str, gene_ids), symbols, entrez, duplicated, known, strict=True
        )
    ]
    var = pd.DataFrame(
        {"symbol": [s if s != UNKNOWN_SYMBOL else "" for s in symbols], "entrez_id": entrez},
        index=pd.Index(names, name=None),
    )
    repeated = var.index[var.index.duplicated()].unique()
    if len(repeated):
        raise MedgenInputError(
            f"{path}: duplicate gene IDs {', '.join(repeated[:5])}"
            + (f" and {len(repeated) - 5} more" if len(repeated) > 5 else "")
        )
    return var


def read_xena(path: str | Path, orientation: str = "genes_as_rows") -> ad.AnnData:
    """Read a Xena/Firehose table (CSV or TSV by extension, gz ok) as samples x genes.

    Parameters
    ----------
    path
        The table; its gene IDs read ``SYMBOL|EntrezID``.
    orientation
        ``genes_as_rows`` for Xena/Firehose files as distributed.
    """
    adata = read_delimited(path, orientation)
    var = split_gene_ids(list(adata.var_names), path)
    adata.var = var
    adata.var_names = var.index
    return adata
