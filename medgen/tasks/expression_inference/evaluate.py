"""Expression inference (landmark genes -> target genes): baselines, metrics and
cross-validation in one harness, the measuring stick for GGAN (Wang et al. 2018) and D-GEX
(Chen et al. 2016).

Every model sees landmarks and targets standardised per gene on its training samples only;
predictions are mapped back to the data's units before any metric. Metrics: MAE overall and
per gene, Pearson r per gene (median), and the fraction of genes on which a model beats
ridge regression (the L1000 standard). The workflow's ``evaluate_expression_inference``
rule calls ``evaluate_expression_inference``.

Target genes that are also landmarks (D-GEX's maps measure 445 of their 9,519 target genes
by other probes of a landmark gene) are predicted like every target but scored apart: a
probe predicted from another probe of its own gene would flatter the target metrics.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KNeighborsRegressor
from tqdm.auto import tqdm

from medgen import registry
from medgen.data.standardise import Standardiser
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.family import resolve
from medgen.seeding import seed_all
from medgen.tasks.expression_inference.loaders import standardised_loader
from medgen.train import fit_in_memory

log = logging.getLogger(__name__)
RIDGE_ALPHAS = np.logspace(-2, 5, 15)  # chosen by leave-one-out on the training samples
KNN_NEIGHBOURS = (1, 3, 5, 10, 20)     # chosen by inner 3-fold CV on the training samples


class Regressor(Protocol):
    def fit(self, x: np.ndarray, y: np.ndarray) -> Any: ...
    def predict(self, x: np.ndarray) -> np.ndarray: ...


class MeanPredictor:
    """Predicts every target's training mean (the trivial baseline)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> MeanPredictor:
        self.mean_ = np.asarray(y).mean(axis=0)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.repeat(self.mean_[None], len(x), axis=0)


def ridge() -> Regressor:
    """Ridge regression of all targets on the landmarks, alpha by efficient leave-one-out."""
    return RidgeCV(alphas=RIDGE_ALPHAS)


def knn(n_samples: int) -> Regressor:
    """k-nearest-neighbour regression (distance-weighted), k by inner 3-fold CV."""
    grid = {"n_neighbors": [k for k in KNN_NEIGHBOURS if k < 0.66 * n_samples] or [1]}
    return GridSearchCV(KNeighborsRegressor(weights="distance"), grid, cv=3,
                        scoring="neg_mean_absolute_error")


BASELINES = {"mean": lambda n: MeanPredictor(), "ridge": lambda n: ridge(), "knn": knn}


class FamilyRegressor:
    """A registered expression-inference family (GGAN, D-GEX) as a regressor of
    standardised targets on standardised landmarks, trained in memory (no checkpoints):
    the many fits of a cross-validation and the ablations."""

    def __init__(self, family: str, hparams: dict[str, Any], seed: int = 0,
                 num_threads: int | None = None) -> None:
        self.family, self.hp = family, dict(hparams)
        self.seed, self.num_threads = seed, num_threads

    def fit(self, x: np.ndarray, y: np.ndarray) -> FamilyRegressor:
        seed_all(self.seed)
        stage = registry.get(self.family).stages[-1]
        dims = {"n_landmarks": x.shape[1], "n_targets": y.shape[1]}
        self.plan = resolve(stage.plan).build(self.hp, dims, {})
        loader = standardised_loader(x, y, self.hp["batch_size"], self.seed)
        fit_in_memory(self.plan, loader, self.hp["max_epochs"], self.seed, self.num_threads)
        return self

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        network = self.plan.prediction_network().eval()
        return network(torch.as_tensor(x, dtype=torch.float32)).numpy()


def ggan_models(preset: str = "default", seed: int = 0, **params: Any) -> dict[str, Any]:
    """GGAN and its L1-only ablation as harness entries (``params`` override the preset)."""
    hp = registry.resolve_hparams("ggan", preset, params)
    l1_only = {**hp, "adversarial_weight": 0.0, "consistency_weight": 0.0}
    return {"ggan": lambda n: FamilyRegressor("ggan", hp, seed),
            "ggan_l1_only": lambda n: FamilyRegressor("ggan", l1_only, seed)}


@dataclass
class InferenceMetrics:
    """Metrics of predictions (samples, genes) against measurements, in the data's units."""

    mae: float
    mae_per_gene: np.ndarray
    pearson_per_gene: np.ndarray

    def genes(self, keep: np.ndarray) -> InferenceMetrics:
        """The metrics of the genes ``keep`` (boolean per gene) alone: every gene has the
        same number of samples, so the overall MAE is the mean of the per-gene ones."""
        mae = self.mae_per_gene[keep]
        return InferenceMetrics(float(mae.mean()) if len(mae) else float("nan"), mae,
                                self.pearson_per_gene[keep])

    @property
    def median_pearson(self) -> float:
        r = self.pearson_per_gene[np.isfinite(self.pearson_per_gene)]
        return float(np.median(r)) if len(r) else float("nan")  # the mean predictor: none


