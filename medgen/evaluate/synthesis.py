"""Evaluation of the synthesis task: every auto-context stage of every trained family and
the baselines, on the same held-out subjects, with the same in-mask metrics
(``synthesis_metrics``); the per-subject table and the mean per method."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen import atomic
from medgen.data.imaging.synthesis_loaders import read_volumes
from medgen.data.imaging.synthesis_prepare import read_manifest
from medgen.evaluate import synthesis_inference as inference
from medgen.evaluate.synthesis_baselines import (
    fit_voxel_regression,
    predict_voxel_regression,
    train_unet_l1,
)
from medgen.evaluate.synthesis_metrics import synthesis_metrics

log = logging.getLogger(__name__)
BASELINES = ("linear", "hgb", "unet_l1")


def baseline_predictors(prepared: str | os.PathLike, baselines: list[str], seed: int,
                        unet: dict[str, Any], num_threads: int | None = None) -> dict[str, Any]:
    """Method name -> function(source, mask) -> prediction, fitted on the training split
    of ``prepared`` (stage-1 data: the original sources only)."""
    _, train = read_volumes(prepared, "train")
    predictors: dict[str, Any] = {}
    for name in baselines:
        if name in ("linear", "hgb"):
            model = fit_voxel_regression(train, name, seed)
            predictors[f"voxel_{name}"] = (
                lambda source, mask, model=model: predict_voxel_regression(model, source, mask))
        elif name == "unet_l1":
            net = train_unet_l1(train, unet, seed, num_threads)
            predictors["unet_l1"] = net.predict
        else:
            raise ValueError(f"unknown synthesis baseline {name!r}; one of {BASELINES}")
    return predictors


def evaluate_synthesis(prepared: str | os.PathLike, models: dict[str, list[str]],
                       out_dir: str | os.PathLike, baselines: list[str], seed: int,
                       unet: dict[str, Any], window: int = inference.WINDOW,
                       overlap: float = inference.OVERLAP, split: str = "test",
                       num_threads: int | None = None) -> pd.DataFrame:
    """Metrics of every method on every subject of ``split``; writes ``metrics.tsv`` (one
    row per subject and method), ``metrics.json`` (means per method) and each stage's
    synthetic volumes (``<family>/<subject>_stage<k>.nii.gz``).

    Parameters
    ----------
    prepared
        The stage-1 prepared folder (``prepare_synthesis``).
    models
        Family -> its stage model.pt paths in stage order (auto-context cascade).
    baselines
        Any of ``BASELINES``, fitted here on the training split.
    unet
        Hyperparameters of the L1 UNet baseline (``train_unet_l1``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(prepared)
    cascades = {family: [inference.load(p) for p in paths] for family, paths in models.items()}
    predictors = baseline_predictors(prepared, baselines, seed, unet, num_threads)
    subjects, volumes = read_volumes(prepared, split)
    rows = []
    for subject, volume in zip(subjects, volumes):
        source, mask, target = volume["source"], volume["mask"][0], volume["target"][0]
        label = volume["label"][0] if "label" in volume else None
        outputs: dict[str, np.ndarray] = {}
        for family, stages in cascades.items():
            stage_outputs = inference.cascade(stages, source, mask, window=window,
                                              overlap=overlap)
            inference.write_subject(stage_outputs, manifest, subject, mask, out_dir / family,
                                    [m.data for m in stages])
            for k, out in enumerate(stage_outputs, start=1):
                outputs[f"{family}_stage{k}"] = out
        for name, predict in predictors.items():
            outputs[name] = predict(source, mask)
        for method, prediction in outputs.items():
            row = synthesis_metrics(prediction, target, mask, label)
            rows.append({"subject": subject, "method": method, **row})
            log.info("%s %s: PSNR %.2f dB, SSIM %.3f", subject, method, row["psnr"],
                     row["ssim"])
    table = pd.DataFrame(rows)
    with atomic.atomic_path(out_dir / "metrics.tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    means = table.drop(columns="subject").groupby("method", sort=False).mean()
    atomic.write_json(out_dir / "metrics.json", {
        "split": split, "subjects": subjects, "target": manifest["target"],
        "sources": manifest["sources"], "normalisation": manifest["settings"],
        "mean": means.to_dict(orient="index")})
    return table
