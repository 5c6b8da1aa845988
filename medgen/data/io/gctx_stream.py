"""Stream GCTX files in sample chunks: read the metadata alone, iterate over the matrix a
block of samples at a time, and write a new file block by block, so memory is bounded by the
chunk, not by the number of profiles (L1000 compendia hold a million of them).

The layout is cmapPy's, the one ``medgen.data.io.gctx.read_gctx`` reads: ``/0/DATA/0/matrix``
stored samples x genes, i.e. shape ``(len(/0/META/COL/id), len(/0/META/ROW/id))``, row (gene)
and column (sample) metadata as one 1-D dataset per field beside ``id``, and the root attribute
``version = "GCTX1.0"``. Reading also accepts the transposed matrix, as ``read_gctx`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from medgen.atomic import atomic_path
from medgen.data.io.gctx import COL_META_PATH, MATRIX_PATH, ROW_META_PATH, _decode, _read_meta
from medgen.errors import MedgenInputError

GCTX_VERSION = "GCTX1.0"
CHUNK_BYTES = 1 << 20  # HDF5 chunk of about 1 MiB: whole samples, cheap to read a few at once
META_COMPRESSION = "gzip"  # metadata are small and repetitive; cmapPy compresses them too


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise MedgenInputError(f"GCTX file {path} does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise MedgenInputError(f"{path} is not an HDF5/GCTX file: {err}") from None


def _matrix_layout(handle: h5py.File, path: Path) -> tuple[h5py.Dataset, int, int, bool]:
    """(matrix dataset, n_rows (genes), n_cols (samples), transposed) without reading it."""
    if MATRIX_PATH not in handle or not isinstance(handle[MATRIX_PATH], h5py.Dataset):
        raise MedgenInputError(f"GCTX file {path} has no matrix dataset {MATRIX_PATH}")
    lengths = []
    for group_path in (ROW_META_PATH, COL_META_PATH):
        if group_path not in handle or "id" not in handle[group_path]:
            raise MedgenInputError(f"GCTX file {path} has no dataset {group_path}/id")
        lengths.append(len(handle[group_path]["id"]))
    n_rows, n_cols = lengths
    matrix = handle[MATRIX_PATH]
    if matrix.shape == (n_cols, n_rows):
        return matrix, n_rows, n_cols, False  # cmapPy's layout (preferred when square)
    if matrix.shape == (n_rows, n_cols):
        return matrix, n_rows, n_cols, True
    raise MedgenInputError(
        f"GCTX file {path}: {MATRIX_PATH} has shape {matrix.shape}, which fits neither "
        f"{n_cols} column ids x {n_rows} row ids nor the transpose"
    )


def read_gctx_meta(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a GCTX file's row and column metadata without reading its matrix.

    Parameters
    ----------
    path
        The GCTX file.

    Returns
    -------
    row_meta : pandas.DataFrame
        One row per gene/probe (``/0/META/ROW``), indexed by ``id``; as ``read_gctx``'s
        ``var``.
    col_meta : pandas.DataFrame
        One row per sample (``/0/META/COL``), indexed by ``id``; as ``read_gctx``'s ``obs``.

    Raises
    ------
    MedgenInputError
        If the file is missing or not HDF5, lacks the matrix or an id list, a metadata field's
        length differs from its ids, or the matrix shape fits neither orientation of the ids.
    """
    path = Path(path)
    with _open(path) as handle:
        _matrix_layout(handle, path)  # metadata that disagree with the matrix are an error here
        return _read_meta(handle, ROW_META_PATH, path), _read_meta(handle, COL_META_PATH, path)


