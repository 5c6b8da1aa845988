"""Replicates: one run's tidy metric tables (``medgen.evaluate.tidy``), one per seed,
aggregated into what a reader needs to say whether a model beats a baseline.

For every method and metric: the mean over replicates, its standard deviation and a 95%
t interval. For every model against every baseline, per metric and split:

- the paired difference (model - baseline) over replicates, with its 95% t interval and a
  paired t test (``scipy.stats.ttest_rel``), Holm-corrected over the task's comparisons x
  metrics x splits (``statsmodels``), and its effect size (Cohen's d_z: mean / sd of the
  differences);
- where the task scores units (subjects, slices, genes, samples): within each replicate a
  Wilcoxon signed-rank test over the units the two methods share (``scipy.stats.wilcoxon``),
  Holm-corrected over every such test of the task, with the matched-pairs rank-biserial
  correlation as its effect size.

Verdict (``VERDICT_RULE``, printed in the report): "better" or "worse" only when the 95%
interval of the replicate differences excludes zero and the corrected unit-level tests
agree (significant at 0.05 in the same direction in more than half of the replicates;
metrics without units rest on the replicates alone, said in ``unit_evidence``); otherwise
"no difference detected". A Friedman test over replicates and a Nemenyi post-hoc
(``scikit_posthocs``) give the critical-difference diagram of a task's headline metric
(Demšar 2006).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from medgen import registry
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.task import MetricSpec

log = logging.getLogger(__name__)
ALPHA = 0.05
LEVEL = 0.95
DIAGRAM_REPLICATES = 5  # fewer blocks than this make a Friedman / Nemenyi ranking noise
MIN_TESTABLE_UNITS = 6  # the fewest units with which a two-sided signed-rank p can be < 0.05
VERDICT_RULE = (
    "'better' / 'worse': the 95% t interval of the paired difference over replicates "
    "excludes zero, and the Holm-corrected Wilcoxon signed-rank test over units (subjects, "
    "slices, genes or samples) is significant at 0.05 in the same direction in more than "
    "half of the replicates (metrics the task does not score per unit rest on the "
    "replicates alone; with fewer than 6 units no test can reach 0.05, so no verdict is "
    "given); otherwise 'no difference detected'. Differences are model - "
    "baseline; 'better' follows the metric's direction (lower MAE, higher AUROC).")
SUMMARY_COLUMNS = ("split", "metric", "method", "n_replicates", "mean", "sd", "ci_low",
                   "ci_high")
COMPARISON_COLUMNS = (
    "split", "metric", "higher_is_better", "model", "baseline", "n_replicates",
    "mean_difference", "ci_low", "ci_high", "p_replicates", "p_replicates_holm",
    "effect_size_dz", "n_units", "unit_replicates_significant", "unit_rank_biserial",
    "unit_evidence", "verdict")


Tables = Mapping[int, "str | os.PathLike | Sequence[str | os.PathLike]"]


def read_replicates(paths: Tables) -> pd.DataFrame:
    """The tidy tables of every replicate in one frame, with a ``seed`` column.

    ``paths``: seed -> its ``metrics_tidy.tsv``, or several (one per family of a task that
    evaluates each family apart: the baselines they share are kept once). Raises
    MedgenInputError (naming the file) for a missing table or one without the tidy
    columns, or when no seed is given.
    """
    if not paths:
        raise MedgenInputError("no replicate tables to aggregate (replicates.seeds is empty)")
    frames = []
    for seed, files in paths.items():
        files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
        if not files:
            raise MedgenInputError(f"replicate {seed}: no metric tables to aggregate")
        table = pd.concat([tidy.read(path) for path in files], ignore_index=True)
        key = ["method", "split", "unit_kind", "unit", "metric"]
        frames.append(table.drop_duplicates(key, keep="first").assign(seed=int(seed)))
    return pd.concat(frames, ignore_index=True)


def is_model(method: str) -> bool:
    """True for a registered model family's method (``tybalt``, ``fanogan``,
    ``context_gan_level2``); baselines, registered baseline families (conv AE, D-GEX,
    the L1 UNet) and ablations (``ggan_l1_only``) are what models are compared with."""
    return any(method == family or method.startswith(f"{family}_level")
               for family in registry.names(baselines=False))


def replicate_values(table: pd.DataFrame, metric: MetricSpec) -> pd.DataFrame:
    """One value per seed x split x method: the whole-split value of ``metric.name``
    (unit 'all'), else the mean over units of ``metric.unit_metric`` (NaN units skipped).
    Columns seed, split, method, value."""
    whole = table[(table["unit_kind"] == tidy.WHOLE_SPLIT) & (table["metric"] == metric.name)]
    if len(whole):
        return whole[["seed", "split", "method", "value"]].reset_index(drop=True)
    units = table[(table["unit_kind"] != tidy.WHOLE_SPLIT)
                  & (table["metric"] == metric.unit_metric)]
    return (units.groupby(["seed", "split", "method"], sort=False)["value"].mean()
            .reset_index())


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean, sd, low, high): the t interval of the mean of ``values`` (NaN dropped); the
    interval is NaN with fewer than two values, and [mean, mean] when they are all equal."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return (np.nan,) * 4
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan, np.nan
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * sd / np.sqrt(len(values))
    return mean, sd, mean - half, mean + half


def summarise(table: pd.DataFrame, metrics: Sequence[MetricSpec]) -> pd.DataFrame:
    """Mean, sd and 95% t interval over replicates per split x metric x method
    (``SUMMARY_COLUMNS``), methods in the order they first appear."""
    rows = []
    for metric in metrics:
        values = replicate_values(table, metric)
        for (split, method), part in values.groupby(["split", "method"], sort=False):
            mean, sd, low, high = t_interval(part["value"].to_numpy())
            rows.append({"split": split, "metric": metric.name, "method": method,
                         "n_replicates": int(part["value"].notna().sum()), "mean": mean,
                         "sd": sd, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def paired_replicate_test(differences: np.ndarray) -> tuple[float, float]:
    """(p, d_z) of the paired t test of model - baseline differences over replicates
    (``scipy.stats.ttest_rel`` on the pairs is the one-sample test of the differences).
    Equal differences: p 0 (or 1 when all are zero), d_z +-inf (or NaN); NaN below 2."""
    from scipy import stats

    d = np.asarray(differences, np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return np.nan, np.nan
    sd = d.std(ddof=1)
    if sd <= 1e-12 * max(1.0, abs(d.mean())):  # equal up to rounding: the t test is undefined
        return (1.0, np.nan) if d[0] == 0 else (0.0, float(np.sign(d[0]) * np.inf))
    return float(stats.ttest_1samp(d, 0.0).pvalue), float(d.mean() / sd)


def unit_test(model: pd.Series, baseline: pd.Series) -> tuple[float, float, float, int]:
    """(p, median difference, rank-biserial r, n units) of the Wilcoxon signed-rank test of
    model - baseline over the units both define (indexed by unit). All-zero differences:
    p 1, r 0; fewer than two units: NaN."""
    from scipy import stats

    pairs = pd.concat([model, baseline], axis=1, join="inner").dropna()
    d = (pairs.iloc[:, 0] - pairs.iloc[:, 1]).to_numpy(np.float64)
    if len(d) < 2:
        return np.nan, np.nan, np.nan, len(d)
    nonzero = d[d != 0]
    if not len(nonzero):
        return 1.0, 0.0, 0.0, len(d)
    p = float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
    # matched-pairs rank-biserial correlation (Kerby 2014): (R+ - R-) / (R+ + R-)
    ranks = stats.rankdata(np.abs(nonzero))
    r = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
    return p, float(np.median(d)), r, len(d)


def holm(p_values: Iterable[float]) -> np.ndarray:
    """Holm-corrected p-values (``statsmodels.stats.multitest.multipletests``); NaN kept."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(list(p_values), np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=ALPHA, method="holm")[1]
    return out


