"""Landmark and target matrices for expression inference (D-GEX / GGAN / L1000 setting),
built once per run and read by every expression-inference family and the evaluation.

Layout of the prepared ``.h5ad``: ``X`` the target genes (samples x targets, float32, the
data's own log units), ``obsm['landmarks']`` the landmark genes (a samples x landmarks
frame, columns named by gene), ``var['also_landmark']`` (True for a target gene that is
also a landmark: D-GEX maps measure such genes by other probes), ``obs['split']``
(train/val/test: what the trained model learns from) and ``obs['fold']`` (cross-validation
fold, -1 when the evaluation uses the split instead), ``uns['gene_sets']`` (how many genes
of each set were found, the missing ones, the targets that are also landmarks),
``uns['units']`` and ``uns['provenance_json']``.

Targets that are also landmarks stay targets (the model infers every probe set of the map,
as D-GEX does), but predicting a gene from another probe of itself is easy: the evaluation
scores them apart from the other targets
(``medgen.tasks.expression_inference.evaluate``).
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
from sklearn.model_selection import GroupKFold

from medgen import provenance
from medgen.atomic import atomic_path
from medgen.data.expression import LOG_LAYER, check_unique
from medgen.data.gene_matching import average, match_genes
from medgen.data.io.tables import read_table
from medgen.errors import MedgenInputError
from medgen.tasks.expression_inference.gene_sets import (
    GeneSets,
    collapse_probes,
    gene_sets_from_maps,
    select_genes,
    top_variance_landmarks,
)

log = logging.getLogger(__name__)

LANDMARKS_KEY = "landmarks"
SECTION = "expression_inference"


def read_values(table: dict[str, Any]) -> pd.DataFrame:
    """The table of ``expression_inference.table`` as samples x probes/genes (float64).

    Raises MedgenInputError for a missing path, duplicated sample IDs, or no numeric data.
    """
    if not table["path"]:
        raise MedgenInputError(f"config key '{SECTION}.table.path' is empty; name the "
                               "expression table (source: table)")
    adata = read_table(table["path"], table["format"], table["orientation"])
    frame = pd.DataFrame(np.asarray(adata.X, dtype=np.float64), index=adata.obs_names.astype(str),
                         columns=adata.var_names.astype(str))
    check_unique(frame.index, "sample", table["path"])
    duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if duplicated:  # averaging them as one probe would silently shift its gene
        raise MedgenInputError(
            f"{table['path']}: {len(duplicated)} probe/gene IDs appear more than once "
            f"(first: {duplicated[:5]}); keep one row per probe")
    return frame


def unique_genes(values: pd.DataFrame, duplicates: str) -> pd.DataFrame:
    """``values`` (samples x genes) with one column per gene: a gene named by several
    columns refused (``duplicates: refuse``) or averaged (``mean``), by the one matcher
    (``medgen.data.gene_matching``)."""
    genes = list(dict.fromkeys(values.columns))
    positions, _ = match_genes(values.columns, genes, duplicates, "the data",
                               f"{SECTION}.gene_sets.duplicate_genes")
    if len(genes) == values.shape[1]:
        return values
    return pd.DataFrame(average(values.to_numpy(), positions), index=values.index,
                        columns=genes)


def choose_gene_sets(values: pd.DataFrame, train: np.ndarray, cfg: dict[str, Any]
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(landmarks, targets, report): the two matrices (samples x genes, matched by gene
    name) and how many genes of each set were found.

    ``cfg``: the ``gene_sets`` section; ``train``: boolean rows the 'variance' choice may
    look at (landmarks are chosen on training samples only). MedgenInputError when fewer
    than ``min_found`` of a set are in the data (naming the first missing genes), for
    duplicated gene names, or for an empty list or map path. Genes in both sets (maps
    only: lists must be disjoint) are reported as ``targets_also_landmarks``.
    """
    source, min_found = cfg["source"], cfg["min_found"]
    if source == "maps":
        for key in ("landmark_map", "target_map"):
            if not cfg[key]:
                raise MedgenInputError(f"config key '{SECTION}.gene_sets.{key}' is empty "
                                       "(gene_sets.source: maps)")
        sets, landmark_probes, target_probes = gene_sets_from_maps(cfg["landmark_map"],
                                                                   cfg["target_map"])
        landmark_values = collapse_probes(values, landmark_probes)
        target_values = collapse_probes(values, target_probes)
    else:
        values = unique_genes(values, cfg["duplicate_genes"])
        if source == "lists":
            for key in ("landmarks", "targets"):
                if not cfg[key]:
                    raise MedgenInputError(f"config key '{SECTION}.gene_sets.{key}' is "
                                           "empty (gene_sets.source: lists)")
            sets = GeneSets(tuple(cfg["landmarks"]), tuple(cfg["targets"]))
            shared = sorted(set(sets.landmarks) & set(sets.targets))
            if shared:
                raise MedgenInputError(f"genes listed both as landmarks and targets: "
                                       f"{shared[:5]}")
        else:
            sets = top_variance_landmarks(values[train], cfg["landmark_fraction"])
        landmark_values = target_values = values
    rule, key = cfg["duplicate_genes"], f"{SECTION}.gene_sets.duplicate_genes"
    x, missing_x = select_genes(landmark_values, sets.landmarks, "landmark", min_found,
                                rule, key)
    y, missing_y = select_genes(target_values, sets.targets, "target", min_found, rule, key)
    report = {
        "source": source,
        "landmarks_found": int(x.shape[1]), "landmarks_in_set": len(sets.landmarks),
        "targets_found": int(y.shape[1]), "targets_in_set": len(sets.targets),
        "missing_landmarks": missing_x, "missing_targets": missing_y,
        "targets_also_landmarks": shared_genes(x.columns, y.columns),
    }
    log.info("gene sets (%s): %d of %d landmarks and %d of %d targets found in the data",
             source, x.shape[1], len(sets.landmarks), y.shape[1], len(sets.targets))
    for name, missing in (("landmark", missing_x), ("target", missing_y)):
        if missing:
            log.warning("%d %s genes not in the data (first: %s)", len(missing), name,
                        ", ".join(missing[:5]))
    shared = report["targets_also_landmarks"]
    if shared:
        log.warning("%d of %d target genes are also landmarks, measured by other probes "
                    "(first: %s): trained and inferred as targets, scored apart from the "
                    "other targets in the evaluation", len(shared), y.shape[1],
                    ", ".join(shared[:5]))
    return x, y, report


