"""Infer the target genes of new landmark profiles with a trained expression-inference
model (GGAN, D-GEX), as CMap's L1000 pipeline infers its non-measured genes.

Outputs follow CMap's convention for inferred data: one GCTX (and one ``.h5ad``) whose rows
are the input's rows (values and row metadata as read; ``inferred`` 0, ``model_landmark`` 1
on the rows the model read) followed by the inferred target genes (``inferred`` 1,
``pr_gene_symbol`` = the gene, ``pr_is_lmark`` 0, ``training_mean`` / ``training_sd``, other
metadata -666, CMap's missing value; named by gene, or ``inferred:<gene>`` when a gene is
also an input row id; ``also_landmark`` 1 on a target gene that is also one of the model's
landmarks, D-GEX's maps hold 445), and whose columns are the input's samples with all their
metadata.
Profiles are read, inferred and written ``chunk_size`` at a time, so memory does not grow
with their number.

Scales (``input_scale``):
- ``data``: the profiles are in the training data's units (e.g. RMA log2); landmarks are
  standardised with the training means and standard deviations and the targets come back in
  the training data's units.
- ``zscore``: the profiles are per-gene z-scores (L1000 level 4: robust z-scores against
  the plate's population). They are taken as standardised landmark values directly,
  clipped to +-clip_z, and the targets are written as z-scores on the same footing (the
  model's standardised outputs): "how many training-set standard deviations above its
  training mean the gene is inferred to be, given the landmarks' deviations". Multiply by
  ``training_sd`` and add ``training_mean`` (row metadata) for training-scale values.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from anndata.io import write_elem
from tqdm.auto import tqdm

from medgen import atomic, checkpoint, provenance
from medgen.data.gene_matching import averaging_matrix, match_genes
from medgen.data.io.gctx_stream import GctxWriter, iter_gctx_columns, read_gctx_meta
from medgen.data.io.tables import guess_format, read_table
from medgen.errors import MedgenInputError
from medgen.models.expression_inference import GeneInferenceModel
from medgen.models.expression_inference import load as load_inference_model

log = logging.getLogger(__name__)

MISSING = -666  # CMap's placeholder for metadata without a value
M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def bounded_heap(threshold: int = 1 << 20) -> None:
    """Serve buffers above ``threshold`` bytes from mmap (glibc), so the tens of MB each
    chunk allocates go back to the OS when freed: with glibc's adaptive threshold they stay
    in a fragmented heap and peak memory crept up by 10% between 10,000 and 100,000
    profiles (benchmarks/expression_inference.py). A no-op elsewhere."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(M_MMAP_THRESHOLD, int(threshold))
    except OSError:
        pass


def read_profiles(cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame,
                                                Iterator[tuple[np.ndarray, np.ndarray]]]:
    """(row metadata, column metadata, chunks) of the new profiles in ``cfg``
    (``expression_inference.infer``). GCTX files are streamed; other formats are read whole
    and served in chunks. Chunks: (sample ids, values (n_chunk, n_rows) float32)."""
    path, fmt = cfg["path"], cfg["format"]
    fmt = guess_format(path) if fmt == "auto" else fmt
    if fmt == "gctx":
        rows, cols = read_gctx_meta(path)
        return rows, cols, iter_gctx_columns(path, cfg["chunk_size"])
    adata = read_table(path, fmt, cfg["orientation"])
    values = np.asarray(adata.X, dtype=np.float32)
    ids = adata.obs_names.astype(str).to_numpy()
    size = cfg["chunk_size"]
    chunks = ((ids[i:i + size], values[i:i + size]) for i in range(0, len(ids), size))
    return adata.var.copy(), adata.obs.copy(), chunks


def landmark_columns(rows: pd.DataFrame, model: GeneInferenceModel, gene_field: str,
                     path: str, duplicates: str = "refuse") -> np.ndarray:
    """(n_rows, n_landmarks) averaging matrix: input rows -> the model's landmarks, matched
    by gene name with ``medgen.data.gene_matching.match_genes`` (a landmark on several rows:
    refused, or averaged with ``duplicates: mean``). MedgenInputError naming the missing
    landmarks, the duplicated ones, or an unknown ``gene_field``."""
    if gene_field and gene_field not in rows.columns:
        raise MedgenInputError(
            f"{path}: no row-metadata field '{gene_field}' (expression_inference.infer."
            f"gene_field); fields: {', '.join(map(str, rows.columns)) or 'none'}")
    genes = (rows[gene_field] if gene_field else rows.index.to_series()).astype(str).to_numpy()
    positions, missing = match_genes(genes, model.landmarks, duplicates, path,
                                     "expression_inference.infer.duplicate_genes")
    if missing:
        raise MedgenInputError(
            f"{path}: {len(missing)} of the model's {len(model.landmarks)} landmark genes are "
            f"not among its rows (first: {missing[:5]}); the model was trained on another "
            "gene set, or gene_field names the wrong field")
    return averaging_matrix(len(genes), positions)


