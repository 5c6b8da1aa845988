"""Expression preprocessing: tables -> QC -> labels -> normalise -> split -> top-k -> scale.

One function, :func:`preprocess_expression`, is what the workflow's data rule calls. The
split is made before gene selection and scaling, and both are fitted on the training split
only, so nothing about validation or test samples leaks into the features.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from medgen import provenance
from medgen.atomic import atomic_path
from medgen.data import tcga
from medgen.data.io.delimited import separator
from medgen.data.io.tables import non_integer_fraction, read_table
from medgen.data.splits import TRAIN, split_groups
from medgen.errors import MedgenInputError

logger = logging.getLogger(__name__)

LOG_LAYER = "log_expression"
BARCODE_COLUMNS = ("patient", "sample_type_code", "sample_type", "tumor_normal", "cancer_type")
# obs columns medgen writes itself; a table's own column of that name is kept renamed
DERIVED_COLUMNS = (*BARCODE_COLUMNS, "source", "split")
KEPT_SUFFIX = "_in_file"
# Log-scale expression rarely exceeds ~20 (log2 of 1e6); counts of a whole table always do.
LOG_SCALE_MAX = 50.0
DUPLICATES = ("refuse", "first", "mean")
_KNOWN_SUFFIXES = (".gz", ".csv", ".tsv", ".txt", ".tab", ".parquet", ".pq", ".h5ad", ".gctx")


def _examples(values: Any, n: int = 5) -> str:
    values = [str(v) for v in values]
    more = f" and {len(values) - n} more" if len(values) > n else ""
    return ", ".join(f"'{v}'" for v in values[:n]) + more


def source_name(table: dict[str, Any]) -> str:
    """The table's group, or its file name without format suffixes (``BRCA.parquet`` -> BRCA)."""
    if table.get("group"):
        return str(table["group"])
    name = Path(table["path"]).name
    while Path(name).suffix.lower() in _KNOWN_SUFFIXES:
        name = name[: -len(Path(name).suffix)]
    return name


def check_values(adata: ad.AnnData, path: str | os.PathLike, data_type: str) -> None:
    """Fail on NaN/Inf anywhere, and on negative or already-logged values in count data
    (:func:`check_counts`), naming the first."""
    matrix = np.asarray(adata.X)
    bad = ~np.isfinite(matrix)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise MedgenInputError(
            f"{path}: {int(bad.sum())} NaN/Inf values (first at sample '{adata.obs_names[i]}', "
            f"gene '{adata.var_names[j]}'); expression tables must be complete"
        )
    if data_type == "counts":
        check_counts(matrix, path)
        negative = matrix < 0
        if negative.any():
            i, j = np.argwhere(negative)[0]
            raise MedgenInputError(
                f"{path}: {int(negative.sum())} negative values in count data (first "
                f"{matrix[i, j]:g} at sample '{adata.obs_names[i]}', gene "
                f"'{adata.var_names[j]}'); set expression.data_type: log_expression for "
                "log-scale tables"
            )


def check_counts(matrix: np.ndarray, path: str | os.PathLike) -> None:
    """Refuse "counts" that are mostly fractions below LOG_SCALE_MAX: already-logged values
    (log2(x + 1) tables), which normalising and logging again squashes into a narrow band.

    Fractional counts with a count-like range (RSEM expected counts, TPM) are read, with a
    note in the log.
    """
    # among the non-zero values: the zeros of a sparse log table are whole numbers too
    fraction = non_integer_fraction(matrix[matrix != 0])
    if fraction == 0 or matrix.size == 0:
        return
    largest = float(np.nanmax(matrix))
    if fraction > 0.5 and largest < LOG_SCALE_MAX:
        raise MedgenInputError(
            f"{path}: declared as counts (expression.data_type: counts), but "
            f"{fraction:.0%} of its values are not integers and the largest is {largest:.3g}: "
            "it looks log-transformed already (e.g. log2(x + 1)); set "
            "expression.data_type: log_expression to use it as is"
        )
    logger.info("%s: %.0f%% of the counts are not integers (expected counts or TPM?); "
                "they are normalised and log1p'd as counts", path, 100 * fraction)