def compare(table: pd.DataFrame, metrics: Sequence[MetricSpec],
            models: Sequence[str] | None = None,
            baselines: Sequence[str] | None = None) -> pd.DataFrame:
    """Every model against every baseline, per split x metric (``COMPARISON_COLUMNS``).

    ``models`` / ``baselines``: default every method ``is_model`` says is one / is not.
    Raises MedgenInputError when the table has no model or no baseline.
    """
    methods = list(dict.fromkeys(table["method"]))
    models = [m for m in methods if is_model(m)] if models is None else list(models)
    baselines = ([m for m in methods if m not in models] if baselines is None
                 else list(baselines))
    if not models or not baselines:
        raise MedgenInputError(
            f"nothing to compare: methods {methods}; models {models}, baselines {baselines}")
    rows, unit_rows = [], []
    for metric in metrics:
        values = replicate_values(table, metric)
        wide = values.pivot_table(index=["split", "seed"], columns="method", values="value",
                                  aggfunc="first", dropna=False)
        units = table[(table["unit_kind"] != tidy.WHOLE_SPLIT)
                      & (table["metric"] == metric.unit_metric)]
        for split in dict.fromkeys(values["split"]):
            per_seed = wide.loc[split]
            for model in models:
                for baseline in baselines:
                    if model not in per_seed or baseline not in per_seed:
                        continue
                    d = (per_seed[model] - per_seed[baseline]).dropna().to_numpy()
                    if not len(d):
                        continue
                    mean, _, low, high = t_interval(d)
                    p, dz = paired_replicate_test(d)
                    row = {"split": split, "metric": metric.name,
                           "higher_is_better": metric.higher_is_better, "model": model,
                           "baseline": baseline, "n_replicates": len(d),
                           "mean_difference": mean, "ci_low": low, "ci_high": high,
                           "p_replicates": p, "effect_size_dz": dz}
                    rows.append(row)
                    here = units[units["split"] == split]
                    for seed, part in here.groupby("seed", sort=True):
                        by_method = part.set_index("unit")
                        a = by_method.loc[by_method["method"] == model, "value"]
                        b = by_method.loc[by_method["method"] == baseline, "value"]
                        if len(a) and len(b):
                            unit_rows.append((len(rows) - 1, seed, *unit_test(a, b)))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    frame["p_replicates_holm"] = holm(frame["p_replicates"])
    tests = pd.DataFrame(unit_rows, columns=["row", "seed", "p", "median", "r", "n"])
    tests["p_holm"] = holm(tests["p"])
    frame = frame.join(_unit_evidence(frame, tests))
    frame["verdict"] = [verdict(r) for r in frame.itertuples()]
    return frame[list(COMPARISON_COLUMNS)]