def output_rows(rows: pd.DataFrame, model: GeneInferenceModel, used: np.ndarray
                ) -> pd.DataFrame:
    """The output's row metadata: the input's rows (``model_landmark`` 1 for the rows the
    model read), then one row per inferred target (named by gene, or ``inferred:<gene>``
    when a gene is also an input row id; ``also_landmark`` 1 when the gene is also one of
    the model's landmarks).

    Raises MedgenInputError when the output's row ids would not be unique (an input row id
    used twice, or already of the form ``inferred:<target>``).
    """
    landmark_rows = rows.copy()
    targets = pd.DataFrame(index=pd.Index(model.targets))
    clash = sorted(set(targets.index) & set(landmark_rows.index.astype(str)))
    if clash:  # a target named like an input row id: keep both rows, distinctly named
        targets.index = [f"inferred:{g}" for g in model.targets]
    for column in landmark_rows.columns:
        numeric = pd.api.types.is_numeric_dtype(landmark_rows[column])
        targets[column] = MISSING if numeric else str(MISSING)
    targets["pr_gene_symbol"] = model.targets
    targets["pr_is_lmark"] = 0
    targets["inferred"] = 1  # the input's own fields (L1000's pr_is_inf) keep their meaning
    targets["model_landmark"] = 0
    targets["also_landmark"] = np.isin(model.targets, model.landmarks).astype(np.uint8)
    targets["training_mean"] = model.y_scaler.mean
    targets["training_sd"] = model.y_scaler.sd
    landmark_rows["inferred"] = 0
    landmark_rows["model_landmark"] = used.astype(np.uint8)  # rows the model read
    landmark_rows["also_landmark"] = np.uint8(0)  # flags inferred targets only
    for column, value in (("pr_is_lmark", 1), ("training_mean", np.nan),
                          ("training_sd", np.nan)):
        if column not in landmark_rows:
            landmark_rows[column] = value
    if "pr_gene_symbol" not in landmark_rows:
        landmark_rows["pr_gene_symbol"] = landmark_rows.index.astype(str)
    out = pd.concat([landmark_rows, targets[landmark_rows.columns]])
    duplicated = out.index[out.index.astype(str).duplicated()].astype(str).unique().tolist()
    if duplicated:  # GCTX and h5ad rows are looked up by id
        raise MedgenInputError(
            f"output row ids would repeat (first: {duplicated[:5]}): the input's row ids "
            "must be unique and not of the form 'inferred:<target gene>'")
    for column in out.columns:  # metadata must be all text or all numbers per field
        if out[column].dtype == object:
            out[column] = out[column].astype(str)
    return out