def shared_genes(landmarks: pd.Index | list[str], targets: pd.Index | list[str]
                 ) -> list[str]:
    """The target genes that are also landmarks, in target order (exact names)."""
    landmark_set = set(map(str, landmarks))
    return [str(g) for g in targets if str(g) in landmark_set]


def assign_folds(samples: pd.Index, folds: int, seed: int, groups: pd.Series | None = None
                 ) -> np.ndarray:
    """Fold index (0..folds-1) per sample; a patient's samples share a fold.

    ``groups`` (patient per sample) default: every sample its own patient. Folds are
    shuffled with ``seed``. MedgenInputError when there are fewer patients than folds.
    """
    groups = pd.Series(np.asarray(samples), index=samples) if groups is None else groups
    n_groups = groups.nunique()
    if n_groups < folds:
        raise MedgenInputError(f"{n_groups} patients cannot make {folds} folds "
                               f"(config key '{SECTION}.folds')")
    fold = np.full(len(samples), -1)
    splitter = GroupKFold(folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(samples)), groups=groups)):
        fold[test] = k
    return fold


def prepare_expression_inference(cfg: dict[str, Any], seed: int, out_h5ad: str | os.PathLike,
                           expression_h5ad: str | os.PathLike | None = None) -> ad.AnnData:
    """Build and write the landmark/target matrices of a run.

    Parameters
    ----------
    cfg
        The validated ``expression_inference`` section.
    seed
        Seeds the fold assignment.
    out_h5ad
        Output (layout in the module docstring), written atomically.
    expression_h5ad
        For source 'expression': medgen's preprocessed expression file; its log1p layer and
        its patient-level split are used (folds: none).

    Returns
    -------
    anndata.AnnData
        What was written.

    Raises
    ------
    MedgenInputError
        Unreadable tables, too few genes of a set found, NaN in the selected genes, too few
        patients for the folds, or a missing ``expression_h5ad``.
    """
    inputs: list[str] = []
    if cfg["source"] == "expression":
        if expression_h5ad is None:
            raise MedgenInputError(f"{SECTION}.source is 'expression' but no preprocessed "
                                   "expression file was given")
        source = ad.read_h5ad(expression_h5ad)
        values = pd.DataFrame(np.asarray(source.layers[LOG_LAYER], dtype=np.float64),
                              index=source.obs_names.astype(str),
                              columns=source.var_names.astype(str))
        split = source.obs["split"].astype(str).to_numpy()
        fold = np.full(len(values), -1)
        units = "log1p(counts per target_sum), from the expression section's preprocessing"
        inputs.append(str(expression_h5ad))
    else:
        values = read_values(cfg["table"])
        groups = None
        if cfg["table"]["group_by"]:
            groups = _patients(values.index, cfg["table"])
            inputs.append(cfg["table"]["metadata"])
        split = np.full(len(values), "train", dtype=object)  # the model learns from all
        fold = assign_folds(values.index, cfg["folds"], seed, groups)
        units = f"as in {Path(cfg['table']['path']).name} (probes averaged per gene)"
        inputs.append(cfg["table"]["path"])
    gene_sets = cfg["gene_sets"]
    inputs += [gene_sets[k] for k in ("landmark_map", "target_map")
               if gene_sets["source"] == "maps"]
    x, y, report = choose_gene_sets(values, split == "train", gene_sets)
    for name, frame in (("landmark", x), ("target", y)):
        bad = frame.columns[~np.isfinite(frame.to_numpy()).all(axis=0)].tolist()
        if bad:
            raise MedgenInputError(f"NaN or infinite values in {len(bad)} {name} genes "
                                   f"(first: {bad[:5]}); impute or drop them first")
    obs = pd.DataFrame({"split": split, "fold": fold}, index=values.index)
    var = pd.DataFrame({"also_landmark": y.columns.isin(x.columns)}, index=y.columns)
    out = ad.AnnData(X=y.to_numpy(np.float32), obs=obs, var=var)
    out.obsm[LANDMARKS_KEY] = x.astype(np.float32)
    out.uns["gene_sets"] = json.dumps(report)
    out.uns["units"] = units
    out.uns["provenance_json"] = json.dumps(
        provenance.collect(config=cfg, seed=seed, inputs=inputs), sort_keys=True, default=str)
    with atomic_path(out_h5ad) as tmp:
        out.write_h5ad(tmp)
    return out