def check_unique(index: pd.Index, what: str, where: str) -> None:
    """Fail when ``index`` holds duplicates, naming a few of them."""
    if index.has_duplicates:
        repeated = index[index.duplicated()].unique()
        raise MedgenInputError(f"{where}: duplicate {what} IDs {_examples(repeated)}")


def merge_duplicates(adata: ad.AnnData, policy: str, where: str) -> ad.AnnData:
    """Handle repeated sample IDs (several aliquots of one sample, say) as configured.

    ``policy``: 'refuse' (fail naming a few), 'first' (keep each ID's first row) or 'mean'
    (average each ID's rows; obs from the first). The number merged is logged. ``where``
    starts the message (``"<file>: duplicate sample IDs"``).
    """
    names = adata.obs_names
    if not names.has_duplicates:
        return adata
    repeated = names[names.duplicated()].unique()
    if policy not in DUPLICATES:
        raise MedgenInputError(
            f"expression.duplicate_samples is {policy!r}; expected one of {', '.join(DUPLICATES)}"
        )
    if policy == "refuse":
        raise MedgenInputError(
            f"{where} {_examples(repeated)} ({len(repeated)} IDs in "
            f"{int(names.isin(repeated).sum())} rows); set expression.duplicate_samples: first "
            "or mean to keep the first row or average the rows of each ID"
        )
    first = ~names.duplicated()
    out = adata[first].copy()
    if policy == "mean":
        frame = pd.DataFrame(np.asarray(adata.X), index=np.asarray(names))
        out.X = frame.groupby(level=0, sort=False).mean().loc[out.obs_names].to_numpy()
    logger.warning(
        "%s (%d IDs): %d rows merged into %d samples (%s)",
        where.rstrip(":"), len(repeated), int(names.isin(repeated).sum()), len(repeated),
        "first row kept" if policy == "first" else "rows averaged",
    )
    return out


def keep_file_columns(obs: pd.DataFrame, where: str) -> None:
    """Rename a table's own obs columns that medgen derives (``source`` -> ``source_in_file``)
    so that neither is lost; the rename is logged."""
    for column in DERIVED_COLUMNS:
        if column not in obs.columns:
            continue
        kept = column + KEPT_SUFFIX
        if kept in obs.columns:
            raise MedgenInputError(
                f"{where}: sample metadata has both '{column}', which medgen derives, and "
                f"'{kept}', where it would keep the file's own; rename one of them"
            )
        obs.rename(columns={column: kept}, inplace=True)
        logger.warning("%s: the file's sample column '%s' is kept as '%s' (medgen derives "
                       "'%s')", where, column, kept, column)


def load_table(
    table: dict[str, Any], data_type: str, barcode_labels: bool, duplicates: str = "refuse"
) -> ad.AnnData:
    """Read one configured table, check its values and IDs, and label its samples.

    ``table`` may name an h5ad matrix with ``layer``; ``duplicates`` is the
    :func:`merge_duplicates` policy for repeated sample IDs.
    """
    path = table["path"]
    adata = read_table(
        path, table.get("format", "auto"), table.get("orientation", "samples_as_rows"),
        layer=table.get("layer") or "X", expect_counts=data_type == "counts",
    )
    check_values(adata, path, data_type)
    check_unique(adata.var_names, "gene", str(path))
    keep_file_columns(adata.obs, str(path))
    source = source_name(table)
    if barcode_labels:
        # Normalise before the duplicate check: 'A.B' and 'A-B' are the same sample.
        labels = tcga.barcode_table(adata.obs_names)
        adata.obs_names = labels.index
        adata = merge_duplicates(adata, duplicates, f"{path}: duplicate sample IDs")
        labels = labels[~labels.index.duplicated()].loc[adata.obs_names]
        for column in ("patient", "sample_type_code", "sample_type", "tumor_normal"):
            adata.obs[column] = labels[column].to_numpy()
        adata.obs["cancer_type"] = source
        unknown = int((labels["tumor_normal"] == tcga.UNKNOWN).sum())
        if unknown:
            logger.warning(
                "%s: %d of %d sample IDs are patient barcodes without a sample part; their "
                "sample_type and tumor_normal are 'unknown'", path, unknown, adata.n_obs)
    else:
        adata = merge_duplicates(adata, duplicates, f"{path}: duplicate sample IDs")
    adata.obs["source"] = source
    return adata


