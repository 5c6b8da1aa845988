"""Design sequences with every method of a run and evaluate them with the oracle.

``design_sequences`` (rule ``design_sequences``): the design predictor's objective (its
prediction towards ``target``, plus a JASPAR motif's when ``motif`` is set) optimised by
activation maximisation, joint GAN + predictor design (with a trained dna_gan) and in-silico
evolution, beside the random and best-measured baselines; and, with ``motif_experiment``,
the paper's motif experiment: the same gradient methods and evolution on an explicit PWM
objective alone (e.g. MAX, CACGTG), match rates before and after.

``evaluate_designs`` (rule ``evaluate_sequence_design``): every design scored by the
evaluation oracle (``oracle``) against the training sequences' oracle scores (their
maximum and top 1%: the paper's "designed above the training maximum" check), diversity,
distance to the nearest measured sequence, GC, and how much a method exploits its
predictor (predictor - oracle); figures: score trajectories, oracle score distributions
and sequence logos.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from medgen import atomic, provenance
from medgen.data.sequence import ALPHABET, decode, one_hot
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.planning import DESIGN_OPTIMISERS
from medgen.tasks.sequence_design import design as dz
from medgen.tasks.sequence_design import generation_metrics as gm
from medgen.tasks.sequence_design.prepare import load_prepared

log = logging.getLogger(__name__)

OPTIMISERS = DESIGN_OPTIMISERS  # activation maximisation, joint, evolution
PREDICTOR_OBJECTIVE = "predictor"
MAX_DIVERSITY_PAIRS = 20_000  # pairs sampled for the mean pairwise distance
SPLIT = "design"  # the tidy table's split of design metrics


def measured_sequences(data_path: str | os.PathLike) -> tuple[dict[str, list[str]],
                                                               dict[str, np.ndarray]]:
    """Sequences and measurements of each split of a prepared measurement table.

    Raises MedgenInputError for a file without measurements or without training sequences.
    """
    arrays, _ = load_prepared(data_path)
    if "value" not in arrays:
        raise MedgenInputError(f"{data_path} holds sequences without measurements; design "
                               "needs a measurement table (sequence_design.source: table)")
    split = arrays["split"].astype(str)
    sequences = np.array(decode(arrays["onehot"]), dtype=object)
    value = arrays["value"].astype(np.float64)
    seqs = {s: list(sequences[split == s]) for s in ("train", "val", "test")}
    values = {s: value[split == s] for s in ("train", "val", "test")}
    if "generator_train" in arrays:  # what the GAN saw (the design check)
        mask = arrays["generator_train"].astype(bool)
        seqs["generator_train"], values["generator_train"] = list(sequences[mask]), value[mask]
    if not seqs["train"]:
        raise MedgenInputError(f"{data_path}: no training sequences to design from")
    return seqs, values


def _composition(sequences: list[str]) -> dict[str, float]:
    counts = one_hot(sequences).sum(axis=(0, 1)).astype(np.float64)
    return dict(zip(ALPHABET, counts / counts.sum(), strict=True))


def _motif(motifs: str | os.PathLike, matrix_id: str, train: list[str], seed: int):
    """The JASPAR motif's scorer (PSSM on the training composition, hit threshold at the
    generation evaluation's false-positive rate on shuffled training sequences)."""
    return gm.motif_scorers(gm.read_jaspar(motifs, [matrix_id]), train, seed=seed)[0]


def design_objectives(predictor, settings: dict[str, Any], train: list[str], seed: int = 0,
                      motifs: str | os.PathLike | None = None) -> list[dz.Objective]:
    """The design job's objectives: the predictor's prediction towards ``settings['target']``
    and, when ``settings['motif']`` names a JASPAR matrix of ``motifs``, that motif's best
    PSSM match (target 'max', weight ``settings['motif_weight']``; the PSSM on the training
    composition). The methods minimise the weighted sum of their losses
    (:func:`design.total_loss`).

    ``predictor`` needs ``predict_tensor`` (a ``SequencePredictor``). Raises
    MedgenInputError for a motif ID the JASPAR file lacks.
    """
    objectives = [dz.predictor_objective(predictor, settings["target"])]
    if settings.get("motif"):
        scorer = _motif(motifs, settings["motif"], train, seed)
        objectives.append(dz.pwm_objective(scorer.pssm, f"motif {scorer.matrix_id}",
                                           "max", settings["motif_weight"]))
    return objectives