def inference_metrics(y: np.ndarray, y_hat: np.ndarray,
                      folds: np.ndarray | None = None) -> InferenceMetrics:
    """MAE overall and per gene, Pearson r per gene (NaN where either side is constant).

    ``folds`` (one label per row): out-of-fold predictions of k-fold cross-validation.
    Each fold's model carries its own training means, so one r over the pooled rows is
    biased downward (no signal gives a negative r); r is computed within each fold and
    averaged over the folds that define it. MAE does not depend on it.
    """
    y, y_hat = np.asarray(y, np.float64), np.asarray(y_hat, np.float64)
    if y.shape != y_hat.shape:
        raise ValueError(f"shapes differ: measured {y.shape}, predicted {y_hat.shape}")
    error = np.abs(y - y_hat)
    if folds is None:
        r = _pearson_per_gene(y, y_hat)
    else:
        folds = np.asarray(folds)
        per_fold = np.stack([_pearson_per_gene(y[folds == f], y_hat[folds == f])
                             for f in np.unique(folds)])
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a gene constant in every fold
            r = np.nanmean(per_fold, axis=0)
    return InferenceMetrics(float(error.mean()), error.mean(axis=0), r)


def _pearson_per_gene(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    yc, pc = y - y.mean(axis=0), y_hat - y_hat.mean(axis=0)
    denominator = np.sqrt((yc**2).sum(axis=0) * (pc**2).sum(axis=0))
    # constant up to rounding (the mean predictor back in the data's units): no r
    scale = np.maximum(np.abs(y).max(axis=0, initial=0), np.abs(y_hat).max(axis=0, initial=0))
    flat = (np.abs(yc).max(axis=0, initial=0) <= 1e-9 * (scale + 1)) | (
        np.abs(pc).max(axis=0, initial=0) <= 1e-9 * (scale + 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((denominator > 0) & ~flat, (yc * pc).sum(axis=0) / denominator, np.nan)


def cross_validated_predictions(x: np.ndarray, y: np.ndarray, make_model, folds: int,
                                seed: int, splits=None) -> np.ndarray:
    """Out-of-fold predictions of ``make_model(n_train)`` (samples, targets), each fold's
    model fitted on standardised landmarks and targets of its training samples only.
    ``splits``: (train rows, test rows) pairs instead of k folds (a fixed split); rows in
    no test part are NaN."""
    predictions = np.full(y.shape, np.nan)
    splits = splits or KFold(folds, shuffle=True, random_state=seed).split(x)
    for train, test in splits:
        sx, sy = Standardiser.fit(x[train]), Standardiser.fit(y[train])
        model = make_model(len(train)).fit(sx.transform(x[train]), sy.transform(y[train]))
        predictions[test] = sy.inverse(model.predict(sx.transform(x[test])))
    return predictions


def compare(x: np.ndarray, y: np.ndarray, models: dict[str, Any], folds: int = 5,
            seed: int = 0, split: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per model: MAE, median per-gene Pearson r, and the fraction of genes on which
    the model's per-gene MAE is below ridge's (ridge must be among ``models``). k-fold
    out-of-fold predictions, or with ``split`` (train rows, test rows) the test rows of
    models fitted on the train rows."""
    if not np.isfinite(x).all() or not np.isfinite(y).all():
        raise MedgenInputError("landmark or target values hold NaN or infinite entries")
    if split is None:
        splits = list(KFold(folds, shuffle=True, random_state=seed).split(x))
        rows, fold = np.arange(len(x)), fold_labels(splits, len(x))
    else:
        splits, rows, fold = [split], split[1], None
    results = {
        name: inference_metrics(y[rows], cross_validated_predictions(
            x, y, make, folds, seed, splits)[rows], fold)
        for name, make in models.items()}
    return metric_table(results)


def fold_labels(splits: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """(n,) fold index of each row: the position of the split whose test rows hold it."""
    fold = np.empty(n, int)
    for i, (_, test) in enumerate(splits):
        fold[test] = i
    return fold


def evaluation_splits(obs: pd.DataFrame) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(description, [(train rows, evaluated rows)]): k-fold when every sample has a fold,
    else the split's train rows against its test rows."""
    fold = obs["fold"].to_numpy()
    if (fold >= 0).all():
        k = int(fold.max()) + 1
        return (f"{k}-fold cross-validation, out-of-fold predictions",
                [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)])
    split = obs["split"].astype(str).to_numpy()
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    if not len(test):
        raise MedgenInputError("no test samples to evaluate on (obs split)")
    return "trained on the train split, evaluated on the test split", [(train, test)]


def evaluate_expression_inference(
    data_path: str | os.PathLike,
    models: dict[str, str | os.PathLike],
    hparams: dict[str, dict[str, Any]],
    evaluation: dict[str, Any],
    seed: int,
    out_dir: str | os.PathLike,
    ablations: dict[str, tuple[str, dict[str, Any]]] | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Compare trained expression-inference families with baselines on one split.

    Parameters
    ----------
    data_path
        The prepared file (``medgen.tasks.expression_inference.prepare``).
    models
        Family -> its trained ``model.pt``. With a fixed split the model itself predicts
        the test samples; with folds each fold trains the family afresh in memory with
        ``hparams[family]`` (the model.pt, trained on every sample, is for new data).
    hparams
        Family -> resolved hyperparameters.
    evaluation
        ``expression_inference.evaluation`` (baselines, scatter_genes).
    ablations
        Name -> (family, hyperparameters): trained in memory on the same split.
    out_dir
        Writes metrics.json (table, mode, gene-set report, the targets that are also
        landmarks and their own table, provenance), metrics.tsv, per_gene.tsv (model, gene,
        mae, pearson, also_landmark), metrics_tidy.tsv, scatter.tsv (measured and
        predicted values of a few target genes), then per_gene.png and scatter.png drawn
        from per_gene.tsv and scatter.tsv. Target genes that are also landmarks are left
        out of metrics.tsv, the tidy table, the figures and the scatter genes; per_gene.tsv
        keeps them, marked ``also_landmark`` 1.

    Returns
    -------
    The metrics.json content. Metrics are in the data's units (MAE) and per gene (r).

    Raises
    ------
    MedgenInputError
        A model trained on other genes, a file of another layout, no test samples, or
        no target gene that is not also a landmark.
    """
    from medgen import atomic, provenance
    from medgen.models.expression_inference import load as load_inference_model
    from medgen.tasks.expression_inference.figures import draw_figures
    from medgen.tasks.expression_inference.prepare import read_expression_inference_data

    out_dir = Path(out_dir)
    x, y, obs, uns = read_expression_inference_data(data_path)
    mode, splits = evaluation_splits(obs)
    also_landmark = y.columns.isin(x.columns)  # scored apart (module docstring)
    if also_landmark.all():
        raise MedgenInputError(f"{data_path}: every target gene is also a landmark; no "
                               "target is left to evaluate")
    if also_landmark.any():
        log.warning("%d of %d target genes are also landmarks (first: %s): scored apart, "
                    "not in the target metrics", int(also_landmark.sum()), y.shape[1],
                    ", ".join(y.columns[also_landmark][:5]))
    scored = ~also_landmark
    evaluated = np.sort(np.concatenate([test for _, test in splits]))
    xa, ya = x.to_numpy(), y.to_numpy()
    factories = {name: BASELINES[name] for name in ["ridge", *evaluation["baselines"]]}
    for family in models:
        if len(splits) > 1:
            factories[family] = _family_factory(family, hparams[family], seed, num_threads)
    for name, (family, hp) in (ablations or {}).items():
        factories[name] = _family_factory(family, hp, seed, num_threads)
    predictions = {}
    for name, make in tqdm(factories.items(), desc=f"fitting models ({len(splits)} splits)",
                           unit="model", disable=None):  # None: no bar in a log file
        predictions[name] = cross_validated_predictions(xa, ya, make, 0, seed, splits)[evaluated]
        log.info("%s: fitted on %d split(s)", name, len(splits))
    if len(splits) == 1:
        for family, path in models.items():
            model = load_inference_model(path, data={"landmarks": list(x.columns),
                                                     "targets": list(y.columns)})
            predictions[family] = model.predict(xa[evaluated])
    order = [*models, *(ablations or {}), *[b for b in factories if b in BASELINES]]
    predictions = {name: predictions[name] for name in order}
    measured = y.iloc[evaluated]
    # with k folds, r per gene within each fold (fold of each evaluated row, in order)
    fold = fold_labels(splits, len(obs))[evaluated] if len(splits) > 1 else None
    every_target = {name: inference_metrics(measured.to_numpy(), p, fold)
                    for name, p in predictions.items()}
    results = {name: m.genes(scored) for name, m in every_target.items()}
    table = metric_table(results)
    per_gene = pd.concat([pd.DataFrame({"model": name, "gene": y.columns, "mae": m.mae_per_gene,
                                        "pearson": m.pearson_per_gene,
                                        "also_landmark": also_landmark.astype(int)})
                          for name, m in every_target.items()], ignore_index=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out_dir / "metrics.tsv", table.to_csv(sep="\t", float_format="%.6g"))
    atomic.write_text(out_dir / "per_gene.tsv",
                      per_gene.to_csv(sep="\t", index=False, float_format="%.6g"))
    # 'test' for a train/test split, 'cv' for out-of-fold predictions of every sample
    split = "test" if len(splits) == 1 else "cv"
    tidy.write([
        tidy.melt(table.reset_index().rename(columns={"model": "method"}), "all",
                  table.columns, split=split),
        tidy.melt(per_gene[per_gene["also_landmark"] == 0].rename(columns={"model": "method"}),
                  "gene", ["mae", "pearson"], unit="gene", split=split),
    ], out_dir / tidy.FILE)
    genes = scatter_genes(results["ridge"], y.columns[scored], evaluation["scatter_genes"])
    write_scatter_predictions(out_dir / "scatter.tsv", measured, predictions, genes)
    summary = {
        "mode": mode, "n_samples": int(len(obs)), "n_evaluated": int(len(evaluated)),
        "n_landmarks": int(x.shape[1]), "n_targets": int(y.shape[1]),
        "n_scored_targets": int(scored.sum()), "units": uns["units"],
        "gene_sets": uns["gene_sets"],
        "metrics": table.reset_index().to_dict("records"),
        "targets_also_landmarks": {
            "note": "target genes that are also landmarks (measured by other probes): "
                    "predicted like every target, left out of 'metrics'",
            "genes": list(map(str, y.columns[also_landmark])),
            "metrics": metric_table({name: m.genes(also_landmark)
                                     for name, m in every_target.items()}
                                    ).reset_index().to_dict("records")
            if also_landmark.any() else [],
        },
        "provenance": provenance.collect(
            config={"evaluation": evaluation, "hparams": hparams,
                    "ablations": {k: list(v) for k, v in (ablations or {}).items()}},
            seed=seed, inputs=[data_path, *models.values()]),
    }
    atomic.write_json(out_dir / "metrics.json", summary)
    draw_figures(out_dir)  # from the files just written
    log.info("expression inference (%s; %d target genes scored, %d also landmarks apart):"
             "\n%s", mode, int(scored.sum()), int(also_landmark.sum()),
             table.to_string(float_format=lambda v: f"{v:.3f}"))
    return summary


def metric_table(results: dict[str, InferenceMetrics]) -> pd.DataFrame:
    """One row per model: MAE, median per-gene r, and the fraction of genes whose MAE is
    below ridge's (``results`` must hold 'ridge')."""
    reference = results["ridge"].mae_per_gene
    rows = [{"model": name, "mae": m.mae, "median_pearson": m.median_pearson,
             "genes_better_than_ridge": float((m.mae_per_gene < reference).mean())}
            for name, m in results.items()]
    return pd.DataFrame(rows).set_index("model")


def write_scatter_predictions(path: Path, measured: pd.DataFrame,
                              predictions: dict[str, np.ndarray], genes: list[str]) -> None:
    """``scatter.tsv``: for each of ``genes`` and each evaluated sample, the measured value
    and every model's prediction (columns sample, gene, measured, model, predicted; models
    in the order of ``predictions``). ``measured``: evaluated samples x targets (index:
    sample ids); each prediction array the same shape."""
    from medgen import atomic

    columns = {g: i for i, g in enumerate(measured.columns)}
    parts = [pd.DataFrame({"sample": measured.index.astype(str), "gene": gene,
                           "measured": measured[gene].to_numpy(), "model": model,
                           "predicted": values[:, columns[gene]]})
             for gene in genes for model, values in predictions.items()]
    atomic.write_text(path, pd.concat(parts, ignore_index=True).to_csv(
        sep="\t", index=False, float_format="%.10g"))


def scatter_genes(reference: InferenceMetrics, genes: pd.Index, n: int) -> list[str]:
    """``n`` target genes spread over the reference model's per-gene r (from its best to
    its worst), so the scatter shows easy and hard genes alike."""
    order = np.argsort(-np.nan_to_num(reference.pearson_per_gene, nan=-2.0), kind="stable")
    picks = np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))
    return [str(genes[order[i]]) for i in picks]


def _family_factory(family: str, hp: dict[str, Any], seed: int, num_threads: int | None):
    return lambda n: FamilyRegressor(family, hp, seed, num_threads)
