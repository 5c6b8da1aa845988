"""Read expression tables (CSV/TSV, parquet, h5ad, GCTX, Xena) into samples x genes AnnData.

Every reader returns an AnnData with samples as ``obs`` and genes as ``var`` (string IDs,
float64 values), whatever the file's orientation, so that preprocessing sees one shape.
CSV/TSV reading and the table -> AnnData conversion live in ``medgen.data.io.delimited``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from medgen.data.io.delimited import (
    check_orientation,
    file_suffix,
    first_non_numeric,
    frame_to_anndata,
    read_delimited,
)
from medgen.data.io.gctx import read_gctx
from medgen.data.io.xena import read_xena
from medgen.errors import MedgenInputError

Format = Literal["auto", "csv", "tsv", "parquet", "h5ad", "gctx", "xena"]
FORMATS: tuple[str, ...] = ("auto", "csv", "tsv", "parquet", "h5ad", "gctx", "xena")

# File name endings (compression stripped) -> format; 'xena' is never guessed because a
# Xena table is a CSV/TSV whose gene IDs only show their SYMBOL|EntrezID form once read.
_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".tab": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".h5ad": "h5ad", ".gctx": "gctx",
}


def guess_format(path: str | Path) -> str:
    """Guess a table's format from its file name.

    Raises
    ------
    MedgenInputError
        If the name ends in none of the known suffixes.
    """
    path = Path(path)
    fmt = _SUFFIX_FORMATS.get(file_suffix(path))
    if fmt is None:
        known = ", ".join(sorted(_SUFFIX_FORMATS))
        raise MedgenInputError(
            f"cannot guess the format of {path} from its name (format 'auto' knows {known}, "
            "optionally .gz); set the table's 'format' to one of: "
            + ", ".join(f for f in FORMATS if f != "auto")
        )
    return fmt


def read_parquet(path: str | Path, orientation: str = "samples_as_rows") -> ad.AnnData:
    """Read a parquet table; row IDs come from its index, else from its first text column."""
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"expression table {path} does not exist")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for bad files
        raise MedgenInputError(f"{path} could not be read as parquet: {err}") from None
    if isinstance(frame.index, pd.RangeIndex) and frame.shape[1] > 0:
        first = frame.columns[0]
        if not pd.api.types.is_numeric_dtype(frame[first]):
            frame = frame.set_index(first)
    bad_cell = first_non_numeric(frame)
    if bad_cell is not None:
        row, column, value = bad_cell
        raise MedgenInputError(
            f"{path}: non-numeric value {value!r} in row '{row}', column '{column}'"
        )
    return frame_to_anndata(frame, orientation, path)


def read_h5ad(path: str | Path) -> ad.AnnData:
    """Read an h5ad file (samples x genes by AnnData convention; X made dense float64)."""
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"expression table {path} does not exist")
    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for a bad file
        raise MedgenInputError(f"{path} could not be read as h5ad: {err}") from None
    matrix = adata.X
    if matrix is None:
        raise MedgenInputError(f"{path} has no X matrix")
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    adata.X = np.asarray(matrix, dtype=np.float64)
    adata.obs_names = adata.obs_names.astype(str)
    adata.var_names = adata.var_names.astype(str)
    return adata


def read_table(
    path: str | Path, format: str = "auto", orientation: str = "samples_as_rows"
) -> ad.AnnData:
    """Read any supported expression table into a samples x genes AnnData.

    Parameters
    ----------
    path
        The table.
    format
        One of auto, csv, tsv, parquet, h5ad, gctx, xena. 'auto' guesses from the file
        name (never 'xena': declare it).
    orientation
        ``samples_as_rows`` or ``genes_as_rows``; used by csv, tsv, parquet and xena.
        h5ad and GCTX carry their own orientation.

    Returns
    -------
    anndata.AnnData
        Samples as obs, genes as var, float64 X.
    """
    if format not in FORMATS:
        raise MedgenInputError(
            f"table format {format!r} for {path}; expected one of: {', '.join(FORMATS)}"
        )
    check_orientation(orientation)
    fmt = guess_format(path) if format == "auto" else format
    if fmt in ("csv", "tsv"):
        return read_delimited(path, orientation, sep="," if fmt == "csv" else "\t")
    if fmt == "parquet":
        return read_parquet(path, orientation)
    if fmt == "h5ad":
        return read_h5ad(path)
    if fmt == "gctx":
        return read_gctx(path)
    return read_xena(path, orientation)
