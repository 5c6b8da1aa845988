"""What the Snakemake rules call: ``train_tybalt`` and ``evaluate_tybalt``.

``model.pt`` is self-describing and holds plain types only (loaded with
``torch.load(..., weights_only=True)``): weights, resolved hyperparameters, the gene list,
the conditioning categories and provenance. Loading it for other genes or as another
family fails with a MedgenInputError.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from medgen import atomic, provenance
from medgen.errors import MedgenInputError
from medgen.evaluate.associations import node_associations
from medgen.evaluate.baselines import fit_baselines
from medgen.evaluate.latent import latent_metrics
from medgen.evaluate.reconstruction import reconstruction_metrics
from medgen.models.tybalt import FAMILY
from medgen.models.tybalt.data import (
    condition_categories,
    eval_loader,
    one_hot,
    read_expression,
    train_loader,
)
from medgen.models.tybalt.module import TybaltVAE
from medgen.models.tybalt.plan import TybaltPlan
from medgen.train import fit, seed_all

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
METRICS_CSV = "metrics.csv"
MODEL_FORMAT = 1
LATENT_KEY = "X_tybalt"
METHOD = "tybalt"
TRAVERSAL_SD = 3.0  # traverse from -3 to +3 standard deviations
METRIC_DIGITS = 10  # significant digits in metrics files: stable across BLAS rounding


# -- training ---------------------------------------------------------------------------------
def train_tybalt(
    h5ad_path: str | os.PathLike,
    hparams: dict[str, Any],
    training: dict[str, Any],
    seed: int,
    out_dir: str | os.PathLike,
    callbacks: list[Any] | None = None,
) -> Path:
    """Train Tybalt on the train split (validating on val); write ``out_dir/model.pt``.

    Parameters
    ----------
    h5ad_path
        Preprocessed expression (X in [0, 1], ``obs['split']``).
    hparams
        Resolved preset (``medgen.registry.resolve_hparams('tybalt', ...)``).
    training
        The validated ``training:`` config section; ``max_epochs`` None takes the preset's.
    seed
        Seeds initialisation, shuffling and sampling (per epoch, so resumes are exact).
    out_dir
        Checkpoints (``checkpoints/last.ckpt``, resumed from when present), ``metrics.csv``
        and ``model.pt``.
    callbacks
        Extra Lightning callbacks (e.g. timers in benchmarks).

    Returns
    -------
    Path of ``model.pt``.
    """
    out_dir = Path(out_dir)
    data = read_expression(h5ad_path)
    column = hparams.get("condition_on")
    categories = condition_categories(data, column)
    codes = one_hot(data, column, categories)
    train, val = data.mask("train"), data.mask("val")
    max_epochs = training.get("max_epochs") or hparams["max_epochs"]

    seed_all(seed)  # the initial weights depend on the seed only
    plan = TybaltPlan(n_genes=len(data.genes), n_conditions=len(categories), hparams=hparams)
    fit(
        plan,
        train_loader(data.x, codes, train, hparams["batch_size"], seed),
        eval_loader(data.x, codes, val),
        out_dir,
        training,
        max_epochs,
        seed,
        # Checkpoints of another model, data or process layout are never resumed.
        signature={
            "family": FAMILY,
            "hparams": hparams,
            "genes": list(data.genes),
            "samples": list(map(str, data.adata.obs_names)),
            "devices": [training["devices"], training["num_nodes"]],
        },
        extra_callbacks=callbacks,
    )
    payload = {
        "family": FAMILY,
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu().clone() for k, v in plan.module.state_dict().items()},
        "hparams": dict(hparams),
        "genes": list(data.genes),
        "n_genes": len(data.genes),
        "condition_on": column,
        "condition_categories": categories,
        "epochs": int(max_epochs),
        "seed": int(seed),
        # JSON round trip: provenance must be plain types for weights_only loading
        "provenance": json.loads(json.dumps({
            "input": data.provenance,
            "training": provenance.collect(config={"training": training, "hparams": hparams},
                                           seed=seed, inputs=[h5ad_path]),
        }, default=str)),
    }
    path = out_dir / MODEL_FILE
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


# -- loading ----------------------------------------------------------------------------------
def load_model(
    model_path: str | os.PathLike, genes: list[str] | None = None
) -> tuple[TybaltVAE, dict[str, Any]]:
    """Rebuild the VAE from ``model.pt``; check family and (when given) the gene list."""
    model_path = Path(model_path)
    try:
        payload = torch.load(model_path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MedgenInputError(f"model file {model_path} does not exist") from None
    except Exception as err:  # unpickling refuses non-plain objects, or a corrupt file
        raise MedgenInputError(f"{model_path} is not a medgen model file: {err}") from None
    family = payload.get("family") if isinstance(payload, dict) else None
    if family != FAMILY:
        raise MedgenInputError(
            f"{model_path} holds a model of family {family!r}; expected '{FAMILY}'"
        )
    if genes is not None and list(genes) != list(payload["genes"]):
        trained = payload["genes"]
        missing = sorted(set(trained) - set(genes))[:5]
        extra = sorted(set(genes) - set(trained))[:5]
        raise MedgenInputError(
            f"{model_path} was trained on {len(trained)} genes but the data have "
            f"{len(genes)} genes or another order (first missing: {missing}, first extra: "
            f"{extra}); evaluate with the same preprocessing as training"
        )
    hp = payload["hparams"]
    module = TybaltVAE.from_hparams(payload["n_genes"], len(payload["condition_categories"]), hp)
    module.load_state_dict(payload["state_dict"])
    module.eval()
    return module, payload


# -- evaluation -------------------------------------------------------------------------------
@torch.no_grad()
def _encode_means(module: TybaltVAE, x: np.ndarray, c: np.ndarray) -> np.ndarray:
    mu, _ = module.encode(torch.from_numpy(x), torch.from_numpy(c))
    return mu.numpy().astype(np.float64)


@torch.no_grad()
def _decode(module: TybaltVAE, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    out = module.decode(torch.from_numpy(z.astype(np.float32)), torch.from_numpy(c))
    return out.numpy().astype(np.float64)


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


def _reference_condition(payload: dict[str, Any], codes: np.ndarray, train: np.ndarray):
    """One-hot row of the most frequent training category (for prior/traversal decoding)."""
    if not payload["condition_categories"]:
        return codes[:1], None
    counts = codes[train].sum(axis=0)
    k = int(np.argmax(counts))
    return codes[train][codes[train][:, k] == 1][:1], payload["condition_categories"][k]


def evaluate_tybalt(
    h5ad_path: str | os.PathLike,
    model_path: str | os.PathLike,
    evaluation: dict[str, Any],
    labels: list[str],
    seed: int,
    out_dir: str | os.PathLike,
    training_metrics: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a trained Tybalt model against linear baselines on the test split.

    Parameters
    ----------
    h5ad_path, model_path
        The preprocessed data and ``model.pt`` from :func:`train_tybalt`.
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
    from medgen.report import latent_figures  # matplotlib: only when evaluating

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = read_expression(h5ad_path)
    module, payload = load_model(model_path, genes=data.genes)
    missing = [label for label in labels if label not in data.adata.obs]
    if missing:
        raise MedgenInputError(
            f"labels {missing} are not obs columns of {h5ad_path}; "
            f"available: {', '.join(map(str, data.adata.obs.columns))}"
        )
    train, test = data.mask("train"), data.mask("test")
    if not test.any():
        raise MedgenInputError(f"{h5ad_path}: no samples with obs['split'] == 'test'")
    codes = one_hot(data, payload["condition_on"], payload["condition_categories"])
    latent_dim = payload["hparams"]["latent_dim"]
    nodes = [f"node{j}" for j in range(latent_dim)]
    obs = data.adata.obs.copy()
    label_values = {label: obs[label].to_numpy(dtype=object) for label in labels}

    # (1) VAE latent means for all samples; reconstructions of the test split from them
    seed_all(seed)
    latents = {METHOD: _encode_means(module, data.x, codes)}
    recons = {METHOD: _decode(module, latents[METHOD][test], codes[test])}
    # (2) baselines fitted on train at the same dimension
    for name, baseline in fit_baselines(
        list(evaluation["baselines"]), data.x[train], latent_dim, seed
    ).items():
        latents[name] = baseline.encode(data.x)
        recons[name] = baseline.reconstruct(data.x[test])

    # (3) the same metrics for every method
    table = {}
    for method in latents:
        row = reconstruction_metrics(data.x[test], recons[method])
        row.update(latent_metrics(latents[method], label_values, train, test,
                                  evaluation["knn_k"]))
        row["latent_dim"] = latents[method].shape[1]
        table[method] = {key: _round(value) for key, value in row.items()}
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
        ),
    }
    atomic.write_json(out_dir / "metrics.json", metrics)
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.index.name = "method"
    frame = frame[sorted(frame.columns)]
    with atomic.atomic_path(out_dir / "metrics.tsv") as tmp:
        frame.to_csv(tmp, sep="\t", float_format="%.10g")

    # (4) latent space and decoder exports
    mu = latents[METHOD]
    latent_adata = _latent_anndata(mu, obs, payload)
    with atomic.atomic_path(out_dir / "latent.h5ad") as tmp:
        latent_adata.write_h5ad(tmp)
    _write_tsv(pd.DataFrame(mu, index=obs.index, columns=nodes), out_dir / "latent.tsv")
    weights = module.gene_weights().numpy()
    _write_tsv(pd.DataFrame(weights, index=nodes, columns=data.genes),
               out_dir / "gene_weights.tsv")
    _write_tsv(node_associations(mu, label_values, nodes), out_dir / "node_associations.tsv",
               index=False)

    # (5) generation: prior samples and a traversal along one node
    reference, reference_label = _reference_condition(payload, codes, train)
    generator = np.random.default_rng(seed)
    n_prior = evaluation["n_prior_samples"]
    z_prior = generator.standard_normal((n_prior, latent_dim))
    prior = pd.DataFrame(_decode(module, z_prior, np.repeat(reference, n_prior, axis=0)),
                         index=[f"prior{i}" for i in range(n_prior)], columns=data.genes)
    _write_tsv(_with_condition(prior, payload, reference_label), out_dir / "prior_samples.tsv")
    _write_tsv(
        _with_condition(_traversal(module, mu[train], evaluation, reference, data.genes),
                        payload, reference_label),
        out_dir / "traversal.tsv",
    )

    # (6) figures
    latent_figures.training_curves(
        training_metrics or Path(model_path).parent / METRICS_CSV, out_dir / "training_curves.png"
    )
    latent_figures.latent_umap(mu, obs, labels, seed, out_dir / "latent_umap.png",
                               title="Tybalt latent")
    latent_figures.metrics_bars(
        frame, ["test_mse", "test_bce_above_floor"]
        + [f"knn_balanced_accuracy_{label}" for label in labels], out_dir / "metrics.png"
    )
    return metrics


def _latent_anndata(mu: np.ndarray, obs: pd.DataFrame, payload: dict[str, Any]):
    import anndata as ad

    adata = ad.AnnData(obs=obs)
    adata.obsm[LATENT_KEY] = mu.astype(np.float32)
    adata.uns["provenance_json"] = json.dumps(payload["provenance"], sort_keys=True)
    adata.uns["tybalt_hparams_json"] = json.dumps(payload["hparams"], sort_keys=True)
    return adata


def _with_condition(frame: pd.DataFrame, payload: dict[str, Any], label: str | None):
    if payload["condition_on"] is None:
        return frame
    frame = frame.copy()
    frame.insert(0, payload["condition_on"], label)
    return frame


def _traversal(
    module: TybaltVAE, mu_train: np.ndarray, evaluation: dict[str, Any],
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
    decoded = _decode(module, z, np.repeat(reference, steps, axis=0))
    frame = pd.DataFrame(decoded, columns=genes)
    frame.insert(0, "node_value", z[:, node])
    frame.insert(0, "sd_offset", offsets)
    frame.insert(0, "node", node)
    return frame
