"""Gene identifiers: what a list of ids looks like, and ids -> gene symbols through a map.

A trained expression-inference model knows its genes by symbol only (the data signature
stores ordered symbols, ``medgen.tasks.expression_inference.loaders``), so profiles named
by Entrez or Ensembl ids are mapped to symbols through a user-given map file (two columns:
id, symbol). Ids are compared after normalisation: Ensembl version suffixes dropped
(``ENSG00000141510.16`` -> ``ENSG00000141510``), Entrez ids written as floats
(``7157.0``) read as integers, surrounding blanks stripped.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medgen.data.io.delimited import separator
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

GENE_ID_TYPES = ("symbol", "entrez", "ensembl")
# what map exports (biomaRt, R, Excel, GEO) write for "no symbol"; compared lower-case
NO_SYMBOL = frozenset({"", "na", "nan", "n/a", "null", "none", "-", "--", "---", "-666"})

_PROBES = "map probes to genes with a platform annotation (annotation: the GPL table)"
_TRANSCRIPTS = "map transcripts to genes first (one row per gene)"
_OTHER_AXIS = "the genes are on the other axis"
# (pattern, what the ids look like, a hint for the user); the first that matches most ids wins
_ID_KINDS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"^\d+(\.0+)?$"), "numeric Entrez ids",
     "set gene_id_type: entrez and gene_id_map (two columns: id, symbol)"),
    (re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$"), "Ensembl gene ids",
     "set gene_id_type: ensembl and gene_id_map (two columns: id, symbol)"),
    (re.compile(r"^ENS[A-Z]*T\d{6,}(\.\d+)?$"), "Ensembl transcript ids", _TRANSCRIPTS),
    (re.compile(r"^(AFFX-.*|\d+(_[a-z])?_at)$"), "Affymetrix probe ids", _PROBES),
    (re.compile(r"^ILMN_\d+$"), "Illumina probe ids", _PROBES),
    (re.compile(r"^A_\d+_P\d+$"), "Agilent probe ids", _PROBES),
    (re.compile(r"^[NX][MR]_\d+(\.\d+)?$"), "RefSeq transcript ids", _TRANSCRIPTS),
    (re.compile(r"^GS[MEP]\d+$"), "GEO accessions (samples, not genes)", _OTHER_AXIS),
    (re.compile(r"^TCGA-"), "TCGA sample barcodes (samples, not genes)", _OTHER_AXIS),
    (re.compile(r"^[A-Za-z][A-Za-z0-9]*([-.][A-Za-z0-9]+)*$"), "gene symbols or names", ""),
)


def id_kind(ids: Sequence[str]) -> tuple[str, str]:
    """(what the ids look like, a hint) for the kind that most of ``ids`` match, or
    ("ids of no known kind", "") when no kind covers half of them."""
    ids = [str(i).strip() for i in ids][:5000]
    for pattern, what, hint in _ID_KINDS:
        if ids and sum(bool(pattern.match(i)) for i in ids) >= 0.5 * len(ids):
            return what, hint
    return "ids of no known kind", ""


def describe_ids(ids: Sequence[str]) -> str:
    """``look like numeric Entrez ids (e.g. '7157', '1956')``: the kind and three examples."""
    what, _ = id_kind(ids)
    examples = ", ".join(repr(str(i)) for i in list(ids)[:3])
    return f"look like {what} (e.g. {examples})" if len(ids) else "are none"


def normalise_ids(ids: Sequence[str], id_type: str) -> np.ndarray:
    """Ids as compared: blanks stripped; Ensembl versions dropped; Entrez floats as ints."""
    out = pd.Series(list(map(str, ids)), dtype=object).str.strip()
    if id_type == "ensembl":
        out = out.str.replace(r"^(ENS[A-Z]*[GT]\d+)\.\d+$", r"\1", regex=True)
    elif id_type == "entrez":
        out = out.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return out.to_numpy(dtype=object)


def read_id_map(path: str | os.PathLike, id_type: str) -> dict[str, str]:
    """A map file (CSV or TSV by extension, a header line, the first two columns: id,
    symbol) as normalised id -> symbol. Lines without a symbol (empty, or a missing-value
    word such as ``NA``, ``nan``, ``---``: ``NO_SYMBOL``) are skipped and counted in the log.

    Raises
    ------
    MedgenInputError
        Unreadable, fewer than two columns, no lines, or an id mapped to two different
        symbols (naming the first ones).
    """
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"gene id map {path} does not exist "
                               "(expression_inference.infer.gene_id_map)")
    try:
        table = pd.read_csv(path, sep=separator(path), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise MedgenInputError(f"gene id map {path} could not be read: {err}") from None
    if table.shape[1] < 2 or table.empty:
        raise MedgenInputError(
            f"gene id map {path}: expected a header line and two columns (id, symbol), got "
            f"{table.shape[1]} column(s) and {len(table)} line(s)")
    first = str(table.columns[0])
    if id_type != "symbol" and id_kind([first])[0] == id_kind(table.iloc[:20, 0])[0] and \
            id_kind([first])[0] in ("numeric Entrez ids", "Ensembl gene ids"):
        raise MedgenInputError(
            f"gene id map {path}: its first line ({first!r}, {str(table.columns[1])!r}) "
            "looks like a mapping, not a header; add a header line (e.g. 'id<TAB>symbol')")
    ids = normalise_ids(table.iloc[:, 0], id_type)
    symbols = table.iloc[:, 1].str.strip().to_numpy(dtype=object)
    frame = pd.DataFrame({"id": ids, "symbol": symbols})
    missing = (frame["id"] == "") | frame["symbol"].str.lower().isin(NO_SYMBOL)
    if missing.any():
        log.info("gene id map %s: %d line(s) without an id or a symbol (e.g. %r) skipped",
                 path, int(missing.sum()), str(frame["symbol"][missing].iloc[0]))
    frame = frame[~missing].drop_duplicates()
    clash = frame["id"][frame["id"].duplicated()].unique().tolist()
    if clash:
        first = frame[frame["id"].isin(clash[:3])].groupby("id")["symbol"].agg(list)
        raise MedgenInputError(
            f"gene id map {path}: {len(clash)} id(s) map to several symbols (first: "
            f"{dict(first)}); keep one symbol per id")
    return dict(zip(frame["id"], frame["symbol"], strict=True))


def ids_to_symbols(ids: Sequence[str], id_type: str, id_map: dict[str, str] | None
                   ) -> tuple[np.ndarray, int]:
    """(the symbol of each id, or '' where the map has none; how many ids were mapped).
    Without a map the ids are taken as symbols (``id_type: symbol`` only)."""
    normal = normalise_ids(ids, id_type)
    if id_map is None:
        return normal, len(normal)
    symbols = np.array([id_map.get(i, "") for i in normal], dtype=object)
    return symbols, int((symbols != "").sum())
