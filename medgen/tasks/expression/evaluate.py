"""Evaluation of the expression task's latent models (Tybalt, and any family whose trained
model offers ``encode(x, c) -> (mu, logvar)``, ``decode(z, c)`` and ``gene_weights()``):
latent means, decoder gene weights, node-label associations, samples from the prior, a latent
traversal, and metrics beside PCA, ICA and NMF at the same dimension on held-out patients.
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
import torch

from medgen import atomic, checkpoint, registry
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.family import resolve
from medgen.seeding import seed_all
from medgen.tasks.expression import figures
from medgen.tasks.expression.associations import node_associations
from medgen.tasks.expression.baselines import fit_baselines
from medgen.tasks.expression.latent import latent_metrics, undefined_label_notes
from medgen.tasks.expression.loaders import condition_name, one_hot, read_expression
from medgen.tasks.expression.reconstruction import reconstruction_metrics

log = logging.getLogger(__name__)

METRICS_CSV = "metrics.csv"
TRAVERSAL_SD = 3.0  # traverse from -3 to +3 standard deviations
METRIC_DIGITS = 10  # significant digits in metrics files: stable across BLAS rounding


def load_model(model_path: str | os.PathLike, genes: list[str] | None = None,
               device: str = "cpu") -> tuple[Any, checkpoint.Checkpoint]:
    """The trained expression model of ``model.pt`` and its checkpoint.

    Raises MedgenInputError for a model of another task, or trained on other genes (or in
    another order) than ``genes``.
    """
    ckpt = checkpoint.load(model_path, family=tuple(registry.names("expression")),
                           data={"genes": list(genes)} if genes is not None else None)
    return resolve(registry.get(ckpt.family).load)(ckpt, device), ckpt


def _device(module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def encode_means(module, x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Posterior means (samples, latent) of x (samples, genes) with condition codes c."""
    device = _device(module)
    mu, _ = module.encode(torch.from_numpy(x).to(device), torch.from_numpy(c).to(device))
    return mu.cpu().numpy().astype(np.float64)


