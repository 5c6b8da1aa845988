"""Studies: several dataset configs run as one Snakemake invocation with replicates, and a
summary that sets each paper's claim beside our numbers (``config/studies/papers.yaml``,
``workflow/papers.smk``).

A study file names, per study, a dataset config, its seeds, the paper and its claim, the
task, models, baselines and metrics to summarise; ``budget`` picks a named budget that may
cut seeds, every trained method's epochs and AnoGAN's latent-mapping steps (the summary
says which budget ran and what it cut).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from medgen import atomic, planning, registry
from medgen import config as medgen_config
from medgen.errors import MedgenInputError

STUDY_KEYS = ("config", "seeds", "paper", "claim", "task", "models", "baselines", "metrics")
OPTIONAL_STUDY_KEYS = ("budget", "override")
SUMMARY_COLUMNS = (
    "study", "paper", "claim", "task", "split", "metric", "model", "baseline",
    "model_mean", "model_ci", "baseline_mean", "baseline_ci", "difference", "difference_ci",
    "verdict", "n_replicates", "budget")


BUDGET_KEYS = {"seeds", "max_epochs", "score_steps"}
# what each cut means, for the summary (a reader must know a cut budget is not the papers')
BUDGET_WORDS = {
    "seeds": "seeds {}",
    "max_epochs": "every trained method (models, ablations and trained baselines) capped "
                  "at {} epochs",
    "score_steps": "latent mapping (AnoGAN) capped at {} steps",
}


def _dotted(config: dict[str, Any], key: str) -> Any:
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def _nest(key: str, value: Any) -> dict[str, Any]:
    """``"a.b.c", v`` -> ``{"a": {"b": {"c": v}}}``."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def budget_override(run_config: dict[str, Any], cuts: dict[str, Any]) -> dict[str, Any]:
    """The config override that applies a budget's cuts to one resolved run config.

    ``max_epochs`` sets ``training.max_epochs`` (every family's stages and its ablations,
    ``FamilySpec.with_epochs``) and caps each run task's trained baselines
    (``TaskSpec.baseline_epochs``; a baseline already below the cap keeps its epochs), so
    that models and baselines are cut alike. ``score_steps`` caps the ``score_steps``
    hyperparameter (AnoGAN's latent-mapping steps, Gamma) of every family of the run that
    has one. Returns ``{}`` for no cuts.
    """
    override: dict[str, Any] = {}
    cap = cuts.get("max_epochs")
    if cap:
        override["training"] = {"max_epochs": cap}
        for task in run_config["tasks"]:
            for key in registry.task(task).baseline_epochs:
                if _dotted(run_config, key) > cap:
                    override = medgen_config.deep_update(override, _nest(key, cap))
    steps = cuts.get("score_steps")
    if steps:
        for task in run_config["tasks"]:
            for family in planning.task_families(run_config, task):
                if registry.family_hparams(family, run_config).get("score_steps", 0) > steps:
                    override = medgen_config.deep_update(
                        override, _nest(f"models.{family}.params.score_steps", steps))
    return override


def _checked_cuts(cuts: Any, where: str) -> dict[str, Any]:
    """A budget's cuts (``{}`` for none), refused with the key named when malformed."""
    cuts = cuts or {}
    unknown = set(cuts) - BUDGET_KEYS if isinstance(cuts, dict) else {"(not a mapping)"}
    if unknown:
        raise MedgenInputError(f"{where} has {sorted(unknown)}; expected only "
                               f"{sorted(BUDGET_KEYS)}")
    for key in ("max_epochs", "score_steps"):
        if key in cuts and not (isinstance(cuts[key], int) and not isinstance(cuts[key], bool)
                                and cuts[key] >= 1):
            raise MedgenInputError(f"{where}.{key} is {cuts[key]!r}; expected an integer >= 1")
    if "seeds" in cuts and not (isinstance(cuts["seeds"], list) and cuts["seeds"]):
        raise MedgenInputError(f"{where}.seeds is {cuts['seeds']!r}; expected a non-empty list")
    return dict(cuts)


def combined_cuts(budget: dict[str, Any], study: dict[str, Any]) -> dict[str, Any]:
    """The cuts one study runs under: the invocation's budget and the study's own (a study
    whose full run would not fit, e.g. 3D synthesis on CPU, ships a reduced budget). Caps
    take the smaller of the two; the budget's seeds win over the study's."""
    merged = {**study, **budget}
    for key in ("max_epochs", "score_steps"):
        if key in budget and key in study:
            merged[key] = min(budget[key], study[key])
    return merged