def concat_tables(
    adatas: list[ad.AnnData], paths: list[str], duplicates: str = "refuse"
) -> ad.AnnData:
    """Stack tables by sample on their common genes (in the first table's gene order);
    samples in several tables are handled by :func:`merge_duplicates`."""
    common = adatas[0].var_names
    for other in adatas[1:]:
        common = common[common.isin(other.var_names)]
    if len(common) == 0:
        raise MedgenInputError(
            f"the expression tables {', '.join(map(str, paths))} share no gene IDs; "
            "check their orientation and gene naming"
        )
    dropped = sum(a.n_vars for a in adatas) - len(common) * len(adatas)
    if len(adatas) > 1 and dropped:
        logger.info("inner join on genes keeps %d common genes (%d table columns dropped)",
                    len(common), dropped)
    combined = ad.concat([a[:, common] for a in adatas], join="inner", merge="same")
    where = f"duplicate sample IDs across the tables {', '.join(map(str, paths))}:"
    return merge_duplicates(combined, duplicates, where)


def drop_empty(adata: ad.AnnData, drop: bool, where: str) -> ad.AnnData:
    """Drop all-zero samples and genes (logged), or fail on them when ``drop`` is False."""
    matrix = np.asarray(adata.X)
    empty_samples = adata.obs_names[(matrix == 0).all(axis=1)]
    empty_genes = adata.var_names[(matrix == 0).all(axis=0)]
    if not drop and (len(empty_samples) or len(empty_genes)):
        raise MedgenInputError(
            f"{where}: {len(empty_samples)} all-zero samples ({_examples(empty_samples)}) and "
            f"{len(empty_genes)} all-zero genes ({_examples(empty_genes)}); set "
            "expression.drop_empty: true to drop them"
        )
    if len(empty_samples) or len(empty_genes):
        logger.info("dropping %d all-zero samples and %d all-zero genes",
                    len(empty_samples), len(empty_genes))
        adata = adata[
            ~adata.obs_names.isin(empty_samples), ~adata.var_names.isin(empty_genes)
        ].copy()
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise MedgenInputError(
            f"{where}: no data left after dropping all-zero samples and genes "
            f"({adata.n_obs} samples x {adata.n_vars} genes)"
        )
    return adata


