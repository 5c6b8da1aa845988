"""Apply a trained model to new data (as scvi-tools maps query data onto a trained model, or
a MONAI bundle runs inference): the model's own preprocessing settings, inference, and an
evaluation when the new data carry labels. Nothing is trained.

- expression: the new tables are normalised as in training and reduced to the model's genes
  with its stored scaling ranges; outputs: latent means, per-sample reconstruction error,
  reconstruction metrics and, for each label, node-label associations.
- anomaly: the new sample sheet's images are prepared with the model's imaging settings
  (all of them as evaluation data); outputs: per-image scores and residual maps, and the
  image-level (and, with masks, pixel-level) metrics when both classes are present.
- synthesis: the auto-context cascade that ``apply.model`` ends (stage K's model.pt, or the
  family folder; ``synthesis_cascade``) runs on the ``synthesis`` sample sheet's subjects,
  prepared with the model's normalisation (measured per subject, as the method defines);
  outputs: one NIfTI per subject and stage in the source grid and, for subjects with a
  target, the evaluation's metrics.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen import atomic, checkpoint, registry
from medgen.data.expression import preprocess_for_model
from medgen.data.expression_loaders import one_hot, read_expression
from medgen.data.imaging.prepare import prepare_images
from medgen.data.imaging.sheet import read_tsv
from medgen.errors import MedgenInputError
from medgen.evaluate.anomaly import evaluate_anomaly
from medgen.evaluate.anomaly_inference import score_splits
from medgen.evaluate.associations import node_associations
from medgen.evaluate.expression import decode, encode_means, load_model
from medgen.evaluate.reconstruction import bce, reconstruction_metrics

log = logging.getLogger(__name__)
APPLY_DIR = "apply"
# task -> the config section that names a model's new data
DATA_SECTION = {"expression": "expression", "anomaly": "imaging", "synthesis": "synthesis"}
# synthesis settings that describe the new data (grid, mask, CT checks), not the model
NEW_DATA_SETTINGS = ("mask", "resample_target", "target_is_ct", "ct_hu_range")


def model_task(model_path: str | os.PathLike) -> str:
    """The task of the family that wrote ``model_path`` (MedgenInputError if unreadable);
    a folder of ``stage<k>/model.pt`` is a synthesis cascade."""
    from medgen.evaluate.synthesis_cascade import last_stage

    return registry.get(checkpoint.load(last_stage(model_path)).family).task


def check_apply_config(config: dict[str, Any]) -> str:
    """The task of ``apply.model``, once the config names new data that fit it.

    Raises MedgenInputError (naming the key) when the model cannot be read, when the data
    section of its task is switched off (the new data would be the default config's demo
    or training data instead), or when expression tables are not given as local files.
    """
    model = config["apply"]["model"]
    if not model:
        raise MedgenInputError("config key 'apply.model' is empty; give the path of a model.pt")
    task = model_task(model)
    section = DATA_SECTION.get(task)
    if section is None:
        raise MedgenInputError(f"{model}: applying a {task!r} model is not supported yet")
    if not config[section]["activate"]:
        raise MedgenInputError(
            f"config key '{section}.activate' is false, but apply.model ({model}) is a "
            f"{task} model whose new data come from the '{section}' section: activate it "
            "and name the new data there"
        )
    if task == "expression" and config["expression"]["source"] != "files":
        raise MedgenInputError(
            f"config key 'expression.source' is {config['expression']['source']!r}; to apply "
            "a model, list the new tables under expression.files with source: files"
        )
    if task == "synthesis":
        from medgen.evaluate.synthesis_cascade import load_stages

        paths, stages = load_stages(model)
        synthesis_modalities(config["synthesis"], paths[-1], stages[0])
    return task


def synthesis_modalities(new: dict[str, Any], model: str | os.PathLike,
                         first: checkpoint.Checkpoint) -> tuple[list[str], str]:
    """(sources, target) the model was trained on, once the ``synthesis`` section ``new``
    names them and its sample sheet has a column for each source (the target column is
    optional); MedgenInputError naming the key or column otherwise (a missing or empty
    sheet: naming ``synthesis.sample_sheet`` and its path)."""
    sources, target = list(first.data["modalities"]), first.data["target"]
    if not new["sample_sheet"]:
        raise MedgenInputError(
            f"config key 'synthesis.sample_sheet' is empty; apply.model ({model}) needs a "
            f"sample sheet of new subjects with column(s) {', '.join(sources)}")
    if list(new["sources"]) != sources:
        raise MedgenInputError(
            f"config key 'synthesis.sources' is {list(new['sources'])}, but apply.model "
            f"({model}) was trained on source(s) {sources} -> '{target}': set "
            f"synthesis.sources: {sources} and name those columns in the sample sheet")
    if new["target"] != target:
        raise MedgenInputError(
            f"config key 'synthesis.target' is {new['target']!r}, but apply.model ({model}) "
            f"synthesises {target!r}: set synthesis.target: {target} (its column is optional)")
    try:  # the reader training mode uses: a missing or empty sheet is one clear error
        rows = read_tsv(Path(new["sample_sheet"]))
    except MedgenInputError as err:
        raise MedgenInputError(f"config key 'synthesis.sample_sheet': {err}") from None
    columns = [name for name in rows[0] if name is not None]
    missing = [name for name in sources if name not in columns]
    if missing:
        raise MedgenInputError(
            f"sample sheet {new['sample_sheet']} has no column {', '.join(missing)}: "
            f"apply.model ({model}) expects the source(s) {sources} (one column each; "
            f"it has: {', '.join(columns)})")
    return sources, target


def apply_model(model_path: str | os.PathLike, config: dict[str, Any],
                out_dir: str | os.PathLike, device: str = "cpu") -> Path:
    """Run a trained ``model.pt`` on the new data that ``config`` names; returns the
    metrics (or, without labels, the scores) file written under ``out_dir``.

    Parameters
    ----------
    model_path
        A medgen ``model.pt`` of any registered family; for a synthesis cascade the last
        stage's (earlier stages in the sibling ``stage<k>`` folders) or the family folder.
    config
        The resolved config of this run: its ``expression`` (tables, metadata, labels),
        ``imaging`` (sample_sheet, data_root) or ``synthesis`` (sample_sheet, data_root,
        mask, inference) section names the new data; preprocessing settings come from the
        model's own stored config.
    out_dir
        Output folder (``data/``, then the task's outputs).
    device
        Where networks run ('cpu', 'cuda').

    Raises
    ------
    MedgenInputError
        Unreadable model, new data that do not fit it (other genes, channels), or a model
        whose checkpoint lacks the settings needed to prepare new data.
    """
    task = check_apply_config({**config, "apply": {"model": str(model_path)}})
    out_dir = Path(out_dir)
    if task == "synthesis":
        return _apply_synthesis(model_path, config, out_dir, device)
    ckpt = checkpoint.load(model_path)
    if task == "expression":
        return _apply_expression(model_path, ckpt, config, out_dir, device)
    if task == "anomaly":
        return _apply_anomaly(model_path, ckpt, config, out_dir, device)
    raise MedgenInputError(f"{model_path}: applying a {task!r} model is not supported yet")


def _apply_expression(model_path, ckpt, config, out_dir: Path, device: str) -> Path:
    expression = dict(config["expression"])
    trained = ckpt.config.get("expression", {})
    # the model's normalisation: library size of its training data
    expression["target_sum"] = trained.get("target_sum", expression["target_sum"])
    h5ad = out_dir / "data" / "expression.h5ad"
    preprocess_for_model(expression["files"], expression, ckpt.data, h5ad)
    data = read_expression(h5ad, need_train=False)
    module, _ = load_model(model_path, genes=data.genes, device=device)
    codes = one_hot(data, ckpt.data["condition_on"], ckpt.data["condition_categories"])
    mu = encode_means(module, data.x, codes)
    recon = decode(module, mu, codes)
    nodes = [f"node{j}" for j in range(mu.shape[1])]
    obs = data.adata.obs
    per_sample = pd.DataFrame({
        "mse": ((data.x - recon) ** 2).mean(axis=1),
        "bce_above_floor": [bce(a[None], b[None]) - bce(a[None], a[None])
                            for a, b in zip(data.x, recon)],
    }, index=obs.index)
    with atomic.atomic_path(out_dir / "latent.tsv") as tmp:
        pd.DataFrame(mu, index=obs.index, columns=nodes).to_csv(tmp, sep="\t",
                                                                float_format="%.6g")
    with atomic.atomic_path(out_dir / "reconstruction_by_sample.tsv") as tmp:
        per_sample.to_csv(tmp, sep="\t", float_format="%.6g")
    # a label with one class in the new cohort ranks nothing: say so instead of a silent gap
    present = [label for label in config["expression"]["labels"] if label in obs]
    labels = [label for label in present if obs[label].dropna().nunique() > 1]
    one_class = sorted(set(present) - set(labels))
    if labels:
        values = {label: obs[label].to_numpy(dtype=object) for label in labels}
        with atomic.atomic_path(out_dir / "node_associations.tsv") as tmp:
            node_associations(mu, values, nodes).to_csv(tmp, sep="\t", index=False,
                                                        float_format="%.6g")
    reconstruction = {name.removeprefix("test_"): value
                      for name, value in reconstruction_metrics(data.x, recon).items()}
    metrics = {"model": str(model_path), "family": ckpt.family, "n_samples": len(obs),
               "labels": labels, "labels_with_one_class": one_class, **reconstruction}
    atomic.write_json(out_dir / "metrics.json", json.loads(json.dumps(metrics, default=str)))
    return out_dir / "metrics.json"


def _apply_anomaly(model_path, ckpt, config, out_dir: Path, device: str) -> Path:
    trained = ckpt.config.get("imaging")
    if not trained:
        raise MedgenInputError(
            f"{model_path} holds no imaging settings (it was not trained through the "
            "workflow): cannot prepare new images as it saw them")
    new = config["imaging"]
    # preprocessing as in training; only where the new images are comes from this config
    imaging = {**trained, "sample_sheet": new["sample_sheet"], "data_root": new["data_root"],
               "scoring": new["scoring"], "evaluation": new["evaluation"]}
    data_dir = out_dir / "data"
    prepare_images(imaging["sample_sheet"], imaging, config["seed"], data_dir, apply=True)
    scores = out_dir / "scores" / ckpt.family
    score_splits(ckpt.family, model_path, data_dir, scores, imaging["scoring"],
                 imaging["kind"], device)
    y = np.load(data_dir / "test.npz")["y"]
    if len(np.unique(y[y >= 0])) < 2:  # no labels, or one class only: nothing to rank
        return scores / "scores_test.tsv"
    return evaluate_anomaly({ckpt.family: scores}, data_dir, imaging, out_dir / "report",
                            config["seed"])


def _apply_synthesis(model_path, config, out_dir: Path, device: str) -> Path:
    from medgen.data.imaging.pairs import read_pairs
    from medgen.data.imaging.synthesis_prepare import (
        load_subject,
        prepare_synthesis,
        read_manifest,
    )
    from medgen.evaluate import synthesis_inference as inference
    from medgen.evaluate.synthesis import score_outputs
    from medgen.evaluate.synthesis_cascade import load_stages, model_preparation
    from medgen.family import resolve
    from medgen.provenance import sha256_file

    paths, stages = load_stages(model_path)
    first, new = stages[0], config["synthesis"]
    sources, target = synthesis_modalities(new, paths[-1], first)
    prep = model_preparation(paths[0], first)
    if prep.get("mask") not in (None, new["mask"]):
        log.warning("the model's subjects were masked with %r, the new ones with %r "
                    "(synthesis.mask): the in-mask normalisation sees other voxels",
                    prep["mask"], new["mask"])
    # the model's normalisation; grid, mask and CT checks are properties of the new data
    settings = {**{k: new[k] for k in NEW_DATA_SETTINGS},
                **{k: prep[k] for k in ("normalisation", "target_normalisation", "ct_window")},
                "sample_sheet": new["sample_sheet"], "data_root": new["data_root"],
                "sources": sources, "target": target}
    pairs = [dataclasses.replace(pair, split="test")  # all new: whatever split the sheet says
             for pair in read_pairs(new["sample_sheet"], sources, target, new["data_root"],
                                    require_target=False)]
    data_dir = prepare_synthesis(pairs, settings, out_dir / "data", require_train=False)
    manifest = read_manifest(data_dir)
    models = [resolve(registry.get(s.family).load)(s, device) for s in stages]
    window = {"window": new["inference"]["window"], "overlap": new["inference"]["overlap"]}
    family = first.family
    rows, written = [], {}
    for subject in manifest["subjects"]:
        arrays = load_subject(data_dir, subject)
        mask = arrays["mask"][0]
        outputs = inference.cascade(models, arrays["source"], mask, **window)
        written[subject] = [str(p) for p in inference.write_subject(
            outputs, manifest, subject, mask, out_dir / family, [m.data for m in models])]
        log.info("%s: %d stage(s) written", subject, len(outputs))
        if "target" not in arrays:
            continue
        label = arrays["label"][0] if "label" in arrays else None
        scored, _ = score_outputs(
            {f"{family}_stage{k}": out for k, out in enumerate(outputs, start=1)},
            arrays["target"][0], manifest, subject, mask, label)
        rows += [{"subject": subject, **row} for row in scored]
    method = settings["target_normalisation"] or settings["normalisation"]
    summary = {"model": str(model_path), "family": family,
               "stages": [{"path": str(p), "sha256": sha256_file(p)} for p in paths],
               "sources": sources, "target": target, "preparation": settings,
               "units": "HU" if method == "ct_window" else "normalised",
               "subjects": written, "evaluated": sorted({r["subject"] for r in rows})}
    if rows:
        table = pd.DataFrame(rows)
        with atomic.atomic_path(out_dir / "metrics.tsv") as tmp:
            table.to_csv(tmp, sep="\t", index=False)
        summary["mean"] = (table.drop(columns="subject").groupby("method", sort=False).mean()
                           .to_dict(orient="index"))
    atomic.write_json(out_dir / "synthesis.json", json.loads(json.dumps(summary, default=str)))
    return out_dir / "metrics.tsv" if rows else out_dir / "synthesis.json"
