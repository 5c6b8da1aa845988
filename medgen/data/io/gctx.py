"""Read GCTX (the HDF5 matrix format of LINCS/CMap, as written by cmapPy) into AnnData.

Layout: ``/0/DATA/0/matrix`` plus row (gene/probe) and column (sample) metadata under
``/0/META/ROW`` and ``/0/META/COL``, each with an ``id`` dataset. cmapPy stores the matrix
transposed, samples x genes, so ``matrix.shape == (len(COL/id), len(ROW/id))``; the shape is
checked against both id lists rather than assumed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from medgen.errors import MedgenInputError

logger = logging.getLogger(__name__)

MATRIX_PATH = "/0/DATA/0/matrix"
ROW_META_PATH = "/0/META/ROW"
COL_META_PATH = "/0/META/COL"


def _decode(values: np.ndarray, path: Path, dataset: str) -> np.ndarray:
    """HDF5 fixed-length strings come back as bytes; make them str.

    Bytes that are not UTF-8 (a Latin-1 micro sign in a dose unit, say) are decoded as
    Latin-1, which never fails, and the first such value is logged with file, dataset and
    position.
    """
    if values.dtype.kind not in ("S", "O"):
        return values
    out = np.empty(len(values), dtype=object)
    fallback = []
    for i, value in enumerate(values):
        if not isinstance(value, bytes):
            out[i] = str(value)
            continue
        try:
            out[i] = value.decode("utf-8")
        except UnicodeDecodeError:
            out[i] = value.decode("latin-1")
            fallback.append(i)
    if fallback:
        logger.warning(
            "GCTX file %s: %d values of %s are not UTF-8 (first at position %d, %r); read "
            "them as Latin-1 (%r)", path, len(fallback), dataset, fallback[0],
            values[fallback[0]], out[fallback[0]],
        )
    return out


def _read_meta(handle: h5py.File, group_path: str, path: Path) -> pd.DataFrame:
    if group_path not in handle or "id" not in handle[group_path]:
        raise MedgenInputError(f"GCTX file {path} has no dataset {group_path}/id")
    group = handle[group_path]
    ids = _decode(group["id"][()], path, f"{group_path}/id")
    columns = {}
    for name in sorted(group):
        if name == "id":
            continue
        values = group[name][()]
        if values.ndim != 1 or len(values) != len(ids):
            raise MedgenInputError(
                f"GCTX file {path}: {group_path}/{name} has shape {values.shape}; "
                f"expected ({len(ids)},) like {group_path}/id"
            )
        columns[name] = _decode(values, path, f"{group_path}/{name}")
    return pd.DataFrame(columns, index=pd.Index(ids.astype(str), name=None))


def read_gctx(path: str | Path) -> ad.AnnData:
    """Read a GCTX file as samples (COL) x genes (ROW).

    Returns
    -------
    anndata.AnnData
        ``obs`` holds the column metadata, ``var`` the row metadata, X is float64.

    Raises
    ------
    MedgenInputError
        If the file is not HDF5, lacks the matrix or an id list, or the matrix shape
        matches neither orientation of the id lists.
    """
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"GCTX file {path} does not exist")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise MedgenInputError(f"{path} is not an HDF5/GCTX file: {err}") from None
    with handle:
        if MATRIX_PATH not in handle or not isinstance(handle[MATRIX_PATH], h5py.Dataset):
            raise MedgenInputError(
                f"GCTX file {path} has no matrix dataset {MATRIX_PATH}"
            )
        var = _read_meta(handle, ROW_META_PATH, path)
        obs = _read_meta(handle, COL_META_PATH, path)
        matrix = np.asarray(handle[MATRIX_PATH][()], dtype=np.float64)
    n_samples, n_genes = len(obs), len(var)
    if matrix.shape == (n_samples, n_genes):
        values = matrix  # cmapPy's layout
    elif matrix.shape == (n_genes, n_samples):
        values = matrix.T
    else:
        raise MedgenInputError(
            f"GCTX file {path}: {MATRIX_PATH} has shape {matrix.shape}, which fits neither "
            f"{n_samples} column ids x {n_genes} row ids nor the transpose"
        )
    return ad.AnnData(X=values, obs=obs, var=var)