def _run_methods(objectives: list[dz.Objective], methods: list[str], settings: dict[str, Any],
                 length: int, train: list[str], train_values: np.ndarray, seed: int,
                 generator=None, baselines: bool = True) -> dict[str, dz.Design]:
    n = settings["n_sequences"]
    start = dz.random_sequences(n, length, _composition(train), seed)
    designs: dict[str, dz.Design] = {}
    for method in methods:
        if method == "activation_maximisation":
            designs[method] = dz.activation_maximisation(
                objectives, n, length, settings["steps"], settings["lr"], settings["noise"],
                seed)
        elif method == "joint" and generator is not None:
            designs[method] = dz.joint_design(generator, objectives, n, settings["steps"],
                                              settings["lr"], settings["noise"], seed)
        elif method == "evolution":
            designs[method] = dz.in_silico_evolution(
                objectives, start.sequences, settings["evolution_rounds"],
                settings["evolution_mutants"], seed)
    if baselines:
        designs["random"] = start
        designs["best_measured"] = dz.best_measured(train, train_values, n, settings["target"])
    return designs


def design_sequences(
    data_path: str | os.PathLike,
    predictor_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: dict[str, Any],
    seed: int = 0,
    generator_path: str | os.PathLike | None = None,
    motifs: str | os.PathLike | None = None,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """Design sequences with every configured method (module docstring).

    Parameters
    ----------
    data_path
        The prepared measurement table (``data.npz``): the training split's sequences give
        the baselines and the random composition.
    predictor_path, generator_path
        The trained sequence_predictor (the design objective) and dna_gan (joint design;
        None: no joint design).
    settings
        ``sequence_design.design``: methods (None: all that apply), n_sequences, target,
        steps, lr, noise, evolution_rounds, evolution_mutants, motif, motif_weight,
        motif_experiment.
    motifs
        The JASPAR file holding ``motif`` and ``motif_experiment``.

    Writes ``designs.tsv`` (objective, method, index, sequence, initial sequence, the
    predictor's score of the one-hot design and, for gradient methods, of its soft form),
    ``trajectories.tsv`` (objective, method, step, scored objective, mean and best score of
    the argmax sequences), ``designed/<objective>_<method>.fa`` and ``design.json``
    (settings and provenance). Returns the designs table.

    Raises
    ------
    MedgenInputError
        Data without measurements, a model of another family or length, 'joint' asked for
        without a generator, a motif ID the JASPAR file lacks.
    """
    from medgen.tasks.sequence_design.inference import load

    if num_threads:
        torch.set_num_threads(num_threads)
    seqs, values = measured_sequences(data_path)
    train = seqs["train"]
    length = len(train[0])
    predictor = load(predictor_path, family="sequence_predictor", data={"length": length})
    generator = (load(generator_path, family="dna_gan", data={"length": length})
                 if generator_path else None)
    methods = list(settings.get("methods") or
                   [m for m in OPTIMISERS if m != "joint" or generator is not None])
    if "joint" in methods and generator is None:
        raise MedgenInputError("sequence_design.design.methods lists 'joint', which needs a "
                               "trained dna_gan: add dna_gan to sequence_design.families")
    objectives = design_objectives(predictor, settings, train, seed, motifs)
    sets = {PREDICTOR_OBJECTIVE: _run_methods(objectives, methods, settings, length, train,
                                              values["train"], seed, generator)}
    if settings.get("motif_experiment"):
        scorer = _motif(motifs, settings["motif_experiment"], train, seed)
        name = f"motif {scorer.matrix_id} {scorer.name}"
        sets[name] = _run_methods([dz.pwm_objective(scorer.pssm, name)],
                                  [m for m in methods if m in OPTIMISERS], settings, length,
                                  train, values["train"], seed, generator, baselines=False)
    rows, trajectories = [], []
    for objective, designs in sets.items():
        for method, result in designs.items():
            scores = predictor.predict(one_hot(result.sequences))
            soft = (predictor.predict(result.soft) if result.soft is not None
                    else np.full(len(scores), np.nan))
            initial = result.initial or [""] * len(result.sequences)
            rows.append(pd.DataFrame({
                "objective": objective, "method": method,
                "index": np.arange(len(result.sequences)), "sequence": result.sequences,
                "initial": initial, "predictor": scores, "predictor_soft": soft}))
            if len(result.trajectory):
                long = result.trajectory.melt(id_vars="step", var_name="column",
                                              value_name="score")
                long["statistic"] = np.where(long["column"].str.endswith("_best"), "best",
                                             "mean")
                long["scored"] = long["column"].str.removesuffix("_best")
                trajectories.append(long.drop(columns="column").assign(
                    objective=objective, method=method))
            log.info("%s / %s: %d sequences, predictor mean %.4g (max %.4g)", objective,
                     method, len(scores), scores.mean(), scores.max())
    table = pd.concat(rows, ignore_index=True)
    trajectory = (pd.concat(trajectories, ignore_index=True)[
        ["objective", "method", "step", "scored", "statistic", "score"]]
        if trajectories else pd.DataFrame(columns=["objective", "method", "step", "scored",
                                                   "statistic", "score"]))
    out_dir = Path(out_dir)
    with atomic.atomic_dir(out_dir) as tmp:
        table.to_csv(tmp / "designs.tsv", sep="\t", index=False, float_format="%.6g")
        trajectory.to_csv(tmp / "trajectories.tsv", sep="\t", index=False,
                          float_format="%.6g")
        write_designed_fasta(table, tmp / "designed", ("predictor",))
        atomic.write_json(tmp / "design.json", {
            "settings": settings, "methods": methods,
            "objectives": [o.name for o in objectives],
            "scores": "predictor scores of the argmax (one-hot) designs, in the "
                      f"measurement's units ({predictor.value}); predictor_soft: of the soft "
                      "sequences the gradient methods optimised",
            "provenance": provenance.collect(
                config={"design": settings}, seed=seed,
                inputs=[data_path, predictor_path,
                        *([generator_path] if generator_path else []),
                        *([motifs] if motifs and (settings.get("motif")
                                                  or settings.get("motif_experiment")) else [])])})
    return table


def write_designed_fasta(table: pd.DataFrame, folder: Path, scores: tuple[str, ...]) -> None:
    """Write ``folder/<objective>_<method>.fa`` (spaces in the objective as '_'), one record
    per design of ``table`` (columns objective, method, index, sequence and ``scores``):
    ``><method>_<index> objective=<objective> <score>=<value> ...``, e.g. ``predictor=1.5
    oracle=1.2``."""
    folder.mkdir(parents=True, exist_ok=True)
    for (objective, method), group in table.groupby(["objective", "method"], sort=False):
        name = objective.replace(" ", "_")
        values = group[list(scores)].to_numpy(dtype=np.float64)
        (folder / f"{name}_{method}.fa").write_text("".join(
            f">{method}_{i} objective={name} "
            + " ".join(f"{k}={v:.6g}" for k, v in zip(scores, row, strict=True))
            + f"\n{s}\n"
            for i, s, row in zip(group["index"], group["sequence"], values, strict=True)))


def mean_pairwise_hamming(sequences: list[str], seed: int = 0,
                          max_pairs: int = MAX_DIVERSITY_PAIRS) -> float:
    """Mean Hamming distance (bases) over pairs of distinct sequences (all pairs, or
    ``max_pairs`` drawn with ``seed``): the set's diversity; 0 when every design is the
    same. NaN for fewer than two sequences."""
    if len(sequences) < 2:
        return float("nan")
    codes = one_hot(sequences).argmax(axis=2)
    n = len(codes)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, max_pairs), rng.integers(0, n - 1, max_pairs)
        j = j + (j >= i)  # never a sequence with itself
    return float((codes[i] != codes[j]).sum(axis=1).mean())


RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def predictor_metrics(seqs: dict[str, list[str]], values: dict[str, np.ndarray], predictor
                      ) -> pd.DataFrame:
    """The design predictor's accuracy on the held-out test split beside two baselines
    measured the same way: ``additive_ridge`` (ridge regression on the one-hot sequence, the
    additive model of sort-seq and MPSA analyses; alpha from ``RIDGE_ALPHAS`` by validation
    MSE, the training split's mean when there is no val split) and ``mean`` (the training
    split's mean measurement).

    Returns tidy rows (split 'test'): whole-split ``pearson_r`` and ``mse`` (measurement
    units squared), and per-sample ``squared_error`` (unit kind 'sample', the sequence's
    index in the test split) for paired comparisons. Empty when there is no test split.
    """
    from sklearn.linear_model import Ridge

    if not len(seqs["test"]):
        return pd.DataFrame(columns=list(tidy.COLUMNS))
    flat = {s: one_hot(seqs[s]).reshape(len(seqs[s]), -1).astype(np.float64)
            for s in ("train", "val", "test") if len(seqs[s])}
    alpha = RIDGE_ALPHAS[len(RIDGE_ALPHAS) // 2]
    if "val" in flat:
        val_mse = [float(np.mean((Ridge(alpha=a).fit(flat["train"], values["train"])
                                  .predict(flat["val"]) - values["val"]) ** 2))
                   for a in RIDGE_ALPHAS]
        alpha = RIDGE_ALPHAS[int(np.argmin(val_mse))]
    truth = values["test"]
    predictions = {
        "sequence_predictor": predictor.predict(one_hot(seqs["test"])),
        "additive_ridge": Ridge(alpha=alpha).fit(flat["train"], values["train"])
        .predict(flat["test"]),
        "mean": np.full(len(truth), values["train"].mean())}
    log.info("additive ridge baseline: alpha %g (by validation MSE)", alpha)
    rows = []
    for method, predicted in predictions.items():
        error = (predicted - truth) ** 2
        r = pearson_r(predicted, truth)
        rows.append(pd.DataFrame({"method": method, "split": "test", "unit_kind": "all",
                                  "unit": tidy.WHOLE_SPLIT, "metric": ["pearson_r", "mse"],
                                  "value": [r, float(error.mean())]}))
        rows.append(pd.DataFrame({"method": method, "split": "test", "unit_kind": "sample",
                                  "unit": [str(i) for i in range(len(truth))],
                                  "metric": "squared_error", "value": error}))
        log.info("%s on %d test sequences: Pearson r %.4f, MSE %.4g", method, len(truth), r,
                 error.mean())
    return pd.concat(rows, ignore_index=True)[list(tidy.COLUMNS)]


def _beyond(scores: np.ndarray, reference: np.ndarray, target: str | float, q: float
            ) -> tuple[float, float]:
    """Fractions of ``scores`` beyond the reference's extreme and its top-1% quantile in the
    target's direction (NaN for a target value)."""
    if target == "max":
        return (float((scores > reference.max()).mean()),
                float((scores > np.quantile(reference, 1 - q)).mean()))
    if target == "min":
        return (float((scores < reference.min()).mean()),
                float((scores < np.quantile(reference, q)).mean()))
    return float("nan"), float("nan")


def pearson_r(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Pearson r of predictions against measurements; NaN (not a warning) when fewer than
    two values or either side is constant."""
    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, np.float64)
    if len(truth) < 2 or np.ptp(predicted) == 0 or np.ptp(truth) == 0:
        return float("nan")
    return float(np.corrcoef(predicted, truth)[0, 1])


def _abs_error(scores: np.ndarray, target: str | float) -> float:
    """Mean |score - target| for a target value; NaN for 'max' and 'min'."""
    if isinstance(target, str):
        return float("nan")
    return float(np.mean(np.abs(np.asarray(scores, dtype=np.float64) - float(target))))


def target_metrics(table: pd.DataFrame, target: str | float) -> tuple[pd.DataFrame, list[str]]:
    """The oracle columns of a metrics table that say how well designs met ``target``,
    named so that each has one direction (the replicates' verdicts read it from the task's
    MetricSpec): 'max' -> oracle_mean, oracle_max (higher is better); 'min' ->
    oracle_mean_to_minimise, oracle_min (lower); a value -> oracle_abs_error (lower).
    Returns the table with those columns (the other oracle columns dropped) and their
    names."""
    oracle = ["oracle_mean", "oracle_max", "oracle_min", "oracle_abs_error"]
    if target == "max":
        names = {"oracle_mean": "oracle_mean", "oracle_max": "oracle_max"}
    elif target == "min":
        names = {"oracle_mean": "oracle_mean_to_minimise", "oracle_min": "oracle_min"}
    else:
        names = {"oracle_abs_error": "oracle_abs_error"}
    kept = table.drop(columns=[c for c in oracle if c not in names]).rename(columns=names)
    return kept, list(names.values())


def method_metrics(sequences: list[str], predictor: np.ndarray, oracle: np.ndarray,
                   measured: list[str], train_oracle: np.ndarray, target: str | float,
                   seed: int = 0, q: float = 0.01) -> dict[str, float]:
    """The design evaluation's metrics of one method's designs.

    Parameters
    ----------
    sequences, predictor, oracle
        The designs and their design-predictor and evaluation-oracle scores.
    measured
        Every measured sequence (all splits): the nearest-neighbour reference.
    train_oracle
        The oracle's scores of the training sequences: the 'beyond' reference.

    Returns
    -------
    dict
        n, predictor_mean, oracle_mean, oracle_median, oracle_max, oracle_min,
        oracle_abs_error (mean |oracle - target| for a target value, NaN for 'max' and
        'min'), beyond_train_max and beyond_train_top1 (fractions beyond the training
        maximum / top ``q``, :func:`_beyond`),
        predictor_oracle_gap (mean predictor - oracle: how much the method exploits its
        predictor), diversity_hamming (:func:`mean_pairwise_hamming`),
        nn_measured_hamming (mean Hamming distance to the nearest measured sequence, either
        strand) and gc_mean.
    """
    beyond, top = _beyond(oracle, train_oracle, target, q)
    return {
        "n": len(sequences), "predictor_mean": float(np.mean(predictor)),
        "oracle_mean": float(oracle.mean()), "oracle_median": float(np.median(oracle)),
        "oracle_max": float(oracle.max()), "oracle_min": float(oracle.min()),
        "oracle_abs_error": _abs_error(oracle, target), "beyond_train_max": beyond,
        "beyond_train_top1": top,
        "predictor_oracle_gap": float(np.mean(np.asarray(predictor) - oracle)),
        "diversity_hamming": mean_pairwise_hamming(sequences, seed),
        "nn_measured_hamming": float(gm.nearest_neighbour_hamming(sequences, measured)
                                     .mean()),
        "gc_mean": float(np.mean(gm.gc_content(sequences)))}


def evaluate_designs(
    data_path: str | os.PathLike,
    design_dir: str | os.PathLike,
    oracle_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    predictor_path: str | os.PathLike | None = None,
    target: str | float = "max",
    motifs: str | os.PathLike | None = None,
    motif_experiment: str = "",
    seed: int = 0,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """Score every design with the evaluation oracle (module docstring).

    Writes to ``out_dir``: ``metrics.tsv`` (one row per method of the predictor objective,
    and a 'measured (train)' reference row: n, predictor_mean, oracle_mean, oracle_median,
    oracle_max, oracle_min, oracle_abs_error, beyond_train_max, beyond_train_top1,
    predictor_oracle_gap, diversity_hamming, nn_measured_hamming, gc_mean),
    ``metrics_tidy.tsv`` (the methods' rows, split 'design'; the oracle columns named by
    the target's direction, :func:`target_metrics`), ``oracle_scores.tsv`` (per design),
    ``designed/<objective>_<method>.fa``
    (the designs with their predictor and oracle scores), ``motif_experiment.tsv`` (with a motif
    experiment: per method the motif's match rate before and after design),
    ``metrics.json`` and the figures (``design_trajectories.png``, ``oracle_scores.png``,
    ``logos.png``). With ``predictor_path``, the tidy table also holds the design
    predictor's test accuracy beside the additive and mean baselines
    (:func:`predictor_metrics`), and ``predictor_metrics.tsv`` its whole-split rows.
    Returns the metrics table.

    'beyond' is above for target 'max', below for 'min' (NaN for a target value): the
    fraction of designs whose oracle score passes the best (or the top 1%) oracle score of
    the training sequences.

    Raises MedgenInputError for data without measurements, a missing designs table, an
    oracle of another family or length.
    """
    from medgen.tasks.sequence_design.figures import draw_design_figures
    from medgen.tasks.sequence_design.inference import load

    if num_threads:
        torch.set_num_threads(num_threads)
    seqs, values = measured_sequences(data_path)
    train = seqs["train"]
    measured = train + seqs["val"] + seqs["test"]
    design_dir = Path(design_dir)
    if not (design_dir / "designs.tsv").is_file():
        raise MedgenInputError(f"{design_dir}: no designs.tsv (run design_sequences first)")
    designs = pd.read_csv(design_dir / "designs.tsv", sep="\t", keep_default_na=False,
                          na_values=[""], dtype={"sequence": str, "initial": str})
    oracle = load(oracle_path, family="sequence_predictor", data={"length": len(train[0])})
    designs["oracle"] = oracle.predict(one_hot(designs["sequence"].tolist()))
    train_oracle = oracle.predict(one_hot(train))
    q = 0.01
    rows = [{"method": "measured (train)", "n": len(train), "predictor_mean": np.nan,
             "oracle_mean": train_oracle.mean(), "oracle_median": np.median(train_oracle),
             "oracle_max": train_oracle.max(), "oracle_min": train_oracle.min(),
             "oracle_abs_error": _abs_error(train_oracle, target), "beyond_train_max": 0.0,
             "beyond_train_top1": q, "predictor_oracle_gap": np.nan,
             "diversity_hamming": mean_pairwise_hamming(train, seed),
             "nn_measured_hamming": 0.0,
             "gc_mean": float(np.mean(gm.gc_content(train))),
             "measured_mean": float(values["train"].mean()),
             "measured_max": float(values["train"].max())}]
    main = designs[designs["objective"] == PREDICTOR_OBJECTIVE]
    for method, group in main.groupby("method", sort=False):
        rows.append({"method": method, **method_metrics(
            group["sequence"].tolist(), group["predictor"].to_numpy(dtype=np.float64),
            group["oracle"].to_numpy(), measured, train_oracle, target, seed, q)})
        log.info("%s: oracle mean %.4g (max %.4g; training max %.4g), beyond the training "
                 "max %.3f, predictor - oracle %.4g", method, rows[-1]["oracle_mean"],
                 rows[-1]["oracle_max"], train_oracle.max(), rows[-1]["beyond_train_max"],
                 rows[-1]["predictor_oracle_gap"])
    table = pd.DataFrame(rows)
    if "generator_train" in seqs:  # the paper's check: beyond what the GAN trained on
        gan_oracle = oracle.predict(one_hot(seqs["generator_train"]))
        table["beyond_generator_train_max"] = [
            np.nan if method == "measured (train)" else _beyond(
                designs.loc[(designs["objective"] == PREDICTOR_OBJECTIVE)
                            & (designs["method"] == method), "oracle"].to_numpy(),
                gan_oracle, target, q)[0]
            for method in table["method"]]
        log.info("the generator trained on %d sequences, oracle max %.4g",
                 len(gan_oracle), gan_oracle.max())
    metric_names = [c for c in table.columns if c not in ("method", "n")]
    experiment = None
    if motif_experiment:
        scorer = _motif(motifs, motif_experiment, train, seed)
        hit = scorer.threshold - gm.SCORE_TOLERANCE
        parts = []
        for (objective, method), group in designs.groupby(["objective", "method"],
                                                          sort=False):
            after = gm.best_motif_scores(group["sequence"].tolist(), [scorer])[:, 0]
            starts = group["initial"].dropna().tolist()
            before = (gm.best_motif_scores(starts, [scorer])[:, 0] if starts
                      else np.full(1, np.nan))
            parts.append({"objective": objective, "method": method,
                          "motif": f"{scorer.matrix_id} {scorer.name}",
                          "match_rate_before": float((before >= hit).mean())
                          if starts else np.nan,
                          "match_rate_after": float((after >= hit).mean()),
                          "best_score_after_mean": float(after.mean())})
        parts.append({"objective": "measured (train)", "method": "measured (train)",
                      "motif": f"{scorer.matrix_id} {scorer.name}",
                      "match_rate_before": np.nan,
                      "match_rate_after": float(
                          (gm.best_motif_scores(train, [scorer])[:, 0] >= hit).mean()),
                      "best_score_after_mean": np.nan})
        experiment = pd.DataFrame(parts)
    out_dir = Path(out_dir)
    with atomic.atomic_dir(out_dir) as tmp:
        table.to_csv(tmp / "metrics.tsv", sep="\t", index=False, float_format="%.6g")
        designs.to_csv(tmp / "oracle_scores.tsv", sep="\t", index=False, float_format="%.6g")
        # the design job wrote its FASTA before the oracle ran: these carry both scores
        write_designed_fasta(designs, tmp / "designed", ("predictor", "oracle"))
        methods_only, aligned = target_metrics(table[table["method"] != "measured (train)"],
                                               target)
        measured_metrics = [m for m in dict.fromkeys(aligned + metric_names)
                            if m in methods_only and methods_only[m].notna().any()]
        accuracy = (predictor_metrics(seqs, values, load(
            predictor_path, family="sequence_predictor", data={"length": len(train[0])}))
            if predictor_path else pd.DataFrame(columns=list(tidy.COLUMNS)))
        tidy.write([tidy.melt(methods_only, "all", measured_metrics, split=SPLIT), accuracy],
                   tmp / tidy.FILE)
        if len(accuracy):
            whole = accuracy[accuracy["unit_kind"] == tidy.WHOLE_SPLIT]
            whole.pivot(index="method", columns="metric", values="value").reset_index() \
                .to_csv(tmp / "predictor_metrics.tsv", sep="\t", index=False,
                        float_format="%.6g")
        if experiment is not None:
            experiment.to_csv(tmp / "motif_experiment.tsv", sep="\t", index=False,
                              float_format="%.6g")
        atomic.write_json(tmp / "metrics.json", {
            "target": target, "metrics": table.to_dict("records"),
            "motif_experiment": None if experiment is None else experiment.to_dict("records"),
            "oracle": "a sequence_predictor of another architecture and seed, trained on "
                      "every measured sequence (oracle.py); every score here is the "
                      "oracle's, of the one-hot designs",
            "beyond": "fraction of designs whose oracle score passes the training "
                      "sequences' best (beyond_train_max) or top-1% (beyond_train_top1) "
                      "oracle score, in the target's direction",
            "provenance": provenance.collect(
                config={"target": target, "motif_experiment": motif_experiment}, seed=seed,
                inputs=[data_path, design_dir / "designs.tsv", oracle_path,
                        *([predictor_path] if predictor_path else [])])})
        draw_design_figures(tmp, design_dir / "trajectories.tsv", train_oracle, target)
    log.info("designs scored by the oracle:\n%s", table.set_index("method")[
        ["oracle_mean", "oracle_max", "beyond_train_max", "predictor_oracle_gap",
         "diversity_hamming"]].to_string(float_format="%.4f"))
    return table