@torch.no_grad()
def decode(module, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Decoded expression (samples, genes) in [0, 1] of latents z with condition codes c."""
    device = _device(module)
    out = module.decode(torch.from_numpy(z.astype(np.float32)).to(device),
                        torch.from_numpy(c).to(device))
    return out.cpu().numpy().astype(np.float64)


def _round(value: Any) -> Any:
    """Fixed significant digits, None for NaN: identical files across reruns."""
    if value is None:
        return None
    value = float(value)
    if not np.isfinite(value):
        return None
    return float(f"{value:.{METRIC_DIGITS}g}")


def _write_tsv(frame: pd.DataFrame, path: Path, index: bool = True) -> None:
    with atomic.atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=index, float_format="%.6g")


def _reference_condition(signature: dict[str, Any], codes: np.ndarray, train: np.ndarray):
    """One-hot row of the most frequent training category (for prior/traversal decoding)."""
    if not signature["condition_categories"]:
        return codes[:1], None
    counts = codes[train].sum(axis=0)
    k = int(np.argmax(counts))
    return codes[train][codes[train][:, k] == 1][:1], signature["condition_categories"][k]


def evaluate_expression(
    h5ad_path: str | os.PathLike,
    model_path: str | os.PathLike,
    evaluation: dict[str, Any],
    labels: list[str],
    seed: int,
    out_dir: str | os.PathLike,
    training_metrics: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a trained expression model against linear baselines on the test split.

    Parameters
    ----------
    h5ad_path, model_path
        The preprocessed data and ``model.pt`` from ``medgen.train.train_model``.
    evaluation
        The validated ``evaluation:`` config section (knn_k, baselines, traversal_node,
        traversal_steps, n_prior_samples).
    labels
        obs columns scored (k-NN accuracy, silhouette, node associations, UMAP colours).
    seed
        Seeds baselines, prior samples and UMAP.
    out_dir
        Output folder (files below).
    training_metrics
        Lightning's ``metrics.csv`` of the training run; default: beside ``model.pt``.

    Returns
    -------
    The metrics dict written to ``metrics.json``.

    Files written: latent.h5ad, latent.tsv, gene_weights.tsv, node_associations.tsv,
    prior_samples.tsv, traversal.tsv, metrics.json, metrics.tsv, training_curves.png,
    latent_umap.png, metrics.png.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = read_expression(h5ad_path)
    module, ckpt = load_model(model_path, genes=data.genes)
    method = ckpt.family
    signature = ckpt.data
    missing = [label for label in labels if label not in data.adata.obs]
    if missing:
        raise MedgenInputError(
            f"labels {missing} are not obs columns of {h5ad_path}; "
            f"available: {', '.join(map(str, data.adata.obs.columns))}"
        )
    train, test = data.mask("train"), data.mask("test")
    if not test.any():
        raise MedgenInputError(f"{h5ad_path}: no samples with obs['split'] == 'test'")
    codes = one_hot(data, signature["condition_on"], signature["condition_categories"])
    latent_dim = ckpt.hparams["latent_dim"]
    nodes = [f"node{j}" for j in range(latent_dim)]
    obs = data.adata.obs.copy()
    label_values = {label: obs[label].to_numpy(dtype=object) for label in labels}

    # (1) VAE latent means for all samples; reconstructions of the test split from them
    seed_all(seed)
    latents = {method: encode_means(module, data.x, codes)}
    recons = {method: decode(module, latents[method][test], codes[test])}
    # (2) baselines fitted on train at the same dimension
    for name, baseline in fit_baselines(
        list(evaluation["baselines"]), data.x[train], latent_dim, seed
    ).items():
        latents[name] = baseline.encode(data.x)
        recons[name] = baseline.reconstruct(data.x[test])

    # (3) the same metrics for every method (NaN, noted, where the test split defines none)
    undefined = undefined_label_notes(label_values, test, train)
    table = {}
    for name in latents:
        row = reconstruction_metrics(data.x[test], recons[name])
        row.update(latent_metrics(latents[name], label_values, train, test,
                                  evaluation["knn_k"]))
        row["latent_dim"] = latents[name].shape[1]
        table[name] = {key: _round(value) for key, value in row.items()}
    metrics = {
        "methods": table,
        "knn_k": evaluation["knn_k"],
        "labels": list(labels),
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "n_genes": len(data.genes),
        "notes": (
            "test split; latent spaces z-scored with train mean/sd before k-NN (fit on "
            "train, scored on test) and silhouette; VAE latent = posterior means; "
            "MSE on unclipped reconstructions, BCE with reconstructions clipped to "
            "[1e-7, 1 - 1e-7]; bce_above_floor = bce - bce(x, x)"
            + "".join(f"; {note}" for note in undefined)
        ),
        "undefined_metrics": undefined,
    }
    atomic.write_json(out_dir / "metrics.json", metrics)
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.index.name = "method"
    frame = frame[sorted(frame.columns)]
    with atomic.atomic_path(out_dir / "metrics.tsv") as tmp:
        frame.to_csv(tmp, sep="\t", float_format="%.10g", na_rep="NaN")
    test_ids = obs.index[test].astype(str)
    per_sample = pd.concat([pd.DataFrame({
        "method": name, "sample": test_ids,
        "test_mse": ((data.x[test] - recons[name]) ** 2).mean(axis=1)}) for name in recons])
    tidy.write([
        tidy.melt(frame.reset_index(), "all",
                  [c for c in frame.columns if c != "latent_dim"], split="test"),
        tidy.melt(per_sample, "sample", ["test_mse"], unit="sample", split="test"),
    ], out_dir / tidy.FILE)

    # (4) latent space and decoder exports
    mu = latents[method]
    latent_adata = _latent_anndata(mu, obs, ckpt)
    with atomic.atomic_path(out_dir / "latent.h5ad") as tmp:
        latent_adata.write_h5ad(tmp)
    _write_tsv(pd.DataFrame(mu, index=obs.index, columns=nodes), out_dir / "latent.tsv")
    weights = module.gene_weights().numpy()
    _write_tsv(pd.DataFrame(weights, index=nodes, columns=data.genes),
               out_dir / "gene_weights.tsv")
    _write_tsv(node_associations(mu, label_values, nodes), out_dir / "node_associations.tsv",
               index=False)

    # (5) generation: prior samples and a traversal along one node
    reference, reference_label = _reference_condition(signature, codes, train)
    generator = np.random.default_rng(seed)
    n_prior = evaluation["n_prior_samples"]
    z_prior = generator.standard_normal((n_prior, latent_dim))
    prior = pd.DataFrame(decode(module, z_prior, np.repeat(reference, n_prior, axis=0)),
                         index=[f"prior{i}" for i in range(n_prior)], columns=data.genes)
    _write_tsv(_with_condition(prior, signature, reference_label), out_dir / "prior_samples.tsv")
    _write_tsv(
        _with_condition(_traversal(module, mu[train], evaluation, reference, data.genes),
                        signature, reference_label),
        out_dir / "traversal.tsv",
    )

    # (6) figures, from the files just written
    curves = training_metrics or Path(model_path).parent / METRICS_CSV
    figures.draw_figures(out_dir, labels, seed, f"{method} latent (seed {seed})", curves)
    return metrics


def _latent_anndata(mu: np.ndarray, obs: pd.DataFrame, ckpt: checkpoint.Checkpoint):
    adata = ad.AnnData(obs=obs)
    adata.obsm[f"X_{ckpt.family}"] = mu.astype(np.float32)
    adata.uns["provenance_json"] = json.dumps(ckpt.provenance, sort_keys=True)
    adata.uns[f"{ckpt.family}_hparams_json"] = json.dumps(ckpt.hparams, sort_keys=True)
    return adata


def _with_condition(frame: pd.DataFrame, signature: dict[str, Any], label: str | None):
    if signature["condition_on"] is None:
        return frame
    frame = frame.copy()
    frame.insert(0, condition_name(signature["condition_on"]), label)
    return frame


def _traversal(
    module, mu_train: np.ndarray, evaluation: dict[str, Any],
    reference: np.ndarray, genes: list[str],
) -> pd.DataFrame:
    """Decode along one node from -3 to +3 train sd around its mean, others at the mean."""
    node = evaluation["traversal_node"]
    if node >= mu_train.shape[1]:
        raise MedgenInputError(
            f"config key 'evaluation.traversal_node' is {node}; the model has "
            f"{mu_train.shape[1]} latent nodes (0 to {mu_train.shape[1] - 1})"
        )
    steps = evaluation["traversal_steps"]
    offsets = np.linspace(-TRAVERSAL_SD, TRAVERSAL_SD, steps)
    mean, sd = mu_train.mean(axis=0), mu_train.std(axis=0)
    z = np.repeat(mean[None, :], steps, axis=0)
    z[:, node] = mean[node] + offsets * sd[node]
    decoded = decode(module, z, np.repeat(reference, steps, axis=0))
    frame = pd.DataFrame(decoded, columns=genes)
    frame.insert(0, "node_value", z[:, node])
    frame.insert(0, "sd_offset", offsets)
    frame.insert(0, "node", node)
    return frame
