"""Evaluation of the synthesis task: every auto-context level of every trained family and
the baselines, on the same held-out subjects, with the same in-mask metrics
(``synthesis_metrics``); the per-subject table and the mean per method and split.

The validation subject(s) (split 'val', ``synthesis.validation_subject``) are evaluated in
the same job beside the test subjects, so normalisation and hyperparameters can be chosen
on val without looking at test. CT targets ('ct_window') are compared in Hounsfield units
(MAE in HU); MR targets on their normalised scale."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen import atomic
from medgen.data.imaging import intensity
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.models.synthesis import OVERLAP, WINDOW
from medgen.tasks.synthesis import inference
from medgen.tasks.synthesis.baselines import (
    fit_constant,
    fit_voxel_regression,
    predict_constant,
    predict_voxel_regression,
    train_generator_l1,
    train_unet_l1,
)
from medgen.tasks.synthesis.loaders import read_volumes
from medgen.tasks.synthesis.metrics import metric_notes, synthesis_metrics
from medgen.tasks.synthesis.prepare import read_manifest

log = logging.getLogger(__name__)
BASELINES = ("constant", "linear", "hgb", "unet_l1", "generator_l1")
SPLITS = ("test", "val")  # evaluated splits; test first: the headline numbers


def baseline_predictors(prepared: str | os.PathLike, baselines: list[str], seed: int,
                        unet: dict[str, Any], num_threads: int | None = None,
                        generator: dict[str, Any] | None = None) -> dict[str, Any]:
    """Method name -> function(source, mask) -> prediction, fitted on the training split
    of ``prepared`` (level-1 data: the original sources only).

    ``unet``: the L1 UNet's hyperparameters; ``generator``: the configured context_gan
    hyperparameters, which 'generator_l1' trains with L1 only.

    Raises
    ------
    MedgenInputError
        An unknown baseline, or 'generator_l1' without ``generator``.
    """
    _, train = read_volumes(prepared, "train")
    predictors: dict[str, Any] = {}
    for name in baselines:
        if name == "constant":
            value = fit_constant(train)
            predictors["constant"] = (
                lambda source, mask, value=value: predict_constant(value, mask))
        elif name in ("linear", "hgb"):
            model = fit_voxel_regression(train, name, seed)
            predictors[f"voxel_{name}"] = (
                lambda source, mask, model=model: predict_voxel_regression(model, source, mask))
        elif name == "unet_l1":
            # selected as the family is: on the validation subject when it selects on val
            select = bool((generator or {}).get("select_on_val"))
            val = read_volumes(prepared, "val")[1] if select else None
            net = train_unet_l1(train, unet, seed, num_threads, val_volumes=val)
            predictors["unet_l1"] = net.predict
        elif name == "generator_l1":
            if generator is None:
                raise MedgenInputError(
                    "synthesis.evaluation.baselines lists 'generator_l1' but no context_gan "
                    "hyperparameters were given (models.context_gan) to build its generator")
            _, val = read_volumes(prepared, "val")  # its select_on_val, as the family's
            net = train_generator_l1(train, generator, seed, num_threads, val_volumes=val)
            predictors["generator_l1"] = net.predict
        else:
            raise MedgenInputError(
                f"unknown synthesis baseline {name!r} in synthesis.evaluation.baselines; "
                f"one of: {', '.join(BASELINES)}")
    return predictors


def report_scale(volume: np.ndarray, manifest: dict[str, Any], subject: str,
                 mask: np.ndarray) -> tuple[np.ndarray, str]:
    """(volume on the scale metrics are reported in, its units): Hounsfield units for a
    'ct_window' target (the fixed window inverted, ``intensity.invert``), else the
    normalised scale unchanged (MR scales are measured per target)."""
    settings = manifest["settings"]
    method = settings.get("target_normalisation") or settings["normalisation"]
    if method != "ct_window":
        return volume, "normalised"
    params = manifest["subjects"][subject]["target_params"]
    return intensity.invert(volume, params, mask), "HU"


def score_outputs(outputs: dict[str, np.ndarray], target: np.ndarray,
                  manifest: dict[str, Any], subject: str, mask: np.ndarray,
                  label: np.ndarray | None = None,
                  coverage: np.ndarray | None = None) -> tuple[list[dict[str, Any]], str]:
    """In-mask metrics (``synthesis_metrics``) of each method's prediction of one subject's
    target, both on the reporting scale (``report_scale``: HU for a CT target).

    ``outputs``: method -> prediction (D, H, W) on the prepared (normalised) scale; ``target``,
    ``mask`` (bool), ``label`` (tumour labels, optional) and ``coverage`` (0 outside a
    resampled target's field of view, optional: left out) share its shape. Returns (one row
    per method: ``method`` and the metrics, the units of the scale). Metrics the volume is
    too thin for are NaN; a warning says which and why (``metric_notes``).
    """
    reference, units = report_scale(target, manifest, subject, mask)
    reasons: dict[str, list[str]] = {}
    for name, why in metric_notes(np.shape(target)).items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        log.warning("%s: %s %s NaN: %s", subject, ", ".join(names),
                    "is" if len(names) == 1 else "are", why)
    if coverage is not None:
        log.info("%s: %d in-mask voxel(s) outside the target's field of view left out of the "
                 "metrics", subject, int(((mask != 0) & (coverage == 0)).sum()))
    rows = []
    for method, prediction in outputs.items():
        prediction, _ = report_scale(prediction, manifest, subject, mask)
        rows.append({"method": method,
                     **synthesis_metrics(prediction, reference, mask, label,
                                         coverage=coverage)})
    return rows, units


def subject_notes(manifest: dict[str, Any], subjects: list[str],
                  shapes: dict[str, tuple[int, ...]]) -> dict[str, dict[str, Any]]:
    """What the metrics of each scored subject left out, for the outputs' metadata: {subject:
    {'nan_metrics': {metric: why}, 'target_coverage': share of the mask,
    'excluded_voxels': ...}} for subjects with anything to say (``shapes``: the scored
    volume's shape per subject)."""
    out: dict[str, dict[str, Any]] = {}
    for subject in subjects:
        entry: dict[str, Any] = {}
        notes = metric_notes(shapes[subject])
        if notes:
            entry["nan_metrics"] = notes
        target = manifest["subjects"][subject].get("grid", {}).get("target", {})
        if target.get("excluded_voxels"):
            entry.update(target_coverage=target["coverage"],
                         excluded_voxels=target["excluded_voxels"])
        if entry:
            out[subject] = entry
    return out


def evaluate_synthesis(prepared: str | os.PathLike, models: dict[str, list[str]],
                       out_dir: str | os.PathLike, baselines: list[str], seed: int,
                       unet: dict[str, Any], window: int = WINDOW,
                       overlap: float = OVERLAP, splits: tuple[str, ...] = SPLITS,
                       num_threads: int | None = None,
                       generator: dict[str, Any] | None = None) -> pd.DataFrame:
    """Metrics of every method on every subject of ``splits``; writes ``metrics.tsv`` (one
    row per subject and method, with its ``split``), ``metrics.json``, each level's
    synthetic volumes (``<family>/<subject>_level<k>.nii.gz``) and each baseline's
    (``<baseline>/<subject>.nii.gz``).

    ``metrics.json``: ``split`` ('test'), ``subjects`` and ``mean`` (means per method) of
    the test subjects, as before; ``splits`` holds {split: {'subjects', 'mean'}} for every
    evaluated split with subjects (the validation subject under 'val'); ``units``: 'HU' for
    a CT target, else 'normalised'; ``notes``: per subject, metrics that are NaN and why,
    and the voxels left out as outside the target's field of view (``subject_notes``).

    Parameters
    ----------
    prepared
        The level-1 prepared folder (``prepare_synthesis``).
    models
        Family -> its level model.pt paths in level order (auto-context cascade).
    baselines
        Any of ``BASELINES``, fitted here on the training split.
    unet
        Hyperparameters of the L1 UNet baseline (``train_unet_l1``).
    splits
        Splits evaluated ('val': the validation subject, for choices made without test).
    generator
        The configured context_gan hyperparameters, for 'generator_l1'.

    Raises
    ------
    MedgenInputError
        An unknown baseline, or 'generator_l1' without ``generator``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(prepared)
    cascades = {family: [inference.load(p) for p in paths] for family, paths in models.items()}
    predictors = baseline_predictors(prepared, baselines, seed, unet, num_threads, generator)
    rows = []
    evaluated: dict[str, list[str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    units = "normalised"
    for split in splits:
        subjects, volumes = read_volumes(prepared, split)
        if subjects:
            evaluated[split] = subjects
        for subject, volume in zip(subjects, volumes):
            source, mask, target = volume["source"], volume["mask"][0], volume["target"][0]
            label = volume["label"][0] if "label" in volume else None
            coverage = volume["coverage"][0] if "coverage" in volume else None
            shapes[subject] = target.shape
            outputs: dict[str, np.ndarray] = {}
            for family, levels in cascades.items():
                level_outputs, _ = inference.synthesise_subject(
                    levels, source, mask, manifest, subject, out_dir / family,
                    window=window, overlap=overlap)
                for k, out in enumerate(level_outputs, start=1):
                    outputs[f"{family}_level{k}"] = out
            for name, predict in predictors.items():
                outputs[name] = predict(source, mask)
                # the report's mid-slices show baselines beside the levels
                inference.write_subject([outputs[name]], manifest, subject, mask,
                                        out_dir / name, [{"baseline": name}], [subject])
            scored, units = score_outputs(outputs, target, manifest, subject, mask, label,
                                          coverage)
            for row in scored:
                rows.append({"split": split, "subject": subject, **row})
                log.info("%s (%s) %s: PSNR %.2f dB, SSIM %.3f", subject, split, row["method"],
                         row["psnr"], row["ssim"])
    table = pd.DataFrame(rows)
    with atomic.atomic_path(out_dir / "metrics.tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    metric_columns = [c for c in table.columns if c not in ("split", "subject", "method")]
    tidy.write([tidy.melt(table, "subject", metric_columns, unit="subject")],
               out_dir / tidy.FILE)
    by_split = {
        split: {"subjects": subjects,
                "mean": (table[table["split"] == split].drop(columns=["split", "subject"])
                         .groupby("method", sort=False).mean().to_dict(orient="index"))}
        for split, subjects in evaluated.items()}
    test = by_split.get("test", {"subjects": [], "mean": {}})
    atomic.write_json(out_dir / "metrics.json", {
        "split": "test", "subjects": test["subjects"], "mean": test["mean"],
        "splits": by_split, "units": units, "target": manifest["target"],
        "sources": manifest["sources"], "normalisation": manifest["settings"],
        "notes": subject_notes(manifest, list(shapes), shapes)})
    return table