def iter_gctx_columns(path: str | Path, chunk_size: int
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over a GCTX file's samples (columns) in chunks, reading only one chunk at a time.

    Parameters
    ----------
    path
        The GCTX file.
    chunk_size
        Samples per chunk (>= 1); the last chunk may be shorter. Memory is about
        ``chunk_size * n_rows * 4`` bytes (plus the stored dtype's copy if not float32).

    Yields
    ------
    ids : numpy.ndarray of str, shape (n_chunk,)
        The chunk's sample ids (``/0/META/COL/id``), in file order.
    values : numpy.ndarray of float32, shape (n_chunk, n_rows)
        The chunk's values, samples x genes (rows in ``/0/META/ROW/id`` order).

    Raises
    ------
    MedgenInputError
        As ``read_gctx_meta`` for a bad file (raised at the first ``next()``), or for a
        ``chunk_size`` below 1.

    Notes
    -----
    The file stays open until the iterator is exhausted or closed; close an abandoned one with
    ``contextlib.closing``.
    """
    if int(chunk_size) < 1:
        raise MedgenInputError(f"chunk_size must be at least 1 sample, got {chunk_size}")
    path = Path(path)
    with _open(path) as handle:
        matrix, _, n_cols, transposed = _matrix_layout(handle, path)
        ids = handle[COL_META_PATH]["id"]
        for start in range(0, n_cols, int(chunk_size)):
            stop = min(start + int(chunk_size), n_cols)
            if transposed:  # genes x samples on disk: a strided read, then samples x genes
                block = np.ascontiguousarray(matrix[:, start:stop].T, dtype=np.float32)
            else:
                block = matrix.astype(np.float32)[start:stop]  # h5py converts while reading
            yield _decode(ids[start:stop], path, f"{COL_META_PATH}/id").astype(str), block


def _encode_strings(values: list[str]) -> tuple[np.ndarray, Any]:
    """UTF-8 fixed-length strings (cmapPy writes fixed-length; UTF-8 keeps non-ASCII text):
    (bytes array, HDF5 dtype). Trailing NUL characters do not survive fixed-length storage."""
    encoded = [v.encode("utf-8") for v in values]
    length = max([len(b) for b in encoded] + [1])  # HDF5 has no zero-length strings
    dtype = h5py.string_dtype("utf-8", length)  # numpy 'S' tagged with the UTF-8 charset
    return np.array(encoded, dtype=dtype), dtype


def _write_meta(group: h5py.Group, frame: pd.DataFrame, what: str, path: Path) -> None:
    """Index -> ``id``; numeric columns as numbers (bool as uint8), the rest as strings."""
    ids = frame.index.astype(str)
    if not ids.is_unique:
        raise MedgenInputError(f"writing GCTX {path}: duplicate {what} ids "
                               f"{sorted(set(ids[ids.duplicated()]))[:5]}")
    data, dtype = _encode_strings(list(ids))
    group.create_dataset("id", data=data, dtype=dtype, compression=META_COMPRESSION)
    for name in frame.columns:
        column = frame[name]
        if str(name) == "id" or "/" in str(name):
            raise MedgenInputError(f"writing GCTX {path}: {what} metadata column {name!r} "
                                   "cannot be stored ('id' is the index; '/' splits HDF5 paths)")
        if pd.api.types.is_bool_dtype(column) and not column.isna().any():
            data, dtype = column.to_numpy(np.uint8), None  # HDF5 has no portable boolean
        elif pd.api.types.is_numeric_dtype(column):
            dtype = None
            if column.isna().any():  # nullable integers with missing values: float with NaN
                data = column.to_numpy(np.float64, na_value=np.nan)
            else:
                data = column.to_numpy()
                if data.dtype == object:  # nullable extension dtypes without missing values
                    data = data.astype(column.dtype.numpy_dtype)
        else:
            if column.isna().any():
                raise MedgenInputError(
                    f"writing GCTX {path}: {what} metadata column {name!r} has missing values "
                    f"(samples/genes {list(frame.index[column.isna()][:5])}); GCTX strings "
                    "cannot be missing: fill them (cmapPy uses '-666')")
            data, dtype = _encode_strings([str(v) for v in column])
        group.create_dataset(str(name), data=data, dtype=dtype, compression=META_COMPRESSION)


def _attr_value(key: str, value: Any) -> Any:
    """HDF5 attributes: strings and numbers as they are; dicts and lists as JSON text."""
    if isinstance(value, (str, bytes, int, float, bool, np.generic)):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError) as err:
        raise MedgenInputError(f"GCTX attribute {key!r} cannot be stored: {err}") from None


class GctxWriter:
    """Write a GCTX file block by block, atomically (a context manager).

    The file is built at a temporary sibling (``medgen.atomic.atomic_path``) and moved into
    place only when the block exits cleanly and every sample was written; on an exception
    the temporary file is removed, so no half-written GCTX is ever left.

    Parameters
    ----------
    path
        The GCTX file to create (replaced if it exists).
    row_meta
        Gene/probe metadata, one row per matrix column on disk (n_rows); the index is written
        as ``/0/META/ROW/id``. Numeric columns are stored as numbers (bool as uint8), others as
        UTF-8 fixed-length strings.
    col_meta
        Sample metadata, one row per profile (n_cols), index -> ``/0/META/COL/id``; as
        ``row_meta``.
    dtype
        Matrix dtype on disk (default float32, as cmapPy).
    attrs
        Extra root attributes (an ``AnnData.uns``-like dict: provenance, units notes); strings
        and numbers as they are, dicts and lists as JSON text. ``version`` is reserved.
    chunk_samples
        Samples per HDF5 chunk (default: about 1 MiB of whole samples).
    compression
        None (default: fastest), ``"gzip"`` or ``"lzf"`` for the matrix.

    Raises
    ------
    MedgenInputError
        Empty or duplicate ids, a metadata column that cannot be stored (named ``id``, missing
        strings), a reserved attribute; from ``write``, a block of the wrong shape or out of
        range; at exit, samples never written. Each message names the file.

    Examples
    --------
    >>> with GctxWriter("out.gctx", genes, samples) as out:          # doctest: +SKIP
    ...     for start in range(0, len(samples), 1024):
    ...         out.write(start, predict(x[start:start + 1024]))
    """

    def __init__(self, path: str | Path, row_meta: pd.DataFrame, col_meta: pd.DataFrame,
                 dtype: Any = np.float32, attrs: Mapping[str, Any] | None = None,
                 chunk_samples: int | None = None, compression: str | None = None) -> None:
        self.path = Path(path)
        self.row_meta, self.col_meta = row_meta, col_meta
        self.dtype = np.dtype(dtype)
        self.n_rows, self.n_cols = len(row_meta), len(col_meta)
        if self.n_rows == 0 or self.n_cols == 0:
            raise MedgenInputError(f"writing GCTX {self.path}: no rows ({self.n_rows}) or no "
                                   f"samples ({self.n_cols})")
        self.attrs = dict(attrs or {})
        if "version" in self.attrs:
            raise MedgenInputError(f"writing GCTX {self.path}: attribute 'version' is reserved "
                                   f"(always {GCTX_VERSION})")
        per_sample = self.n_rows * self.dtype.itemsize
        self.chunk_samples = int(chunk_samples or max(1, CHUNK_BYTES // per_sample))
        self.compression = compression
        self._atomic = None
        self._handle: h5py.File | None = None
        self._matrix: h5py.Dataset | None = None
        self._written = np.zeros(self.n_cols, dtype=bool)  # 1 byte per sample: bounded enough

    def __enter__(self) -> GctxWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._handle = h5py.File(tmp, "w")
            self._handle.attrs["version"] = np.bytes_(GCTX_VERSION)  # as cmapPy writes it
            self._handle.attrs["src"] = self.path.name
            for key, value in self.attrs.items():
                self._handle.attrs[key] = _attr_value(key, value)
            _write_meta(self._handle.require_group(ROW_META_PATH), self.row_meta, "row",
                        self.path)
            _write_meta(self._handle.require_group(COL_META_PATH), self.col_meta, "column",
                        self.path)
            self._matrix = self._handle.create_dataset(
                MATRIX_PATH, shape=(self.n_cols, self.n_rows), dtype=self.dtype,
                chunks=(min(self.chunk_samples, self.n_cols), self.n_rows),
                compression=self.compression, fillvalue=np.nan)
        except BaseException as err:
            self._close()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def write(self, start: int, block: np.ndarray) -> None:
        """Write samples ``start : start + len(block)``.

        Parameters
        ----------
        start
            Index of the block's first sample in ``col_meta`` order.
        block
            Values, shape (n_chunk_samples, n_rows): samples x genes in ``row_meta`` order;
            cast to the writer's dtype.

        Raises
        ------
        MedgenInputError
            If the writer is not open, the block is not 2-D with n_rows columns, or it runs
            past the last sample.
        """
        if self._matrix is None:
            raise MedgenInputError(f"GCTX writer for {self.path} is not open (use 'with')")
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[1] != self.n_rows:
            raise MedgenInputError(
                f"writing GCTX {self.path}: block of shape {block.shape}; expected "
                f"(samples, {self.n_rows}) with one column per row-metadata entry")
        start = int(start)
        stop = start + block.shape[0]
        if start < 0 or stop > self.n_cols:
            raise MedgenInputError(f"writing GCTX {self.path}: samples {start}:{stop} are "
                                   f"outside 0:{self.n_cols}")
        self._matrix[start:stop] = np.ascontiguousarray(block, dtype=self.dtype)
        self._written[start:stop] = True

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = self._matrix = None

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._close()
            if exc is None:
                self._check_complete()
        except BaseException as err:
            if exc is None:  # closing or the check failed: remove the temporary, raise that
                self._atomic.__exit__(type(err), err, err.__traceback__)
                raise
        if exc is None:
            self._atomic.__exit__(None, None, None)  # moves the file into place
        else:
            self._atomic.__exit__(exc_type, exc, tb)  # removes the temporary
        return False

    def _check_complete(self) -> None:
        missing = np.flatnonzero(~self._written)
        if len(missing):
            raise MedgenInputError(
                f"writing GCTX {self.path}: {len(missing)} of {self.n_cols} samples were never "
                f"written (first: {list(self.col_meta.index[missing[:5]])}); nothing was "
                "written")
