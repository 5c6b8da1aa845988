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

Inputs: GCTX (streamed), h5ad, CSV/TSV/parquet tables and GEO series matrices; probe ids
map to genes through a GPL annotation (``annotation``, ``medgen.data.io.geo``), Entrez /
Ensembl ids to the model's symbols through ``gene_id_map`` (``medgen.data.gene_ids``).

Scales (``input_scale``):
- ``data``: the profiles are in the training data's units (e.g. RMA log2); landmarks are
  standardised with the training means and standard deviations and the targets come back in
  the training data's units.
- ``log2``: as ``data``, declaring log2 intensities (refused for a model whose training
  landmarks look linear).
- ``linear``: linear intensities (MAS5); log2(x + 1) is applied to every input row before
  inference and written as the output's input rows, the targets in the training units.
- ``zscore``: the profiles are per-gene z-scores (L1000 level 4: robust z-scores against
  the plate's population). They are taken as standardised landmark values directly,
  clipped to +-clip_z, and the targets are written as z-scores on the same footing (the
  model's standardised outputs): "how many training-set standard deviations above its
  training mean the gene is inferred to be, given the landmarks' deviations". Multiply by
  ``training_sd`` and add ``training_mean`` (row metadata) for training-scale values.

Every profile's standardised landmarks are checked against the training distribution
(``ScaleCheck``): profiles on another scale than declared are refused, named, saying what
they look like, instead of being clipped into plausible-looking predictions; the verdict
does not depend on ``chunk_size``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from anndata.io import write_elem
from tqdm.auto import tqdm

from medgen import atomic, checkpoint, provenance
from medgen.data.gene_ids import (
    describe_ids,
    id_kind,
    ids_to_symbols,
    normalise_ids,
    read_id_map,
)
from medgen.data.gene_matching import averaging_matrix, match_genes
from medgen.data.io.gctx_stream import GctxWriter, iter_gctx_columns, read_gctx_meta
from medgen.data.io.geo import probes_to_genes, read_platform_annotation, read_series_matrix
from medgen.data.io.tables import guess_format, read_table
from medgen.errors import MedgenInputError
from medgen.models.expression_inference import GeneInferenceModel
from medgen.models.expression_inference import load as load_inference_model

log = logging.getLogger(__name__)

MISSING = -666  # CMap's placeholder for metadata without a value
INPUT_SCALES = ("data", "log2", "linear", "zscore")
SCALE_RULES = {
    "data": "landmarks as read, in the training data's units, standardised with the "
            "training means and sds",
    "log2": "landmarks as read, log2 intensities (RMA-like), standardised with the training "
            "means and sds",
    "linear": "log2(x + 1) of the landmarks as read (linear intensities), standardised with "
              "the training means and sds",
    "zscore": "landmarks as read, taken as standardised values (per-gene z-scores)",
}
# a profile whose median standardised landmark lies beyond +-MAX_PROFILE_SHIFT, or whose
# median |standardised landmark| exceeds MAX_PROFILE_SPREAD, is refused (ScaleCheck)
MAX_PROFILE_SHIFT = 3.0
MAX_PROFILE_SPREAD = 5.0
LOG_SCALE_MAX_MEAN = 30.0  # training landmark means above this: a linear-scale model
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


@dataclass
class Profiles:
    """New profiles as read: row (gene) metadata, sample metadata, chunks of (sample ids,
    samples x rows float32 values), and for messages and metadata where the gene ids were
    read (``axis``), the other axis (``other_axis``, ``other_ids``) and the probe -> gene
    mapping's counts (empty without an annotation)."""

    rows: pd.DataFrame
    cols: pd.DataFrame
    chunks: Iterator[tuple[np.ndarray, np.ndarray]]
    axis: str
    other_axis: str
    other_ids: pd.Index
    probe_mapping: dict[str, Any] = field(default_factory=dict)


def read_profiles(cfg: dict[str, Any]) -> Profiles:
    """The new profiles of ``cfg`` (``expression_inference.infer``). GCTX files are
    streamed; other formats (tables, h5ad, GEO series matrix) are read whole, collapsed
    from probes to genes through ``annotation`` when it is set
    (``medgen.data.io.geo.probes_to_genes``), and served in chunks.

    Raises MedgenInputError for an unreadable file, or an ``annotation`` with a GCTX (whose
    rows carry their own gene metadata: ``gene_field``)."""
    path, fmt, field_name = cfg["path"], cfg["format"], cfg["gene_field"]
    fmt = guess_format(path) if fmt == "auto" else fmt
    if fmt == "gctx":
        if cfg["annotation"]:
            raise MedgenInputError(
                f"{path}: expression_inference.infer.annotation is for probe-level tables "
                "and series matrices; a GCTX's rows carry their own gene metadata: name its "
                "symbol field with gene_field")
        rows, cols = read_gctx_meta(path)
        axis = (f"the GCTX row-metadata field '{field_name}'" if field_name
                else "the GCTX row ids")
        return Profiles(rows, cols, iter_gctx_columns(path, cfg["chunk_size"]), axis,
                        "the GCTX column (sample) ids", cols.index)
    if fmt == "series_matrix":
        values, cols, _ = read_series_matrix(path)
        rows, matrix = pd.DataFrame(index=values.index), values.T
        axis, other = "the series matrix's ID_REF ids", "its sample ids"
    else:
        adata = read_table(path, fmt, cfg["orientation"])
        rows, cols = adata.var.copy(), adata.obs.copy()
        matrix = pd.DataFrame(np.asarray(adata.X), index=adata.obs_names.astype(str),
                              columns=adata.var_names.astype(str))
        if fmt == "h5ad":
            axis = (f"the h5ad's var column '{field_name}'" if field_name
                    else "the h5ad's var names")
            other = "its obs names (samples)"
        else:
            file_axes = ["the file's columns (header)", "the file's rows (first column)"]
            if cfg["orientation"] == "genes_as_rows":
                file_axes.reverse()
            axis = f"{file_axes[0]} (orientation: {cfg['orientation']})"
            other = file_axes[1]
    mapping: dict[str, Any] = {}
    if cfg["annotation"]:
        genes, rows, mapping = probes_to_genes(
            matrix.T, read_platform_annotation(cfg["annotation"],
                                               cfg["annotation_symbol_column"]),
            path, cfg["annotation"])
        matrix = genes.T
        axis = f"the genes of its probes through {cfg['annotation']}"
    values = matrix.to_numpy(dtype=np.float32)
    ids = matrix.index.astype(str).to_numpy()
    size = cfg["chunk_size"]
    chunks = ((ids[i:i + size], values[i:i + size]) for i in range(0, len(ids), size))
    return Profiles(rows, cols, chunks, axis, other, pd.Index(ids), mapping)


def gene_names(rows: pd.DataFrame, cfg: dict[str, Any], path: str
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(gene symbol per input row, the ids as read, how the ids were mapped): the ids of
    ``gene_field`` (or the row ids), mapped to symbols through ``gene_id_map`` when set
    (required for ``gene_id_type`` entrez / ensembl: the model knows its genes by symbol
    only). MedgenInputError for an unknown ``gene_field`` or a missing map."""
    if field_name := cfg["gene_field"]:
        if field_name not in rows.columns:
            raise MedgenInputError(
                f"{path}: no row-metadata field '{field_name}' (expression_inference.infer."
                f"gene_field); fields: {', '.join(map(str, rows.columns)) or 'none'}")
    raw = (rows[field_name] if field_name else rows.index.to_series()).astype(str).to_numpy()
    id_type, map_path = cfg["gene_id_type"], cfg["gene_id_map"]
    if id_type != "symbol" and not map_path:
        raise MedgenInputError(
            f"expression_inference.infer.gene_id_type is {id_type!r} but gene_id_map is "
            "empty: the trained model knows its genes by symbol only; name a map file "
            f"(a header line, then two columns: {id_type} id, symbol)")
    id_map = read_id_map(map_path, id_type) if map_path else None
    symbols, mapped = ids_to_symbols(raw, id_type, id_map)
    if id_map is not None and mapped == 0 and len(raw):
        reversed_hits = len(set(normalise_ids(raw, id_type)) & set(id_map.values()))
        if reversed_hits:
            raise MedgenInputError(
                f"gene id map {map_path}: none of the {len(raw)} ids of {path} is in its "
                f"first column, but {reversed_hits} are in its second: the map's columns are "
                "the id first, then the symbol")
    info = {"gene_id_type": id_type, "gene_id_map": map_path, "ids": len(raw),
            "mapped": mapped}
    if id_map is not None:
        log.info("%s: %d of %d %s ids mapped to gene symbols through %s", path, mapped,
                 len(raw), id_type, map_path)
    return symbols, raw, info


def landmark_columns(names: np.ndarray, ids: np.ndarray, model: GeneInferenceModel,
                     path: str, duplicates: str = "refuse") -> tuple[np.ndarray, list[str]]:
    """((n_rows, n_landmarks) averaging matrix: input rows -> the model's landmarks,
    missing landmarks), matched by gene name with ``medgen.data.gene_matching.match_genes``
    (a landmark on several rows: refused naming its ids, or averaged with ``duplicates:
    mean``)."""
    positions, missing = match_genes(names, model.landmarks, duplicates, path,
                                     "expression_inference.infer.duplicate_genes", ids=ids)
    return averaging_matrix(len(names), positions), missing


def missing_landmarks_message(profiles: Profiles, raw: np.ndarray, names: np.ndarray,
                              info: dict[str, Any], model: GeneInferenceModel,
                              missing: list[str], cfg: dict[str, Any], path: str) -> str:
    """Why landmarks were not found: the axis searched and what its ids look like, how many
    ids a map translated, whether the other axis or another row-metadata field holds the
    landmarks, and what to set."""
    wanted = set(model.landmarks)
    parts = [f"{path}: {len(missing)} of the model's {len(model.landmarks)} landmark genes "
             f"are not among {profiles.axis} (first: {missing[:5]}); those ids "
             f"{describe_ids(raw)}"]
    if info["gene_id_map"]:
        unmapped = [str(i) for i, name in zip(raw, names, strict=True) if not name][:5]
        parts.append(f"{info['mapped']} of {info['ids']} of them were mapped to symbols "
                     f"through {info['gene_id_map']} (gene_id_type: {info['gene_id_type']}"
                     + (f"; first not in the map: {unmapped}" if unmapped else "") + ")")
    other = profiles.other_ids.astype(str)
    on_other = len(wanted & set(other))
    if on_other:
        fix = ("set orientation to the other value" if "orientation" in profiles.axis
               else "is the file transposed?")
        parts.append(f"{profiles.other_axis} hold {on_other} of them: {fix}")
    elif len(other):
        parts.append(f"{profiles.other_axis} hold none of them either; they "
                     f"{describe_ids(list(other))}")
    for column in profiles.rows.columns:
        if column != cfg["gene_field"]:
            hits = len(wanted & set(profiles.rows[column].astype(str)))
            if hits > len(model.landmarks) - len(missing):
                parts.append(f"row-metadata field '{column}' holds {hits} of them: set "
                             f"gene_field: {column}")
    _, hint = id_kind(raw)
    if info["gene_id_map"] and "gene_id_type" in hint:
        hint = "the map lacks those ids, or the model was trained on another gene set"
    parts.append(hint or "the model knows its genes by symbol: was it trained on another "
                 "gene set, or does gene_field name the wrong field?")
    return "; ".join(parts)


def output_rows(rows: pd.DataFrame, model: GeneInferenceModel, used: np.ndarray,
                symbols: np.ndarray | None = None) -> pd.DataFrame:
    """The output's row metadata: the input's rows (``model_landmark`` 1 for the rows the
    model read; ``pr_gene_symbol``, unless the input has one, the gene symbol each row was
    matched by, ``symbols``: the mapped symbol for ids mapped through a gene id map, -666
    where none; the row id without ``symbols``), then one row per inferred target (named
    by gene, or ``inferred:<gene>`` when a gene is also an input row id;
    ``also_landmark`` 1 when the gene is also one of the model's landmarks).

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
        landmark_rows["pr_gene_symbol"] = (
            landmark_rows.index.astype(str) if symbols is None else
            np.where(np.asarray(symbols, dtype=object) == "", str(MISSING),
                     np.asarray(symbols, dtype=object)).astype(str))
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
        gene_id_type, gene_id_map, annotation, annotation_symbol_column, duplicate_genes,
        input_scale, clip_z, max_clipped_fraction, chunk_size).
    out_gctx, out_h5ad
        Outputs (rows: input landmark rows then inferred targets; columns: samples); both
        written atomically, with the units and provenance in their attributes / ``uns``.

    Returns
    -------
    A summary (profiles, landmarks, targets, units, fraction of clipped values, the
    worst profile's fit as ``profile_fit``, how gene ids and probes were mapped).

    Raises
    ------
    MedgenInputError
        A model of another task, missing landmark genes (naming the axis searched and what
        its ids look like), a landmark on several rows (naming the ids), missing or
        non-finite landmark values (naming sample, gene and row), profiles on another scale
        than ``input_scale`` (naming them, saying what they look like), or an unreadable input,
        annotation or gene id map.
    """
    bounded_heap()
    model = load_inference_model(model_path, device)
    ckpt = checkpoint.load(model_path)
    path, scale = cfg["path"], cfg["input_scale"]
    check_model_scale(model, scale, path)
    profiles = read_profiles(cfg)
    rows, cols = profiles.rows, profiles.cols
    cols.index = cols.index.astype(str)
    names, raw_ids, id_info = gene_names(rows, cfg, path)
    weights, missing = landmark_columns(names, rows.index.astype(str).to_numpy(), model, path,
                                        cfg["duplicate_genes"])
    if missing:
        raise MedgenInputError(missing_landmarks_message(profiles, raw_ids, names, id_info,
                                                         model, missing, cfg, path))
    used = weights.any(axis=1)  # rows of genes the model does not use are never read
    weights = weights[used]
    # each used row feeds exactly one landmark: its gene and id, for the NaN message
    used_genes = np.asarray(model.landmarks, dtype=object)[weights.argmax(axis=1)]
    labels = rows.index.astype(str).to_numpy()
    if profiles.probe_mapping:  # rows collapsed from probes: name the probes
        labels = (rows.index.astype(str) + ": probes " + rows["probes"].astype(str)).to_numpy()
    used_ids = labels[used]
    log.info("%s: %d of %d input rows hold the model's %d landmark genes; %d rows unused",
             path, int(used.sum()), len(rows), len(model.landmarks), int((~used).sum()))
    zscore = scale == "zscore"
    units = ("z-scores: input landmarks as read; inferred targets in training-set standard "
             "deviations from the training mean (training_mean / training_sd per row give "
             "the training scale)" if zscore else
             f"the training data's units ({ckpt.provenance.get('units', 'see provenance')})")
    if scale == "linear":
        units += "; the input rows hold log2(x + 1) of the values read"
    meta = {
        "units": units, "input_scale": scale, "input_scale_rule": SCALE_RULES[scale],
        "clip_z": cfg["clip_z"], "max_clipped_fraction": cfg["max_clipped_fraction"],
        "gene_ids": json.dumps(id_info), "probe_mapping": json.dumps(profiles.probe_mapping),
        "model": str(model_path), "family": ckpt.family,
        "provenance": json.dumps(provenance.collect(
            config=cfg, seed=ckpt.seed,
            inputs=[model_path, path, *(p for p in (cfg["annotation"], cfg["gene_id_map"])
                                        if p)]), default=str),
    }
    out_rows = output_rows(rows, model, used, names)
    shared = int(out_rows["also_landmark"].sum())
    meta["targets_also_landmarks"] = shared
    if shared:
        log.info("%d of the model's %d targets are also its landmarks (other probes in "
                 "training): inferred rows marked also_landmark 1, beside the input's "
                 "measured rows", shared, len(model.targets))
    n_in, done = len(rows), 0
    fit = ScaleCheck(model, cfg, path)
    with GctxWriter(out_gctx, out_rows, cols, attrs=meta) as gctx, \
            _H5adWriter(out_h5ad, out_rows, cols, meta) as h5ad:
        for ids, values in tqdm(profiles.chunks, total=-(-len(cols) // cfg["chunk_size"]),
                                desc="inferring targets", unit="chunk", disable=None):
            read = values[:, used]  # the landmark rows as read, for the scale's description
            if scale == "linear":
                values = linear_to_log2(values, read, ids, used_genes, used_ids, path)
            landmarks = values[:, used]
            check_finite(landmarks, ids, used_genes, used_ids, path)
            x = landmarks @ weights  # finite, so no NaN spreads to other landmarks
            z = x if zscore else model.x_scaler.transform(x)
            # every profile is checked, then all misfits are named at once (fit.verdict);
            # once one is found nothing more is inferred: the outputs will not be kept
            if fit.add(ids, z, read) or fit.refused:
                continue
            y = model.predict_standardised(np.clip(z, -cfg["clip_z"], cfg["clip_z"]))
            if not zscore:
                y = model.to_data_units(y)
            block = np.concatenate([values, y.astype(np.float32)], axis=1)
            gctx.write(done, block)
            h5ad.write(done, block)
            done += len(ids)
        fit.verdict()  # raising here leaves neither output behind
    summary = {"profiles": done, "input_rows": n_in, "landmarks": len(model.landmarks),
               "targets": len(model.targets), "units": units,
               "clipped_fraction": fit.clipped / max(done * len(model.landmarks), 1),
               "profile_fit": {"max_abs_median_z": fit.worst["shift"],
                               "max_median_abs_z": fit.worst["spread"],
                               "max_clipped_fraction": fit.worst["clipped"]},
               "gene_ids": id_info, "probe_mapping": profiles.probe_mapping}
    log.info("inferred %d targets for %d profiles (%s); %.3f%% of standardised landmark "
             "values clipped to +-%s; per profile at most: median %.2f sd from the "
             "training means, median |z| %.2f, %.1f%% clipped", len(model.targets), done,
             scale, 100 * summary["clipped_fraction"], cfg["clip_z"], fit.worst["shift"],
             fit.worst["spread"], 100 * fit.worst["clipped"])
    return summary


def check_finite(landmarks: np.ndarray, ids: np.ndarray, genes: np.ndarray,
                 row_ids: np.ndarray, path: str) -> None:
    """MedgenInputError naming (sample, landmark gene, input row) of the first missing or
    infinite landmark values of a chunk (samples x used rows), checked before the rows are
    combined: a NaN times a zero weight is NaN, so after the product one NaN would show in
    every landmark."""
    bad = ~np.isfinite(landmarks)
    if bad.any():
        where = np.argwhere(bad)
        cells = ", ".join(f"sample '{ids[i]}' gene '{genes[j]}' (row '{row_ids[j]}')"
                          for i, j in where[:5])
        raise MedgenInputError(
            f"{path}: {len(where)} missing (NaN, null) or infinite landmark value(s) in "
            f"{int(bad.any(axis=1).sum())} profile(s) of this chunk: {cells}; the model "
            "needs every landmark of every profile: drop those profiles or impute the values")


def linear_to_log2(values: np.ndarray, read: np.ndarray, ids: np.ndarray, genes: np.ndarray,
                   row_ids: np.ndarray, path: str) -> np.ndarray:
    """log2(values + 1) (``input_scale: linear``); MedgenInputError naming a negative
    landmark value (linear intensities are not negative) and what the sample's landmarks
    look like: log2 values or z-scores (the ``input_scale`` that fits), or linear
    intensities with background-subtracted negatives (MAS4, MAS5 without a floor: floor
    them first). Negative values of rows the model does not read become NaN (logged)."""
    negative = read < 0
    if negative.any():
        i, j = np.argwhere(negative)[0]
        row = read[i][np.isfinite(read[i])]
        looks, suggested = describe_values(row)
        if suggested in ("log2", "zscore"):
            hint = f"its landmarks look like {looks}: input_scale: {suggested}"
        elif describe_values(row[row >= 0])[1] == "linear":
            hint = (f"{int((row < 0).sum())} of its {row.size} landmark values are negative, "
                    f"the others look like {describe_values(row[row >= 0])[0]}: background-"
                    "subtracted intensities (MAS4, MAS5 without a floor); floor them (e.g. "
                    "at 0) before inference")
        else:
            hint = f"its landmarks look like {looks}"
        raise MedgenInputError(
            f"{path}: input_scale: linear, but landmark gene '{genes[j]}' (row '{row_ids[j]}') "
            f"of sample '{ids[i]}' is {read[i, j]:.4g}; linear intensities are not negative; "
            f"{hint}")
    with np.errstate(invalid="ignore"):
        out = np.log2(values + np.float32(1.0))
    others = int((values < -1).sum())
    if others:
        log.warning("%s: %d negative values of rows the model does not read are NaN after "
                    "log2(x + 1)", path, others)
    return out


def model_scale(model: GeneInferenceModel) -> tuple[str, str]:
    """('log' or 'linear', a description) of the model's training landmarks, from the means
    it stores: log2 intensities average below ~16, linear ones in the hundreds."""
    mean = model.x_scaler.mean
    kind = "log" if float(np.max(mean)) <= LOG_SCALE_MAX_MEAN else "linear"
    return kind, (f"the model's training landmarks have means {np.min(mean):.3g} to "
                  f"{np.max(mean):.3g} ({'log-scale' if kind == 'log' else 'linear scale'})")


def check_model_scale(model: GeneInferenceModel, scale: str, path: str) -> None:
    """MedgenInputError when ``log2`` / ``linear`` (both mean: the model reads log2 values)
    is declared for a model trained on linear-scale data."""
    kind, described = model_scale(model)
    if scale in ("log2", "linear") and kind == "linear":
        raise MedgenInputError(
            f"{path}: expression_inference.infer.input_scale: {scale} gives the model log2 "
            f"values, but {described}; give profiles in the training data's units with "
            "input_scale: data")


def describe_values(values: np.ndarray) -> tuple[str, str]:
    """(what the finite ``values`` look like, the scale that kind suggests: 'linear',
    'zscore', 'log2' or '')."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "no finite values", ""
    p1, median, p99 = np.percentile(finite, [1, 50, 99])
    low, high = float(finite.min()), float(finite.max())
    spread = (f"median {median:.3g}, 1st-99th percentile {p1:.3g} to {p99:.3g}, range "
              f"{low:.4g} to {high:.4g}")
    # non-negative and large (log2 intensities stay below ~20) or right-skewed
    if low >= 0 and (median > 30 or (p99 > 100 and p99 > 8 * max(median, 1.0))):
        return f"linear intensities (MAS5, counts, TPM: {spread})", "linear"
    if low < 0 and abs(median) < 0.25 * (p99 - p1) / 2:
        return f"values centred on 0, like z-scores or log ratios ({spread})", "zscore"
    if p1 >= -1 and p99 <= 25:
        return f"log2 intensities ({spread})", "log2"
    return f"values with {spread}", ""


class ScaleCheck:
    """Each profile's standardised landmarks against the training distribution, over all
    chunks, so that what is refused does not depend on ``chunk_size``.

    A profile fits when its median standardised landmark (how far the profile as a whole
    is shifted from the training means) lies within +-MAX_PROFILE_SHIFT sd, its median
    absolute standardised landmark is at most MAX_PROFILE_SPREAD sd, and at most
    ``max_clipped_fraction`` of its landmarks lie beyond +-clip_z. Profiles on the training
    scale keep most landmarks within 1-2 sd; a profile on another scale moves all of them
    one way (z-scores fed as log2 data: ~6 sd below, linear intensities: tens of sd
    above), while a strong perturbation moves them both ways (real L1000 level-4 profiles
    with input_scale zscore: shift at most 1.5, spread at most 3.2 sd, at most 5.6%
    beyond +-10, in the 377 profiles of the shared test file).
    """

    def __init__(self, model: GeneInferenceModel, cfg: dict[str, Any], path: str) -> None:
        self.model, self.cfg, self.path = model, cfg, path
        self.profiles = self.clipped = self.refused = 0
        self.worst = {"shift": 0.0, "spread": 0.0, "clipped": 0.0}
        # below / above the training means, or spread: [count, first examples, the values
        # as read of its first 50 profiles]
        self.groups: dict[str, list[Any]] = {}

    def add(self, ids: np.ndarray, z: np.ndarray, read: np.ndarray) -> int:
        """Check one chunk: ``z`` (profiles x landmarks) standardised, ``read`` the
        landmark rows as read (profiles x used rows, for what they look like). Returns how
        many of the chunk's profiles do not fit (their names are kept for :meth:`verdict`).
        """
        clip = self.cfg["clip_z"]
        beyond = np.abs(z) > clip
        shift = np.median(z, axis=1)
        spread = np.median(np.abs(z), axis=1)
        share = beyond.mean(axis=1) if z.shape[1] else np.zeros(len(z))
        self.profiles += len(z)
        self.clipped += int(beyond.sum())
        if len(z):
            for key, value in (("shift", float(np.max(np.abs(shift)))),
                               ("spread", float(np.max(spread))),
                               ("clipped", float(np.max(share)))):
                self.worst[key] = max(self.worst[key], value)
        bad = ((np.abs(shift) > MAX_PROFILE_SHIFT) | (spread > MAX_PROFILE_SPREAD)
               | (share > self.cfg["max_clipped_fraction"]))
        for i in np.flatnonzero(bad):
            # grouped by how they miss (a profile's own few values describe it poorly)
            way = ("below" if shift[i] < -MAX_PROFILE_SHIFT else
                   "above" if shift[i] > MAX_PROFILE_SHIFT else "spread")
            group = self.groups.setdefault(way, [0, [], []])
            group[0] += 1
            if len(group[1]) < 3:
                group[1].append(f"'{ids[i]}' (median {shift[i]:+.1f} sd, median |z| "
                                f"{spread[i]:.1f}, {share[i]:.0%} beyond +-{clip})")
            if len(group[2]) < 50:
                group[2].append(read[i])
        self.refused += int(bad.sum())
        return int(bad.sum())

    def verdict(self) -> None:
        """MedgenInputError when any profile did not fit: how many, the first ones by name
        with their numbers, what they look like and the ``input_scale`` that would fit."""
        if not self.refused:
            return
        scale, clip = self.cfg["input_scale"], self.cfg["clip_z"]
        kind, described = model_scale(self.model)
        effective = {"data": "log2" if kind == "log" else "linear"}.get(scale, scale)
        mixed = self.refused < self.profiles
        parts = []
        ways = {"below": "lie below the training means",
                "above": "lie above the training means",
                "spread": "have landmarks far out on both sides"}
        for way, (count, examples, values) in sorted(self.groups.items(),
                                                     key=lambda kv: -kv[1][0]):
            looks, suggested = describe_values(np.concatenate(values))
            if suggested and suggested != effective:
                wanted = "data" if suggested == kind == "linear" else suggested
                hint = f"input_scale: {wanted} would fit them" + {
                    "linear": " (log2(x + 1) is applied)",
                    "zscore": " (L1000 level 4 / 5 and other per-gene z-scores)",
                }.get(wanted, "")
            else:
                hint = ("they are on another footing than the training data (another "
                        "platform, normalisation or gene set?)")
                if way == "spread":
                    hint += ("; if those values are real outliers, raise clip_z or "
                             "max_clipped_fraction")
            parts.append(f"{count} profile(s) {ways[way]}: they look like {looks}; first: "
                         f"{', '.join(examples)}"
                         f"{' and more' if count > len(examples) else ''}; {hint}")
        if mixed:
            parts.append(f"the other {self.profiles - self.refused} fit: the input mixes "
                         "scales or holds outlying profiles; convert or drop those profiles")
        raise MedgenInputError(
            f"{self.path}: {self.refused} of {self.profiles} profiles do not fit the model "
            f"with input_scale: {scale} (each profile's landmarks, standardised with the "
            f"training means and sds, must have a median within +-{MAX_PROFILE_SHIFT} sd, a "
            f"median |z| of at most {MAX_PROFILE_SPREAD} sd and at most "
            f"{self.cfg['max_clipped_fraction']:.0%} beyond +-{clip}: expression_inference."
            f"infer.max_clipped_fraction); {described}; " + "; ".join(parts))


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
