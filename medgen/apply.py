"""Apply a trained model to new data (as scvi-tools maps query data onto a trained model, or
a MONAI bundle runs inference): the model's own preprocessing settings, inference, and an
evaluation when the new data carry labels. Nothing is trained.

- expression: the new tables are normalised as in training and reduced to the model's genes
  with its stored scaling ranges; outputs: latent means, per-sample reconstruction error,
  reconstruction metrics and, for each label, node-label associations.
- anomaly: the new sample sheet's images are prepared with the model's imaging settings
  (all of them as evaluation data); outputs: per-image scores and residual maps, and the
  image-level (and, with masks, pixel-level) metrics when both classes are present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen import atomic, checkpoint, registry
from medgen.data.expression import preprocess_for_model
from medgen.data.expression_loaders import one_hot, read_expression
from medgen.data.imaging.prepare import prepare_images
from medgen.errors import MedgenInputError
from medgen.evaluate.anomaly import evaluate_anomaly
from medgen.evaluate.anomaly_inference import score_splits
from medgen.evaluate.associations import node_associations
from medgen.evaluate.expression import decode, encode_means, load_model
from medgen.evaluate.reconstruction import bce, reconstruction_metrics

APPLY_DIR = "apply"
# task -> the config section that names a model's new data
DATA_SECTION = {"expression": "expression", "anomaly": "imaging"}


def model_task(model_path: str | os.PathLike) -> str:
    """The task of the family that wrote ``model_path`` (MedgenInputError if unreadable)."""
    return registry.get(checkpoint.load(model_path).family).task


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
    return task


def apply_model(model_path: str | os.PathLike, config: dict[str, Any],
                out_dir: str | os.PathLike, device: str = "cpu") -> Path:
    """Run a trained ``model.pt`` on the new data that ``config`` names; returns the
    metrics (or, without labels, the scores) file written under ``out_dir``.

    Parameters
    ----------
    model_path
        A medgen ``model.pt`` of any registered family.
    config
        The resolved config of this run: its ``expression`` (tables, metadata, labels) or
        ``imaging`` (sample_sheet, data_root) section names the new data; preprocessing
        settings come from the model's own stored config.
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
    ckpt = checkpoint.load(model_path)
    out_dir = Path(out_dir)
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
