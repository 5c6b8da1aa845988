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
from medgen.data.io.geo import is_series_matrix, read_series_matrix
from medgen.data.io.xena import read_xena
from medgen.errors import MedgenInputError

H5AD_X, H5AD_RAW, H5AD_LAYERS = "X", "raw", "layers/"  # the matrices an h5ad table names

Format = Literal["auto", "csv", "tsv", "parquet", "h5ad", "gctx", "xena", "series_matrix"]
FORMATS: tuple[str, ...] = ("auto", "csv", "tsv", "parquet", "h5ad", "gctx", "xena",
                            "series_matrix")

# File name endings (compression stripped) -> format; 'xena' is never guessed because a
# Xena table is a CSV/TSV whose gene IDs only show their SYMBOL|EntrezID form once read.
_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".tab": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".h5ad": "h5ad", ".gctx": "gctx",
}


def guess_format(path: str | Path) -> str:
    """Guess a table's format from its file name (GEO's ``..._series_matrix.txt[.gz]``:
    ``series_matrix``).

    Raises
    ------
    MedgenInputError
        If the name ends in none of the known suffixes.
    """
    path = Path(path)
    if is_series_matrix(path):
        return "series_matrix"
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


def non_integer_fraction(values: np.ndarray, max_values: int = 1_000_000) -> float:
    """Fraction of values that are not whole numbers (on an even subsample of large arrays)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        return 0.0
    flat = flat[:: max(1, flat.size // max_values)]
    return float(np.mean(np.abs(flat - np.rint(flat)) > 1e-6))


def _h5ad_matrices(adata: ad.AnnData) -> dict[str, object]:
    """Every matrix of an h5ad file a table can be read from, by its config name."""
    matrices: dict[str, object] = {}
    if adata.X is not None:
        matrices[H5AD_X] = adata.X
    matrices.update({f"{H5AD_LAYERS}{name}": m for name, m in adata.layers.items()})
    if adata.raw is not None:
        matrices[H5AD_RAW] = adata.raw
    return matrices


def _dense(matrix: object) -> np.ndarray:
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=np.float64)


def read_h5ad(path: str | Path, layer: str = H5AD_X, expect_counts: bool = False) -> ad.AnnData:
    """Read an h5ad file (samples x genes by AnnData convention) from one of its matrices.

    Parameters
    ----------
    path
        The file.
    layer
        ``'X'``, ``'raw'`` (``.raw.X``, whose genes may be more than X's) or
        ``'layers/<name>'``.
    expect_counts
        The table is declared as counts: refuse an ``X`` with non-integer values (normalised
        or logged, the usual layout of public files) when another matrix holds integers.

    Returns
    -------
    anndata.AnnData
        ``obs`` of the file, ``var`` of the chosen matrix, dense float64 X.

    Raises
    ------
    MedgenInputError
        The file cannot be read, ``layer`` is not in it (the message lists those that
        are), or X is not counts while a layer or ``.raw`` is.
    """
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"expression table {path} does not exist")
    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for a bad file
        raise MedgenInputError(f"{path} could not be read as h5ad: {err}") from None
    matrices = _h5ad_matrices(adata)
    if layer not in matrices:
        raise MedgenInputError(
            f"{path} has no matrix '{layer}' (the table's 'layer'); it holds: "
            + (", ".join(matrices) or "none")
        )
    chosen = matrices[layer]
    var = chosen.var.copy() if layer == H5AD_RAW else adata.var.copy()
    values = _dense(chosen.X if layer == H5AD_RAW else chosen)
    if expect_counts and layer == H5AD_X and non_integer_fraction(values) > 0:
        counts = [name for name, m in matrices.items()
                  if name != H5AD_X and non_integer_fraction(_dense(m.X if name == H5AD_RAW
                                                                    else m)) == 0]
        if counts:
            raise MedgenInputError(
                f"{path}: X holds non-integer (normalised?) values while {', '.join(counts)} "
                f"hold integer counts; set the table's layer to '{counts[0]}' to read the "
                "counts, or keep layer 'X' with expression.data_type: log_expression if X "
                "is log-scale"
            )
    out = ad.AnnData(X=values, obs=adata.obs.copy(), var=var)
    out.obs_names = out.obs_names.astype(str)
    out.var_names = out.var_names.astype(str)
    return out


def read_table(
    path: str | Path,
    format: str = "auto",
    orientation: str = "samples_as_rows",
    layer: str = H5AD_X,
    expect_counts: bool = False,
) -> ad.AnnData:
    """Read any supported expression table into a samples x genes AnnData.

    Parameters
    ----------
    path
        The table.
    format
        One of auto, csv, tsv, parquet, h5ad, gctx, xena, series_matrix (GEO, probe
        level). 'auto' guesses from the file
        name (never 'xena': declare it).
    orientation
        ``samples_as_rows`` or ``genes_as_rows``; used by csv, tsv, parquet and xena.
        h5ad and GCTX carry their own orientation.
    layer, expect_counts
        h5ad only: the matrix to read and whether counts are expected (:func:`read_h5ad`).

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
        return read_h5ad(path, layer, expect_counts)
    if fmt == "gctx":
        return read_gctx(path)
    if fmt == "series_matrix":  # probe level: samples x ID_REF ids, sample metadata as obs
        values, samples, _ = read_series_matrix(path)
        return ad.AnnData(X=values.T.to_numpy(np.float64), obs=samples,
                          var=pd.DataFrame(index=values.index))
    return read_xena(path, orientation)