def read_metadata(path: str | os.PathLike, sample_column: str) -> pd.DataFrame:
    """Read a CSV/TSV sample table indexed by ``sample_column`` (IDs kept as text)."""
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"metadata table {path} (expression.metadata.path) does not exist")
    sep = separator(path)
    try:
        columns = list(pd.read_csv(path, sep=sep, nrows=0).columns)
        if sample_column not in columns:
            raise MedgenInputError(
                f"metadata table {path} has no column '{sample_column}' "
                f"(expression.metadata.sample_column); its columns: {', '.join(columns)}"
            )
        frame = pd.read_csv(path, sep=sep, dtype={sample_column: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise MedgenInputError(f"metadata table {path} could not be read: {err}") from None
    if frame[sample_column].isna().any():
        raise MedgenInputError(f"metadata table {path}: empty '{sample_column}' in some rows")
    frame = frame.set_index(sample_column)
    frame.index = frame.index.astype(str)
    check_unique(frame.index, "sample", f"metadata table {path}")
    return frame


def join_metadata(
    adata: ad.AnnData, path: str | os.PathLike, sample_column: str, barcode_labels: bool
) -> None:
    """Add the metadata table's columns to ``adata.obs`` (every sample needs a row)."""
    meta = read_metadata(path, sample_column)
    if barcode_labels:
        meta.index = meta.index.map(tcga.normalise_barcode)
        check_unique(meta.index, "sample", f"metadata table {path} (barcodes normalised)")
    missing = adata.obs_names[~adata.obs_names.isin(meta.index)]
    if len(missing):
        raise MedgenInputError(
            f"metadata table {path} has no row for {len(missing)} of {adata.n_obs} samples "
            f"({_examples(missing)}); column '{sample_column}' must hold every sample ID"
        )
    clash = [c for c in meta.columns if c in adata.obs.columns or c == "split"]
    if clash:
        raise MedgenInputError(
            f"metadata table {path}: columns {_examples(clash)} clash with derived obs "
            "columns; rename them in the metadata table"
        )
    for column in meta.columns:
        adata.obs[column] = meta.loc[adata.obs_names, column].to_numpy()


def check_labels(obs: pd.DataFrame, labels: list[str]) -> None:
    """Every configured label must be an obs column."""
    for label in labels:
        if label not in obs.columns:
            raise MedgenInputError(
                f"expression.labels names '{label}', which is not a sample column; available "
                f"columns: {', '.join(map(str, obs.columns))}"
            )


def log_normalise(adata: ad.AnnData, data_type: str, target_sum: float) -> np.ndarray:
    """Counts: library size to ``target_sum`` then log1p; log_expression: unchanged."""
    if data_type == "log_expression":
        return np.asarray(adata.X, dtype=np.float64).copy()
    import scanpy as sc  # imported here: scanpy is slow to import and only counts need it

    work = ad.AnnData(X=np.asarray(adata.X, dtype=np.float64).copy())
    sc.pp.normalize_total(work, target_sum=float(target_sum))
    sc.pp.log1p(work)
    return np.asarray(work.X)


def gene_deviation(values: np.ndarray, method: str) -> np.ndarray:
    """Per-gene spread: ``mean_abs_dev`` = mean(|x - mean x|) (pandas' old ``mad``, as
    Tybalt used) or ``median_abs_dev`` = median(|x - median x|)."""
    if method == "mean_abs_dev":
        return np.mean(np.abs(values - values.mean(axis=0)), axis=0)
    if method == "median_abs_dev":
        return np.median(np.abs(values - np.median(values, axis=0)), axis=0)
    raise MedgenInputError(
        f"expression.gene_ranking is {method!r}; expected mean_abs_dev or median_abs_dev"
    )


def top_k_genes(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest scores, largest first (ties keep table order)."""
    if k > len(scores):
        raise MedgenInputError(
            f"expression.top_k_genes is {k}, but only {len(scores)} genes are left after "
            "QC; lower top_k_genes"
        )
    return np.argsort(-scores, kind="stable")[:k]


def minmax_fit(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene minimum and maximum on the training samples."""
    return train.min(axis=0), train.max(axis=0)


def minmax_apply(
    values: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, int]:
    """Scale to [0, 1] with the fitted range and clip; returns (scaled, values clipped).

    A gene constant on the training split has no range: it maps to 0 there (offset only).
    """
    span = np.where(high > low, high - low, 1.0)
    scaled = (values - low) / span
    clipped = int(((scaled < 0) | (scaled > 1)).sum())
    return np.clip(scaled, 0.0, 1.0), clipped


def split_manifest(obs: pd.DataFrame, labels: list[str], group_by: str | None) -> pd.DataFrame:
    """sample, patient, split and label columns, sorted by sample."""
    if "patient" in obs.columns:
        patient = obs["patient"].astype(str)
    elif group_by and group_by in obs.columns:
        patient = obs[group_by].astype(str)
    else:
        patient = pd.Series(obs.index.astype(str), index=obs.index)
    frame = pd.DataFrame(
        {"sample": obs.index.astype(str), "patient": patient.to_numpy(),
         "split": obs["split"].astype(str).to_numpy()}
    )
    for label in labels:
        if label not in frame.columns:
            frame[label] = obs[label].to_numpy()
    return frame.sort_values("sample", kind="stable").reset_index(drop=True)


def preprocess_expression(
    tables: list[dict[str, Any]],
    cfg: dict[str, Any],
    seed: int,
    out_h5ad: str | os.PathLike,
    out_split_tsv: str | os.PathLike,
    metadata_path: str | os.PathLike | None = None,
) -> ad.AnnData:
    """Build the model-ready expression AnnData and its split manifest.

    Steps: (1) read, check and label each table; (2) inner-join them on genes; (3) drop
    all-zero samples/genes; (4) join metadata and check labels; (5) normalise counts and
    log1p; (6) split by group, stratified; (7) keep the top-k genes by absolute deviation on
    the training split; (8) min-max scale with the training range, clipping val/test;
    (9) write the h5ad and the TSV atomically.

    Parameters
    ----------
    tables
        Dicts with ``path``, ``format``, ``orientation`` and ``group`` (None: file stem).
    cfg
        The validated ``expression:`` config section (defaults filled).
    seed
        Seed of the split.
    out_h5ad, out_split_tsv
        Output paths.
    metadata_path
        Sample metadata table; defaults to ``cfg['metadata']['path']``.

    Returns
    -------
    anndata.AnnData
        What was written to ``out_h5ad``.
    """
    if not tables:
        raise MedgenInputError("no expression tables given (expression.files is empty)")
    data_type = cfg["data_type"]
    barcode_labels = cfg["barcode_labels"]
    paths = [str(t["path"]) for t in tables]
    where = ", ".join(paths)

    # (1)-(3) read, combine, drop empty
    duplicates = cfg.get("duplicate_samples", "refuse")
    adatas = [load_table(t, data_type, barcode_labels, duplicates) for t in tables]
    adata = concat_tables(adatas, paths, duplicates) if len(adatas) > 1 else adatas[0]
    adata = drop_empty(adata, cfg["drop_empty"], where)

    # (4) metadata and labels
    metadata_path = metadata_path or cfg.get("metadata", {}).get("path")
    if metadata_path:
        join_metadata(adata, metadata_path, cfg["metadata"]["sample_column"], barcode_labels)
    labels = list(cfg["labels"])
    check_labels(adata.obs, labels)

    # (5) normalise
    log_values = log_normalise(adata, data_type, cfg["target_sum"])

    # (6) split before anything is fitted
    split_cfg = cfg["split"]
    split = split_groups(
        adata.obs, split_cfg["group_by"], split_cfg["stratify_by"],
        split_cfg["val_fraction"], split_cfg["test_fraction"], seed,
    )
    train = (split == TRAIN).to_numpy()

    # (7) gene selection on the training split
    scores = gene_deviation(log_values[train], cfg["gene_ranking"])
    keep = top_k_genes(scores, cfg["top_k_genes"])
    log_values = log_values[:, keep]

    # (8) scaling fitted on the training split
    low, high = minmax_fit(log_values[train])
    scaled, n_clipped = minmax_apply(log_values, low, high)

    obs = adata.obs.copy()
    obs.insert(0, "split", split.to_numpy())
    var = adata.var.iloc[keep].copy()
    var["mad"] = scores[keep]
    var["scale_min"] = low
    var["scale_max"] = high
    out = ad.AnnData(
        X=scaled.astype(np.float32),
        obs=obs,
        var=var,
        layers={LOG_LAYER: log_values.astype(np.float32)},
    )
    inputs = paths + ([str(metadata_path)] if metadata_path else [])
    out.uns["provenance_json"] = json.dumps(
        provenance.collect(config=cfg, seed=seed, inputs=inputs), sort_keys=True, default=str
    )
    out.uns["preprocessing"] = {
        "data_type": data_type,
        "gene_ranking": cfg["gene_ranking"],
        "top_k_genes": int(cfg["top_k_genes"]),
        "genes_after_qc": int(adata.n_vars),
        "clipped_values": n_clipped,
        "clipped_fraction": float(n_clipped / scaled.size),
    }
    manifest = split_manifest(obs, labels, split_cfg["group_by"])
    out.strings_to_categoricals()  # what write_h5ad would do anyway, without its notices

    # (9) write both or neither
    with atomic_path(out_h5ad) as tmp_h5ad, atomic_path(out_split_tsv) as tmp_tsv:
        manifest.to_csv(tmp_tsv, sep="\t", index=False)
        out.write_h5ad(tmp_h5ad)
    _log_summary(out, labels, n_clipped)
    return out


def preprocess_for_model(
    tables: list[dict[str, Any]],
    cfg: dict[str, Any],
    signature: dict[str, Any],
    out_h5ad: str | os.PathLike,
    metadata_path: str | os.PathLike | None = None,
) -> ad.AnnData:
    """New samples prepared for a trained expression model: every sample is evaluation data.

    Steps (1)-(5) of :func:`preprocess_expression` (read, combine, drop empty samples, join
    metadata, normalise and log1p); then the model's genes in the model's order and its
    min-max scaling (both stored in its checkpoint signature, ``genes``, ``scale_min``,
    ``scale_max``), clipping to [0, 1]. ``obs['split']`` is 'test' for every sample.

    Raises
    ------
    MedgenInputError
        A gene the model needs is missing from the tables (the message names some), or the
        model was trained before scaling ranges were stored in checkpoints.
    """
    if "scale_min" not in signature:
        raise MedgenInputError(
            "the model's checkpoint holds no scaling ranges (written before medgen stored "
            "them); retrain it to apply it to new data"
        )
    if not tables:
        raise MedgenInputError("no expression tables given (expression.files is empty)")
    data_type = cfg["data_type"]
    paths = [str(t["path"]) for t in tables]
    duplicates = cfg.get("duplicate_samples", "refuse")
    adatas = [load_table(t, data_type, cfg["barcode_labels"], duplicates) for t in tables]
    adata = concat_tables(adatas, paths, duplicates) if len(adatas) > 1 else adatas[0]
    # genes are not dropped here: the model's gene list decides
    adata = drop_empty(adata, cfg["drop_empty"], ", ".join(paths))
    metadata_path = metadata_path or cfg.get("metadata", {}).get("path")
    if metadata_path:
        join_metadata(adata, metadata_path, cfg["metadata"]["sample_column"],
                      cfg["barcode_labels"])
    check_labels(adata.obs, list(cfg["labels"]))
    log_values = log_normalise(adata, data_type, cfg["target_sum"])
    genes = list(signature["genes"])
    position = {str(g): i for i, g in enumerate(adata.var_names)}
    missing = [g for g in genes if g not in position]
    if missing:
        raise MedgenInputError(
            f"{', '.join(paths)}: {len(missing)} of the model's {len(genes)} genes are missing "
            f"(first: {missing[:5]}); the tables must measure every gene the model was "
            "trained on"
        )
    keep = np.array([position[g] for g in genes])
    scaled, n_clipped = minmax_apply(log_values[:, keep], np.asarray(signature["scale_min"]),
                                     np.asarray(signature["scale_max"]))
    obs = adata.obs.copy()
    obs.insert(0, "split", "test")
    out = ad.AnnData(X=scaled.astype(np.float32), obs=obs, var=adata.var.iloc[keep].copy())
    inputs = paths + ([str(metadata_path)] if metadata_path else [])
    out.uns["provenance_json"] = json.dumps(
        provenance.collect(config=cfg, inputs=inputs), sort_keys=True, default=str)
    out.uns["preprocessing"] = {"applied_to_model_genes": len(genes),
                                "clipped_values": n_clipped,
                                "clipped_fraction": float(n_clipped / max(scaled.size, 1))}
    out.strings_to_categoricals()
    with atomic_path(out_h5ad) as tmp:
        out.write_h5ad(tmp)
    return out


def _log_summary(adata: ad.AnnData, labels: list[str], n_clipped: int) -> None:
    counts = adata.obs["split"].value_counts()
    logger.info(
        "expression: %d samples (train %d, val %d, test %d) x %d genes kept",
        adata.n_obs, counts.get("train", 0), counts.get("val", 0), counts.get("test", 0),
        adata.n_vars,
    )
    for label in labels:
        table = pd.crosstab(adata.obs["split"], adata.obs[label])
        logger.info("samples per split and %s:\n%s", label, table.to_string())
    logger.info("min-max scaling clipped %d val/test values to [0, 1]", n_clipped)