def read_expression_inference_data(path: str | os.PathLike
                        ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(landmarks, targets, obs, uns) of a prepared file: samples x genes frames
    (float64), the split/fold columns, and ``uns`` with ``gene_sets`` and ``provenance``
    decoded. MedgenInputError for a file of another layout."""
    try:
        adata = ad.read_h5ad(path)
    except OSError as err:
        raise MedgenInputError(f"cannot read {path}: {err}") from None
    if LANDMARKS_KEY not in adata.obsm or not {"split", "fold"} <= set(adata.obs):
        raise MedgenInputError(f"{path} is not a prepared expression-inference file "
                               f"(needs obsm['{LANDMARKS_KEY}'] and obs split, fold)")
    x = pd.DataFrame(adata.obsm[LANDMARKS_KEY]).astype(np.float64)
    y = pd.DataFrame(np.asarray(adata.X, dtype=np.float64), index=adata.obs_names,
                     columns=adata.var_names.astype(str))
    uns = {"gene_sets": json.loads(adata.uns.get("gene_sets", "{}")),
           "provenance": json.loads(adata.uns.get("provenance_json", "{}")),
           "units": str(adata.uns.get("units", ""))}
    return x.set_axis(adata.obs_names), y, adata.obs[["split", "fold"]].copy(), uns


def _patients(samples: pd.Index, table: dict[str, Any]) -> pd.Series:
    if not table["metadata"]:
        raise MedgenInputError(f"config key '{SECTION}.table.group_by' is set but "
                               f"'{SECTION}.table.metadata' is empty")
    meta = pd.read_csv(table["metadata"], sep=None, engine="python", index_col=0)
    meta.index = meta.index.astype(str)
    if table["group_by"] not in meta.columns:
        raise MedgenInputError(f"metadata table {table['metadata']} has no column "
                               f"'{table['group_by']}' ({SECTION}.table.group_by)")
    missing = samples[~samples.isin(meta.index)]
    if len(missing):
        raise MedgenInputError(f"metadata table {table['metadata']} has no row for samples "
                               f"{list(missing[:5])}")
    return meta.loc[samples, table["group_by"]].astype(str)
