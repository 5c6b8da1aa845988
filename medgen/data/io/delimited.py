"""Delimited text tables (CSV/TSV, optionally gzipped) and the table -> AnnData conversion.

``read_delimited`` reads one such table; ``frame_to_anndata`` turns any numeric table into the
samples x genes AnnData every reader returns (string IDs, float64 values). The format
dispatcher (``medgen.data.io.tables``) and the Xena reader (``medgen.data.io.xena``) both build
on them.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from medgen.errors import MedgenInputError

Orientation = Literal["samples_as_rows", "genes_as_rows"]
ORIENTATIONS: tuple[str, ...] = ("samples_as_rows", "genes_as_rows")
_COMPRESSION = (".gz",)


def file_suffix(path: Path) -> str:
    """The format-bearing suffix, looking past a compression suffix (``x.csv.gz`` -> ``.csv``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def separator(path: str | Path) -> str:
    """Field separator from the extension: ',' for .csv, tab for .tsv/.txt/.tab."""
    return "," if file_suffix(Path(path)) == ".csv" else "\t"


def check_orientation(orientation: str) -> None:
    if orientation not in ORIENTATIONS:
        raise MedgenInputError(
            f"orientation is {orientation!r}; expected one of: {', '.join(ORIENTATIONS)}"
        )


def frame_to_anndata(frame: pd.DataFrame, orientation: str, path: str | Path) -> ad.AnnData:
    """Turn a numeric table into a samples x genes AnnData (string IDs, float64 values)."""
    check_orientation(orientation)
    if orientation == "genes_as_rows":
        frame = frame.T
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise MedgenInputError(
            f"{path} holds no data ({frame.shape[0]} samples x {frame.shape[1]} genes)"
        )
    values = frame.to_numpy(dtype=np.float64)
    obs = pd.DataFrame(index=pd.Index(frame.index.astype(str), name=None))
    var = pd.DataFrame(index=pd.Index(frame.columns.astype(str), name=None))
    return ad.AnnData(X=values, obs=obs, var=var)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), newline="")
    return open(path, newline="")  # noqa: SIM115 - caller closes


def _find_ragged_row(path: Path, sep: str) -> tuple[int, int, int] | None:
    """First data line whose field count differs from the table's; (line, seen, expected)."""
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=sep)
        header = next(reader, None)
        if header is None:
            return None
        expected: int | None = None
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if expected is None:
                # R-style files omit the row-name header cell: header has one field fewer.
                expected = len(row) if len(row) in (len(header), len(header) + 1) else len(
                    header
                )
            if len(row) != expected:
                return line_no, len(row), expected
    return None


def _duplicate_header_cells(path: Path, sep: str, n_columns: int) -> list[str]:
    """Repeated header cells; pandas silently renames them ('g', 'g.1'), so read the raw line."""
    with _open_text(path) as handle:
        header = next(csv.reader(handle, delimiter=sep), [])
    cells = header[-n_columns:] if n_columns else []
    seen: set[str] = set()
    repeated = []
    for cell in cells:
        if cell in seen and cell not in repeated:
            repeated.append(cell)
        seen.add(cell)
    return repeated


def first_non_numeric(frame: pd.DataFrame) -> tuple[str, str, str] | None:
    """(row ID, column, value) of the first cell that does not parse as a number."""
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series):
            continue
        parsed = pd.to_numeric(series, errors="coerce")
        bad = parsed.isna() & series.notna()
        if bad.any():
            row = bad.idxmax()
            return str(row), str(column), str(series.loc[row])
    return None


def read_delimited(
    path: str | Path, orientation: str = "samples_as_rows", sep: str | None = None
) -> ad.AnnData:
    """Read a CSV/TSV (optionally gzipped) whose first column holds row IDs.

    Parameters
    ----------
    path
        The table. The separator comes from the extension unless ``sep`` is given.
    orientation
        ``samples_as_rows`` or ``genes_as_rows``.

    Raises
    ------
    MedgenInputError
        For ragged rows (naming the line) or non-numeric cells (naming row and column).
    """
    path = Path(path)
    sep = sep or separator(path)
    if not path.is_file():
        raise MedgenInputError(f"expression table {path} does not exist")
    try:
        frame = pd.read_csv(path, sep=sep, index_col=0)
    except pd.errors.ParserError as err:
        raise MedgenInputError(f"{path} is not a well-formed table: {err}") from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as err:
        raise MedgenInputError(f"{path} could not be read as a table: {err}") from None
    if pd.api.types.is_numeric_dtype(frame.index):
        # numeric-looking IDs ('0010', '1.10', '1E5' probes) must stay as written: pandas
        # parsed them as numbers, so read the ID column again as text
        ids = pd.read_csv(path, sep=sep, usecols=[0], dtype=str).iloc[:, 0]
        frame.index = pd.Index(ids.to_numpy(), name=frame.index.name, dtype=object)
    repeated = _duplicate_header_cells(path, sep, frame.shape[1])
    if repeated:
        what = "gene" if orientation == "samples_as_rows" else "sample"
        raise MedgenInputError(
            f"{path}: duplicate {what} IDs in the header: {', '.join(map(repr, repeated[:5]))}"
        )
    bad_cell = first_non_numeric(frame)
    if bad_cell is not None:
        row, column, value = bad_cell
        raise MedgenInputError(
            f"{path}: non-numeric value {value!r} in row '{row}', column '{column}'; "
            "expected numbers only outside the first (ID) column and the header"
        )
    # pandas pads short rows with NaN; only then is a line-by-line scan worth its time.
    if frame.isna().to_numpy().any():
        ragged = _find_ragged_row(path, sep)
        if ragged is not None:
            line, seen, expected = ragged
            raise MedgenInputError(
                f"{path}: line {line} has {seen} fields, expected {expected} (ragged rows)"
            )
    return frame_to_anndata(frame, orientation, path)