def _flat(settings: dict[str, Any], prefix: str = "") -> str:
    """``{"a": {"b": 1}, "c": 2}`` -> ``"a.b=1, c=2"``: a study's override, for the summary."""
    parts = []
    for key, value in settings.items():
        if isinstance(value, dict):
            parts.append(_flat(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}={value}")
    return ", ".join(parts)


def describe_budget(name: str, cuts: dict[str, Any]) -> str:
    """``"small (seeds [0, 1]; every trained method ... capped at 2 epochs; ...)"``."""
    if not cuts:
        return name
    return f"{name} ({'; '.join(BUDGET_WORDS[k].format(v) for k, v in cuts.items())})"


def load_studies(path: str | os.PathLike | dict[str, Any],
                 budget: str | None = None) -> dict[str, Any]:
    """The study file with each study's resolved run config.

    ``path``: the study file, or its content already read (``workflow/papers.smk`` passes
    Snakemake's config, so that ``--config results_dir=...`` and ``budget=...`` apply).

    Returns ``{"budget": name, "budget_settings": {...}, "results_dir": ...,
    "studies": {name: {**entry, "run_config": resolved config}}}``: every study's run
    config is the default config, its dataset config, then ``results_dir``, the study's
    seeds as ``replicates.seeds`` and the budget's cuts (``seeds``; ``max_epochs`` and
    ``score_steps`` as ``budget_override`` applies them). A study may carry its own
    ``budget`` (the same keys; ``combined_cuts`` joins it with the invocation's, and the
    summary says so) and an ``override`` (config keys set over its dataset config, named in
    the summary), e.g. fewer epochs and one auto-context level for 3D synthesis on CPU.

    Raises
    ------
    MedgenInputError
        A missing file or key, a value of the wrong kind (named), an unknown budget or
        budget key, a study config that does not validate (its message prefixed with the
        study's name), a task its config does not run, or a model or baseline its run does
        not evaluate.
    """
    where = "the study config" if isinstance(path, dict) else str(path)
    if isinstance(path, dict):
        spec = path
    else:
        if not Path(path).is_file():
            raise MedgenInputError(f"study file {path} does not exist")
        spec = medgen_config.load_yaml(path)
    for key in ("results_dir", "budget", "budgets", "studies"):
        if key not in spec:
            raise MedgenInputError(f"{where}: key '{key}' is missing")
    for key in ("budgets", "studies"):
        if not isinstance(spec[key], dict) or not spec[key]:
            raise MedgenInputError(f"{where}: key '{key}' is {spec[key]!r}; expected a "
                                   "mapping of names to settings")
    name = budget or spec["budget"]
    if name not in spec["budgets"]:
        raise MedgenInputError(f"{where}: budget '{name}' is not one of "
                               f"{', '.join(spec['budgets'])} (key 'budgets')")
    cuts = _checked_cuts(spec["budgets"][name], f"{where}: budgets.{name}")
    studies = {}
    for study, entry in spec["studies"].items():
        if not isinstance(entry, dict):
            raise MedgenInputError(f"{where}: study '{study}' is {entry!r}; expected its "
                                   f"settings ({', '.join(STUDY_KEYS)})")
        missing = [key for key in STUDY_KEYS if key not in entry]
        if missing:
            raise MedgenInputError(f"{where}: study '{study}' lacks {', '.join(missing)}")
        strange = sorted(set(entry) - set(STUDY_KEYS) - set(OPTIONAL_STUDY_KEYS))
        if strange:  # a misspelt 'budget' would otherwise run the full study quietly
            raise MedgenInputError(f"{where}: study '{study}' has {strange}; expected "
                                   f"{', '.join(STUDY_KEYS + OPTIONAL_STUDY_KEYS)}")
        for key in ("seeds", "models", "baselines", "metrics"):
            if not isinstance(entry[key], list) or not entry[key]:
                raise MedgenInputError(f"{where}: studies.{study}.{key} is {entry[key]!r}; "
                                       "expected a non-empty list")
        own = _checked_cuts(entry.get("budget"), f"{where}: studies.{study}.budget")
        study_cuts = combined_cuts(cuts, own)
        settings = entry.get("override") or {}
        if not isinstance(settings, dict):
            raise MedgenInputError(f"{where}: studies.{study}.override is {settings!r}; "
                                   "expected a mapping of config keys over its dataset config")
        seeds = list(study_cuts.get("seeds", entry["seeds"]))
        override: dict[str, Any] = medgen_config.deep_update(
            settings, {"results_dir": spec["results_dir"], "replicates": {"seeds": seeds}})
        try:
            run_config = medgen_config.load([entry["config"]], override)
            cut = budget_override(run_config, study_cuts)
            if cut:
                run_config = medgen_config.load(
                    [entry["config"]], medgen_config.deep_update(override, cut))
        except MedgenInputError as err:
            raise MedgenInputError(f"{where}: study '{study}': {err}") from None
        if entry["task"] not in run_config["tasks"]:
            raise MedgenInputError(
                f"{where}: studies.{study}.task is {entry['task']!r}, but {entry['config']} "
                f"runs {run_config['tasks']}")
        evaluated = planning.evaluated_methods(run_config, entry["task"])
        for key in ("models", "baselines"):
            strangers = [m for m in entry[key] if m not in evaluated]
            if strangers:
                raise MedgenInputError(
                    f"{where}: studies.{study}.{key} names {strangers}, which its run does "
                    f"not evaluate; it evaluates {', '.join(evaluated)}")
        studies[study] = {**entry, "seeds": seeds, "run_config": run_config,
                          "budget_settings": study_cuts}
    return {"budget": name, "budget_settings": cuts, "results_dir": spec["results_dir"],
            "studies": studies}


def comparisons_path(run_config: dict[str, Any], task: str) -> Path:
    """Where the workflow writes a run's aggregated comparisons of ``task``."""
    return medgen_config.run_dir(run_config) / "replicates" / task / "comparisons.tsv"


def summary_path(run_config: dict[str, Any], task: str) -> Path:
    return medgen_config.run_dir(run_config) / "replicates" / task / "summary.tsv"


def _interval(low: float, high: float) -> str:
    return "" if pd.isna(low) or pd.isna(high) else f"[{low:.4g}, {high:.4g}]"


def summarise_studies(studies: dict[str, Any], out_tsv: str | os.PathLike,
                      out_md: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per study x split x metric x model x baseline it names: the paper's claim,
    each method's mean with its 95% interval, the paired difference with its interval and
    the verdict (``medgen.evaluate.replicates``), the replicates and the budget.

    ``studies``: as ``load_studies`` returns it, after the workflow ran. Writes TSV (and a
    Markdown table to ``out_md``). Raises MedgenInputError naming a missing aggregate.
    """
    rows = []
    for study, entry in studies["studies"].items():
        config, task = entry["run_config"], entry["task"]
        paths = [comparisons_path(config, task), summary_path(config, task)]
        for p in paths:
            if not p.is_file():
                raise MedgenInputError(f"study '{study}': {p} does not exist (run the study)")
        comparisons = pd.read_csv(paths[0], sep="\t")
        means = pd.read_csv(paths[1], sep="\t").set_index(["split", "metric", "method"])
        wanted = comparisons[comparisons["metric"].isin(entry["metrics"])
                             & comparisons["model"].isin(entry["models"])
                             & comparisons["baseline"].isin(entry["baselines"])]
        if wanted.empty:
            raise MedgenInputError(
                f"study '{study}': {paths[0]} holds no comparison of models "
                f"{entry['models']} with baselines {entry['baselines']} on metrics "
                f"{entry['metrics']}; its metrics: "
                f"{', '.join(dict.fromkeys(comparisons['metric']))}")
        name = studies["budget"] + (", reduced for this study" if entry.get("budget") else "")
        budget = describe_budget(name, entry.get("budget_settings", studies["budget_settings"]))
        if entry.get("override"):
            budget += f"; over {entry['config']}: {_flat(entry['override'])}"
        for row in wanted.itertuples():
            model = means.loc[(row.split, row.metric, row.model)]
            baseline = means.loc[(row.split, row.metric, row.baseline)]
            rows.append({
                "study": study, "paper": entry["paper"], "claim": entry["claim"].strip(),
                "task": task, "split": row.split, "metric": row.metric, "model": row.model,
                "baseline": row.baseline, "model_mean": model["mean"],
                "model_ci": _interval(model["ci_low"], model["ci_high"]),
                "baseline_mean": baseline["mean"],
                "baseline_ci": _interval(baseline["ci_low"], baseline["ci_high"]),
                "difference": row.mean_difference,
                "difference_ci": _interval(row.ci_low, row.ci_high), "verdict": row.verdict,
                "n_replicates": row.n_replicates, "budget": budget})
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    atomic.write_text(out_tsv, table.to_csv(sep="\t", index=False, float_format="%.4g",
                                            lineterminator="\n"))
    if out_md is not None:
        atomic.write_text(out_md, markdown(table))
    return table


def markdown(table: pd.DataFrame) -> str:
    """The summary as Markdown: per study its claim, then one line per comparison."""
    lines = []
    for study, part in table.groupby("study", sort=False):
        first = part.iloc[0]
        lines += [f"## {study}: {first['paper']}", "", f"Claim: {first['claim']}", "",
                  f"Budget: {first['budget']}; {first['n_replicates']} replicates.", "",
                  "| split | metric | model (mean [95% CI]) | baseline (mean [95% CI]) | "
                  "difference [95% CI] | verdict |", "|---|---|---|---|---|---|"]
        for r in part.itertuples():
            lines.append(
                f"| {r.split} | {r.metric} | {r.model} {r.model_mean:.4g} {r.model_ci} | "
                f"{r.baseline} {r.baseline_mean:.4g} {r.baseline_ci} | "
                f"{r.difference:+.4g} {r.difference_ci} | {r.verdict} |")
        lines.append("")
    return "\n".join(lines) + "\n"