def _unit_evidence(frame: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Per comparison row: units per replicate, how many replicates' corrected unit tests
    are significant in the direction of the replicate mean, the mean rank-biserial r, and
    whether the unit tests agree ("agrees", "does not agree", "no units", "too few units
    (n) to test at 0.05" with fewer than ``MIN_TESTABLE_UNITS``: no verdict then, or "no
    difference" when the replicate mean difference is exactly zero)."""
    out = pd.DataFrame({"n_units": 0, "unit_replicates_significant": "",
                        "unit_rank_biserial": np.nan, "unit_evidence": "no units"},
                       index=frame.index)
    for index, part in tests.groupby("row"):
        direction = np.sign(frame.loc[index, "mean_difference"])
        if direction == 0:  # the same values: nothing for the units to agree with
            out.loc[index, ["n_units", "unit_replicates_significant", "unit_evidence"]] = (
                int(part["n"].median()), f"0/{len(part)}", "no difference")
            out.loc[index, "unit_rank_biserial"] = float(part["r"].mean())
            continue
        hits = int(((part["p_holm"] < ALPHA) & (np.sign(part["median"]) == direction)
                    & (direction != 0)).sum())
        out.loc[index, "n_units"] = int(part["n"].median())
        out.loc[index, "unit_replicates_significant"] = f"{hits}/{len(part)}"
        out.loc[index, "unit_rank_biserial"] = float(part["r"].mean())
        if hits > len(part) / 2:
            out.loc[index, "unit_evidence"] = "agrees"
        elif part["n"].max() < MIN_TESTABLE_UNITS:
            # a two-sided signed-rank test on 5 or fewer units cannot reach 0.05 (its
            # smallest p is 2 / 2**n): say so rather than that the units disagree
            out.loc[index, "unit_evidence"] = (
                f"too few units ({int(part['n'].max())}) to test at {ALPHA}")
        else:
            out.loc[index, "unit_evidence"] = "does not agree"
    return out


def verdict(row) -> str:
    """'better', 'worse' or 'no difference detected' for a comparison row (``VERDICT_RULE``)."""
    excludes_zero = bool(row.ci_low > 0 or row.ci_high < 0)  # False for NaN bounds
    if (not excludes_zero or row.unit_evidence == "does not agree"
            or str(row.unit_evidence).startswith("too few units")):
        return "no difference detected"
    favours_model = (row.mean_difference > 0) == bool(row.higher_is_better)
    return "better" if favours_model else "worse"


def critical_difference(table: pd.DataFrame, metric: MetricSpec,
                        split: str) -> tuple[pd.Series, pd.DataFrame, float] | None:
    """(average rank per method, Nemenyi p-value matrix, Friedman p) of ``metric`` on
    ``split`` over replicates (rank 1 = best); None with fewer than three methods or
    ``DIAGRAM_REPLICATES`` replicates that every method completed."""
    import scikit_posthocs as sp
    from scipy import stats

    values = replicate_values(table, metric)
    wide = (values[values["split"] == split]
            .pivot_table(index="seed", columns="method", values="value", aggfunc="first")
            .dropna())
    if wide.shape[1] < 3 or wide.shape[0] < DIAGRAM_REPLICATES:
        return None
    signed = wide if metric.higher_is_better else -wide
    ranks = signed.rank(axis=1, ascending=False).mean(axis=0)
    friedman = float(stats.friedmanchisquare(*[signed[c] for c in signed]).pvalue)
    nemenyi = sp.posthoc_nemenyi_friedman(signed.to_numpy())
    nemenyi.index = nemenyi.columns = list(signed.columns)
    return ranks, nemenyi, friedman


def expand_metrics(specs: Sequence[MetricSpec], table: pd.DataFrame) -> list[MetricSpec]:
    """``specs`` with each name ending in ``*`` replaced by every metric of ``table`` it
    prefixes (``knn_balanced_accuracy_*`` -> one per label), then every other metric of
    the table (direction unknown: summarised, compared without a verdict's direction
    mattering to the reader) so that the summary misses none."""
    names = list(dict.fromkeys(table["metric"]))
    out: list[MetricSpec] = []
    for spec in specs:
        if spec.name.endswith("*"):
            out += [MetricSpec(n, spec.higher_is_better) for n in names
                    if n.startswith(spec.name[:-1])]
        elif spec.name in names or spec.unit_metric in names:
            out.append(spec)
    return out


def other_metrics(specs: Sequence[MetricSpec], table: pd.DataFrame) -> list[MetricSpec]:
    """Metrics of ``table`` that ``specs`` do not cover (summarised only; their direction
    is not known, so no verdict)."""
    covered = {s.name for s in specs} | {s.unit_metric for s in specs}
    return [MetricSpec(n, True) for n in dict.fromkeys(table["metric"]) if n not in covered]


SUMMARY_FILE = "summary.tsv"
COMPARISONS_FILE = "comparisons.tsv"
REPLICATES_FILE = "replicates_tidy.tsv"


def incomplete_replicates(table: pd.DataFrame,
                          metrics: Sequence[MetricSpec]) -> list[tuple[str, str, str, list]]:
    """(split, metric, method, missing seeds) for every method that lacks a value (absent or
    NaN) in some replicate where another method has one: such a seed is left out of that
    method's mean and of its paired differences (``n_replicates`` counts what was used)."""
    out = []
    for metric in metrics:
        values = replicate_values(table, metric)
        for split, part in values.groupby("split", sort=False):
            seeds = sorted(part.loc[part["value"].notna(), "seed"].unique())
            for method, rows in part.groupby("method", sort=False):
                have = set(rows.loc[rows["value"].notna(), "seed"])
                missing = [s for s in seeds if s not in have]
                if missing:
                    out.append((split, metric.name, method, missing))
    return out


def warn_incomplete(table: pd.DataFrame, metrics: Sequence[MetricSpec]) -> None:
    """Log one WARNING per method x split x metric left without a value in some seeds."""
    for split, metric, method, missing in incomplete_replicates(table, metrics):
        log.warning("%s on %s: no %s value in seed(s) %s; those seeds are left out of "
                    "its mean and its paired comparisons (n_replicates says how many "
                    "were used)", method, split, metric,
                    ", ".join(str(s) for s in missing))


def aggregate(paths: Tables, task: str,
              out_dir: str | os.PathLike, diagram: str | os.PathLike | None = None
              ) -> pd.DataFrame:
    """Aggregate one task's replicates and write the tables (and the diagram).

    Parameters
    ----------
    paths
        Seed -> the ``metrics_tidy.tsv`` of that replicate's evaluation (or several).
    task
        Registry name; its ``TaskSpec.metrics`` choose what is compared, the first one
        (the headline) is ranked in the critical-difference diagram.
    out_dir
        Writes ``summary.tsv`` (mean, sd, 95% interval per split x metric x method, every
        metric), ``comparisons.tsv`` (``COMPARISON_COLUMNS``; the verdict rule in
        ``VERDICT_RULE``), ``replicates_tidy.tsv`` (every replicate's rows, with ``seed``).
    diagram
        Where to draw the critical-difference diagram of the headline metric on the test
        split (or the task's only split); with fewer than three methods or five complete
        replicates the figure says so instead.

    Returns
    -------
    The comparisons table.

    Raises
    ------
    MedgenInputError
        A missing or malformed replicate table; no model or no baseline to compare.
    """
    from medgen import atomic
    from medgen.report.critical_difference import draw_critical_difference

    out_dir = os.fspath(out_dir)
    table = read_replicates(paths)
    specs = expand_metrics(registry.task(task).metrics, table)
    if not specs:
        raise MedgenInputError(
            f"the replicate tables hold none of task {task!r}'s metrics "
            f"({', '.join(m.name for m in registry.task(task).metrics)}); they hold "
            f"{', '.join(dict.fromkeys(table['metric']))}: tables of another task?")
    summary = summarise(table, specs + other_metrics(specs, table))
    warn_incomplete(table, specs)
    methods = list(dict.fromkeys(table["method"]))
    spec = registry.task(task)
    models = [m for m in methods if is_model(m) or m in spec.compared_as_models]
    if models and len(models) < len(methods):
        comparisons = compare(table, specs, models=models)
    else:  # one kind of method only: summarised, nothing to compare
        log.warning(
            "%s: methods %s are all models or all baselines: no comparison, summary only",
            task, methods)
        comparisons = pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    splits = list(dict.fromkeys(table["split"]))
    split = "test" if "test" in splits else splits[0]
    result = critical_difference(table, specs[0], split) if diagram is not None else None
    # everything computed: now the files (a failure above leaves none half-written)
    os.makedirs(out_dir, exist_ok=True)
    for frame, name in ((summary, SUMMARY_FILE), (comparisons, COMPARISONS_FILE),
                        (table, REPLICATES_FILE)):
        atomic.write_text(os.path.join(out_dir, name), frame.to_csv(
            sep="\t", index=False, float_format="%.6g", na_rep="NaN", lineterminator="\n"))
    if diagram is not None:
        title = (f"{task}: {specs[0].name} on {split}, {table['seed'].nunique()} replicates "
                 f"(rank 1 = best)")
        draw_critical_difference(result, diagram, title)
    return comparisons
