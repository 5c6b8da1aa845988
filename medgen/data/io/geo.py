"""GEO series matrix files and platform (GPL) annotation tables, read with pandas.

A series matrix (``GSExxx_series_matrix.txt.gz``, or ``GSExxx-GPLyyy_series_matrix.txt.gz``
for a series on several platforms) holds ``!Series_*`` and ``!Sample_*`` metadata lines,
then the values between ``!series_matrix_table_begin`` and ``!series_matrix_table_end``: a
quoted ``"ID_REF"`` header of sample accessions, one line per probe, ``null`` for a missing
value. GEOparse reads these too, but is not a dependency; the layout is simple enough.

A platform annotation is the GPL table that names each probe's gene: GEO's "full table"
download (``#`` comment lines, then a header with ``ID`` and ``Gene Symbol``), an
``GPLxxx.annot.gz`` (``Gene symbol``) or a family SOFT file, the last two with the table
between ``!platform_table_begin`` and ``!platform_table_end``.

Probes -> genes (:func:`probes_to_genes`): a probe annotated with one symbol maps to it;
probes with several symbols (``A /// B``), none (empty, ``---``) or absent from the
annotation are dropped and counted. A gene measured by several probes gets the **mean of
its probes** (as the training data's probe maps are collapsed,
``medgen.tasks.expression_inference.gene_sets.collapse_probes``); a sample with a missing
value in any of the gene's probes has the gene missing, so that a ``null`` is reported,
never hidden in a mean of fewer probes.
"""

from __future__ import annotations

import gzip
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen.data.io.delimited import first_non_numeric
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

TABLE_BEGIN, TABLE_END = "!series_matrix_table_begin", "!series_matrix_table_end"
PLATFORM_BEGIN, PLATFORM_END = "!platform_table_begin", "!platform_table_end"
MISSING_VALUES = ["null", "NULL", "NA", "NaN", ""]  # GEO writes 'null'
NO_GENE = ("", "---")  # Affymetrix annotation for probes without a gene
MULTI_GENE = "///"  # Affymetrix / GEO separator of several genes on one probe
COLLAPSE_RULE = ("mean of the gene's probes (a value missing in any of them makes the gene "
                 "missing in that sample)")


def is_series_matrix(path: str | Path) -> bool:
    """Whether the file name is GEO's series-matrix name (``..._series_matrix.txt[.gz]``)."""
    name = Path(path).name.lower()
    return name.endswith(("_series_matrix.txt", "_series_matrix.txt.gz"))


def _lines(path: Path) -> list[str]:
    """The file's lines without line endings (gzip by content, not by name)."""
    if not path.is_file():
        raise MedgenInputError(f"{path} does not exist")
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read().splitlines()
    except (OSError, EOFError) as err:  # a truncated gzip raises EOFError
        raise MedgenInputError(f"{path} could not be read: {err}") from None


def _cells(line: str) -> list[str]:
    """Tab-separated cells of a metadata line, quotes stripped."""
    return [cell.strip().strip('"') for cell in line.split("\t")]


def _table_between(lines: list[str], begin: str, end: str, path: Path, what: str
                   ) -> tuple[list[str], int]:
    """The lines strictly between ``begin`` and ``end`` and the index of ``begin``."""
    marks = [i for i, line in enumerate(lines) if line.strip().lower() == begin]
    if not marks:
        raise MedgenInputError(f"{path}: no '{begin}' line; expected a GEO {what}")
    start = marks[0]
    ends = [i for i, line in enumerate(lines[start + 1:], start + 1)
            if line.strip().lower() == end]
    if not ends:
        raise MedgenInputError(
            f"{path}: '{begin}' on line {start + 1} but no '{end}' after it; the file is "
            "truncated (an interrupted download?): download it again")
    return lines[start + 1:ends[0]], start