def infer_targets(model_path: str | os.PathLike, cfg: dict[str, Any],
                  out_gctx: str | os.PathLike, out_h5ad: str | os.PathLike,
                  device: str = "cpu") -> dict[str, Any]:
    """Infer the targets of the profiles ``cfg`` names and write GCTX and h5ad.

    Parameters
    ----------
    model_path
        A ``model.pt`` of an expression-inference family.
    cfg
        The ``expression_inference.infer`` section (path, format, orientation, gene_field,
        input_scale, clip_z, chunk_size).
    out_gctx, out_h5ad
        Outputs (rows: input landmark rows then inferred targets; columns: samples); both
        written atomically, with the units and provenance in their attributes / ``uns``.

    Returns
    -------
    A summary (profiles, landmarks, targets, units, fraction of clipped values).

    Raises
    ------
    MedgenInputError
        A model of another task, missing landmark genes, non-finite landmark values (the
        message names the samples), or an unreadable input.
    """
    bounded_heap()
    model = load_inference_model(model_path, device)
    ckpt = checkpoint.load(model_path)
    path = cfg["path"]
    rows, cols, chunks = read_profiles(cfg)
    cols.index = cols.index.astype(str)
    weights = landmark_columns(rows, model, cfg["gene_field"], path, cfg["duplicate_genes"])
    used = weights.any(axis=1)  # rows of genes the model does not use are never read
    weights = weights[used]
    log.info("%s: %d of %d input rows hold the model's %d landmark genes; %d rows unused",
             path, int(used.sum()), len(rows), len(model.landmarks), int((~used).sum()))
    zscore = cfg["input_scale"] == "zscore"
    units = ("z-scores: input landmarks as read; inferred targets in training-set standard "
             "deviations from the training mean (training_mean / training_sd per row give "
             "the training scale)" if zscore else
             f"the training data's units ({ckpt.provenance.get('units', 'see provenance')})")
    meta = {
        "units": units, "input_scale": cfg["input_scale"], "clip_z": cfg["clip_z"],
        "model": str(model_path), "family": ckpt.family,
        "provenance": json.dumps(provenance.collect(config=cfg, seed=ckpt.seed,
                                                    inputs=[model_path, path]), default=str),
    }
    out_rows = output_rows(rows, model, used)
    shared = int(out_rows["also_landmark"].sum())
    meta["targets_also_landmarks"] = shared
    if shared:
        log.info("%d of the model's %d targets are also its landmarks (other probes in "
                 "training): inferred rows marked also_landmark 1, beside the input's "
                 "measured rows", shared, len(model.targets))
    n_in, clipped, done = len(rows), 0, 0
    with GctxWriter(out_gctx, out_rows, cols, attrs=meta) as gctx, \
            _H5adWriter(out_h5ad, out_rows, cols, meta) as h5ad:
        for ids, values in tqdm(chunks, total=-(-len(cols) // cfg["chunk_size"]),
                                desc="inferring targets", unit="chunk"):
            x = values[:, used] @ weights
            bad = ~np.isfinite(x).all(axis=1)
            if bad.any():
                genes = [model.landmarks[j] for j in np.flatnonzero(~np.isfinite(x).all(axis=0))]
                raise MedgenInputError(
                    f"{path}: NaN or infinite values of landmark genes {genes[:5]} in "
                    f"profiles {[str(i) for i in ids[bad][:5]]}")
            z = x if zscore else model.x_scaler.transform(x)
            outside = int((np.abs(z) > cfg["clip_z"]).sum())
            if done == 0 and outside > 0.2 * z.size:
                # profiles on another scale than the config says (z-scores read as log2...)
                raise MedgenInputError(
                    f"{path}: {outside / z.size:.0%} of the standardised landmark values lie "
                    f"beyond +-{cfg['clip_z']} (expression_inference.infer.input_scale: "
                    f"{cfg['input_scale']}); are the profiles on another scale? "
                    + ("L1000 level-4 and other z-scores need input_scale: zscore"
                       if not zscore else "z-scores should rarely exceed it"))
            clipped += outside
            y = model.predict_standardised(np.clip(z, -cfg["clip_z"], cfg["clip_z"]))
            if not zscore:
                y = model.to_data_units(y)
            block = np.concatenate([values, y.astype(np.float32)], axis=1)
            gctx.write(done, block)
            h5ad.write(done, block)
            done += len(ids)
    summary = {"profiles": done, "input_rows": n_in, "landmarks": len(model.landmarks),
               "targets": len(model.targets), "units": units,
               "clipped_fraction": clipped / max(done * len(model.landmarks), 1)}
    log.info("inferred %d targets for %d profiles (%s); %.3f%% of standardised landmark "
             "values clipped to +-%s", len(model.targets), done, cfg["input_scale"],
             100 * summary["clipped_fraction"], cfg["clip_z"])
    return summary


class _H5adWriter:
    """An ``.h5ad`` (AnnData on-disk format: samples x rows) written block by block, then
    moved into place; obs = the sample metadata, var = the row metadata."""

    def __init__(self, path, rows: pd.DataFrame, cols: pd.DataFrame,
                 uns: dict[str, Any]) -> None:
        self.path, self.rows, self.cols, self.uns = Path(path), rows, cols, uns

    def __enter__(self) -> _H5adWriter:
        self._atomic = atomic.atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w")
        self._file.attrs["encoding-type"], self._file.attrs["encoding-version"] = \
            "anndata", "0.1.0"
        write_elem(self._file, "obs", _text_columns(self.cols))
        write_elem(self._file, "var", _text_columns(self.rows))
        write_elem(self._file, "uns", {k: str(v) for k, v in self.uns.items()})
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(self._file, key, {})
        self._x = self._file.create_dataset("X", (len(self.cols), len(self.rows)), "float32",
                                            chunks=(min(len(self.cols), 256), len(self.rows)))
        self._x.attrs["encoding-type"], self._x.attrs["encoding-version"] = "array", "0.2.0"
        return self

    def write(self, start: int, block: np.ndarray) -> None:
        self._x[start:start + len(block)] = block

    def __exit__(self, *exc) -> bool:
        self._file.close()
        return self._atomic.__exit__(*exc)


def _text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns as str (anndata writes mixed objects badly); index as str."""
    frame = frame.copy()
    frame.index = frame.index.astype(str)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype(str)
    return frame
