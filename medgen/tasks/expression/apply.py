"""Apply a trained expression model to new tables: the model's own normalisation, latent
means, reconstruction error and node-label associations; or, with
``expression.sampling.n_samples``, write synthetic profiles from it. Nothing is trained."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from medgen import atomic, checkpoint
from medgen.data.expression import preprocess_for_model
from medgen.errors import MedgenInputError
from medgen.synthetic_output import sampling_requested
from medgen.tasks.expression.associations import node_associations
from medgen.tasks.expression.evaluate import decode, encode_means, load_model
from medgen.tasks.expression.loaders import one_hot, read_expression
from medgen.tasks.expression.reconstruction import bce, reconstruction_metrics

SYNTHETIC_H5AD = "synthetic.h5ad"  # apply mode's output when sampling


def check_new_data(config: dict[str, Any], model_path: str | os.PathLike) -> None:
    """Refuse new expression data that are not local tables (``expression.source: files``);
    in sampling mode (``expression.sampling.n_samples``) refuse only a missing
    ``training_data`` file.

    Raises
    ------
    MedgenInputError
        Naming ``expression.source`` and what to set instead.
    """
    sampling = config["expression"].get("sampling") or {}
    if sampling_requested(config, "expression"):
        # sampling needs no new data; the training h5ad only where the request needs it.
        # The request itself (categories, counts, training shares) is checked now, before
        # any job, as the job would check it
        from medgen.tasks.expression.sampling import sample_request

        path = sampling.get("training_data")
        if path and not Path(path).is_file():
            raise MedgenInputError(f"config key 'expression.sampling.training_data' is "
                                   f"{path!r}: no such file (the training run's "
                                   "data/expression.h5ad)")
        if sampling.get("latent", "prior") != "prior" and not path:
            raise MedgenInputError(
                f"config key 'expression.sampling.latent' is {sampling['latent']!r}, which is "
                "fitted on the training profiles: set expression.sampling.training_data")
        ckpt = checkpoint.load(model_path)
        if ckpt.family != "tybalt":
            raise MedgenInputError(
                f"config key 'expression.sampling.n_samples' is set, but {model_path} is a "
                f"{ckpt.family} model, which does not generate profiles; sampling takes "
                "tybalt models")
        try:
            sample_request(ckpt, sampling["n_samples"], path)
        except MedgenInputError as err:
            raise MedgenInputError(f"config key 'expression.sampling': {err}") from None
        return
    if config["expression"]["source"] != "files":
        raise MedgenInputError(
            f"config key 'expression.source' is {config['expression']['source']!r}; to apply "
            "a model, list the new tables under expression.files with source: files"
        )


def apply_expression(model_path: str | os.PathLike, config: dict[str, Any],
                     out_dir: str | os.PathLike, device: str = "cpu") -> Path:
    """Run a trained expression model on the tables of ``config["expression"]["files"]``,
    or, with ``expression.sampling.n_samples``, write that many synthetic profiles to
    ``out_dir/synthetic.h5ad`` (``medgen.tasks.expression.sampling.sample_expression``,
    seeded by ``config["seed"]``) and return its path.

    The tables are normalised as in training (the model's library size) and reduced to the
    model's genes with its stored scaling ranges. Writes under ``out_dir``:
    ``data/expression.h5ad``, ``latent.tsv`` (latent means, samples x nodes),
    ``reconstruction_by_sample.tsv`` (MSE, BCE above its floor), ``node_associations.tsv``
    (each label with two or more classes) and ``metrics.json``; returns the latter.

    Raises
    ------
    MedgenInputError
        Unreadable model; tables that lack the model's genes; in sampling mode a model that
        does not decode, or a category it never saw.
    """
    out_dir = Path(out_dir)
    sampling = config["expression"].get("sampling") or {}
    if sampling_requested(config, "expression"):
        from medgen.tasks.expression.sampling import sample_expression

        out = out_dir / SYNTHETIC_H5AD
        sample_expression(model_path, sampling["n_samples"], out, seed=config.get("seed", 0),
                          data_path=sampling.get("training_data"), device=device,
                          latent=sampling.get("latent", "prior"))
        return out
    ckpt = checkpoint.load(model_path)
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