def read_series_matrix(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read a GEO series matrix file.

    Returns
    -------
    (values, samples, series)
        values: probes x samples float64 (``null`` -> NaN), index the ``ID_REF`` ids as
        written (text: '0010' stays '0010'; blanks around them stripped, as the
        annotation's are), columns the sample accessions; samples: one row per sample
        with the ``!Sample_*`` fields that have one value per sample (repeated fields such as
        ``characteristics_ch1`` numbered ``_2``, ``_3``); series: the ``!Series_*`` fields
        (a list when a field has several values).

    Raises
    ------
    MedgenInputError
        No table markers (not a series matrix) or no end marker (truncated), an empty
        table, a row with fewer or more cells than the header (naming line and probe), a
        row without a probe id, duplicated probe or sample ids, or a non-numeric value
        (naming probe and sample).
    """
    path = Path(path)
    lines = _lines(path)
    table, start = _table_between(lines, TABLE_BEGIN, TABLE_END, path, "series matrix")
    numbers = [start + 2 + k for k, line in enumerate(table) if line.strip()]  # 1-based
    table = [line for line in table if line.strip()]
    if len(table) < 2:
        raise MedgenInputError(f"{path}: the series matrix table holds no probes")
    _check_row_lengths(table, numbers, path)
    try:  # all text first: probe ids such as '0010', '1.10' or '1E5' stay as written
        frame = pd.read_csv(io.StringIO("\n".join(table)), sep="\t", dtype=str,
                            index_col=False, na_values=MISSING_VALUES,
                            keep_default_na=False, quotechar='"')
    except pd.errors.ParserError as err:
        raise MedgenInputError(f"{path}: the series matrix table is malformed: {err}") from None
    # ids stripped of blanks, as the annotation's are (a space after the closing quote)
    ids = frame.iloc[:, 0].fillna("").astype(str).str.strip().str.strip('"').str.strip()
    values = frame.iloc[:, 1:].set_axis(pd.Index(ids, name=str(frame.columns[0])), axis=0)
    values.columns = values.columns.astype(str)
    header = _cells(table[0])
    unnamed = [c for c, cell in zip(values.columns, header[1:], strict=False) if not cell]
    if unnamed:  # a trailing tab on every line: an empty column without a sample id
        if not values[unnamed].isna().all().all():
            raise MedgenInputError(f"{path}: a table column without a sample id in the "
                                   "header holds values")
        values = values.drop(columns=unnamed)
        header = [cell for cell in header if cell] if header[0] else header
    if (values.index == "").any():
        raise MedgenInputError(
            f"{path}: a table row without a probe id (line "
            f"{numbers[1 + int(np.flatnonzero(values.index == '')[0])]})")
    repeated = sorted({c for c in header[1:] if header[1:].count(c) > 1})
    if repeated:  # pandas would rename them silently ('GSM1.1')
        raise MedgenInputError(f"{path}: sample ids repeated in the table header: {repeated[:5]}")
    if values.index.duplicated().any():
        raise MedgenInputError(
            f"{path}: probe ids repeated in the table: "
            f"{sorted(set(values.index[values.index.duplicated()]))[:5]}")
    bad = first_non_numeric(values)
    if bad is not None:
        probe, sample, value = bad
        raise MedgenInputError(f"{path}: non-numeric value {value!r} of probe '{probe}' in "
                               f"sample '{sample}'; expected numbers or null")
    values = values.astype(np.float64)
    samples, series = _metadata(lines[:start], list(values.columns), path)
    return values, samples, series


def _check_row_lengths(table: list[str], numbers: list[int], path: Path) -> None:
    """MedgenInputError naming the first table row with fewer cells than the header has
    sample ids (pandas would fill the missing ones with NaN, as if they were null), or
    more cells than the header."""
    header = table[0].split("\t")
    width = len(header)
    while width > 1 and not header[width - 1].strip().strip('"'):
        width -= 1  # a trailing tab on the header line: not a sample
    for number, line in zip(numbers[1:], table[1:], strict=True):
        cells = line.split("\t")
        if len(cells) < width or (len(cells) > len(header)
                                  and any(c.strip() for c in cells[len(header):])):
            probe = cells[0].strip().strip('"').strip()
            raise MedgenInputError(
                f"{path}: line {number} (probe '{probe}') of the series matrix table has "
                f"{len(cells) - 1} values, the header {width - 1} samples; expected one "
                "value (or null) per sample: the file is damaged")


def _metadata(lines: list[str], columns: list[str], path: Path
              ) -> tuple[pd.DataFrame, dict[str, Any]]:
    samples: dict[str, list[str]] = {}
    series: dict[str, list[str]] = {}
    for line in lines:
        if not line.startswith("!"):
            continue
        key, *cells = _cells(line)
        if key.startswith("!Sample_") and len(cells) == len(columns):
            name, k = key[len("!Sample_"):], 2
            while name in samples:
                name = f"{key[len('!Sample_'):]}_{k}"
                k += 1
            samples[name] = cells
        elif key.startswith("!Series_"):
            name = key[len("!Series_"):]
            series.setdefault(name, []).extend(cells)
    series = {k: v[0] if len(v) == 1 else v for k, v in series.items()}
    frame = pd.DataFrame(samples, index=pd.Index(columns))
    accessions = samples.get("geo_accession")
    if accessions is not None and accessions != columns:
        log.warning("%s: the table's sample ids differ from !Sample_geo_accession (first: "
                    "%s vs %s)", path, columns[:3], accessions[:3])
    return frame, series


def read_platform_annotation(path: str | Path, symbol_column: str) -> pd.Series:
    """Probe id -> the annotation's gene-symbol text (as written: may be empty, ``---`` or
    ``A /// B``), from a GPL table.

    The probe id is the ``ID`` column (else the first). ``symbol_column`` is matched
    exactly, else case-insensitively (GEO's full tables say ``Gene Symbol``, its
    ``.annot`` files ``Gene symbol``; logged).

    Raises
    ------
    MedgenInputError
        Unreadable, a ``!platform_table_begin`` without its end (truncated), no rows, or
        no column ``symbol_column`` (the message lists the columns).
    """
    path = Path(path)
    lines = _lines(path)
    if any(line.strip().lower() == PLATFORM_BEGIN for line in lines):
        lines, _ = _table_between(lines, PLATFORM_BEGIN, PLATFORM_END, path,
                                  "platform table")
    else:  # GEO's "full table" download: '#' comment lines describe the columns
        lines = [line for line in lines if line and not line.startswith(("#", "!", "^"))]
    if len(lines) < 2:
        raise MedgenInputError(f"platform annotation {path} holds no probes")
    try:
        table = pd.read_csv(io.StringIO("\n".join(lines)), sep="\t", dtype=str,
                            keep_default_na=False, quotechar='"')
    except pd.errors.ParserError as err:
        raise MedgenInputError(f"platform annotation {path} is malformed: {err}") from None
    column = symbol_column
    if column not in table.columns:
        folded = [c for c in table.columns if c.strip().lower() == symbol_column.lower()]
        if len(folded) != 1:
            raise MedgenInputError(
                f"platform annotation {path} has no column '{symbol_column}' "
                "(expression_inference.infer.annotation_symbol_column); its columns: "
                + ", ".join(map(str, table.columns)))
        column = folded[0]
        log.info("platform annotation %s: symbol column '%s' read as '%s'", path,
                 symbol_column, column)
    ids = table["ID"] if "ID" in table.columns else table.iloc[:, 0]
    symbols = pd.Series(table[column].to_numpy(), index=ids.astype(str).str.strip())
    if symbols.index.duplicated().any():
        raise MedgenInputError(
            f"platform annotation {path}: probe ids on several lines: "
            f"{sorted(set(symbols.index[symbols.index.duplicated()]))[:5]}")
    return symbols


def probes_to_genes(values: pd.DataFrame, annotation: pd.Series, where: str = "the data",
                    annotation_path: str = "the annotation"
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Collapse a probes x samples table to genes x samples through a platform annotation.

    Parameters
    ----------
    values
        Probes x samples (the ``values`` of :func:`read_series_matrix`).
    annotation
        Probe id -> symbol text (:func:`read_platform_annotation`).

    Returns
    -------
    (genes, rows, counts)
        genes: genes x samples float64, the mean of each gene's probes (module docstring);
        rows: per gene its ``pr_gene_symbol``, ``probes`` (comma-joined) and ``n_probes``;
        counts: probes read, mapped, dropped as multi-gene / unannotated / not in the
        annotation, genes, genes of several probes, and the rule.

    Raises
    ------
    MedgenInputError
        No probe of ``values`` maps to a single gene (another platform's annotation?).
    """
    text = annotation.reindex(values.index)
    absent = text.isna()
    text = text.fillna("").astype(str).str.strip()
    parts = text.str.split(MULTI_GENE).map(lambda ps: sorted({p.strip() for p in ps} - {""}))
    unannotated = ~absent & (text.isin(NO_GENE) | (parts.map(len) == 0))
    multi = ~absent & (parts.map(len) > 1)
    single = ~absent & ~unannotated & ~multi
    counts = {
        "probes": int(len(values)), "mapped": int(single.sum()),
        "multi_gene_dropped": int(multi.sum()), "unannotated_dropped": int(unannotated.sum()),
        "not_in_annotation_dropped": int(absent.sum()), "rule": COLLAPSE_RULE,
    }
    if not single.any():
        raise MedgenInputError(
            f"{where}: none of its {len(values)} probes maps to one gene through "
            f"{annotation_path} (first probes: {list(values.index[:3])}; first annotated: "
            f"{list(annotation.index[:3])}); is that the annotation of these data's platform?")
    symbols = parts[single].map(lambda ps: ps[0])
    kept = values.loc[single]
    grouped = kept.groupby(symbols.to_numpy(), sort=False)
    genes = grouped.mean()
    genes[kept.isna().groupby(symbols.to_numpy(), sort=False).any()] = np.nan
    probes = pd.Series(kept.index, index=kept.index).groupby(symbols.to_numpy(), sort=False)
    rows = pd.DataFrame({"pr_gene_symbol": genes.index,
                         "probes": probes.agg(",".join).reindex(genes.index).to_numpy(),
                         "n_probes": probes.size().reindex(genes.index).to_numpy()},
                        index=genes.index)
    counts["genes"] = int(len(genes))
    counts["genes_of_several_probes"] = int((rows["n_probes"] > 1).sum())
    log.info("%s: %d probes -> %d genes through %s (%d mapped; dropped: %d of several genes, "
             "%d without a gene, %d not in the annotation); genes of several probes: %s",
             where, counts["probes"], counts["genes"], annotation_path, counts["mapped"],
             counts["multi_gene_dropped"], counts["unannotated_dropped"],
             counts["not_in_annotation_dropped"], COLLAPSE_RULE)
    return genes, rows, counts
