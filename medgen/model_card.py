"""Model cards (Mitchell et al. 2019, "Model Cards for Model Reporting"): beside every
``model.pt``, ``model_card.md`` and ``model_card.json`` say what the model is, what it was
trained on, how it scored on held-out data beside the baselines measured the same way, what
it is for and where it falls short, and how to apply it.

A card is built from the checkpoint's plain fields (read with ``weights_only=True``; no
network is built) and the run's tidy metric table (``medgen.evaluate.tidy``), plus the
aggregated replicate tables when the run has replicates. ``medgen info model.pt`` prints the
card beside a model, or, for a model without one, what the checkpoint alone says.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from medgen import atomic, checkpoint, registry
from medgen.errors import MedgenInputError
from medgen.evaluate import replicates, tidy
from medgen.provenance import sha256_file
from medgen.task import APPLY_HOWTO, TaskSpec

log = logging.getLogger(__name__)

CARD_MD = "model_card.md"
CARD_JSON = "model_card.json"
HELD_OUT = ("test", "cv")  # splits a card reports, in this order of preference
MAX_LISTED = 10  # genes or files listed by name; the rest are counted


def method_name(family: str, model_path: str | os.PathLike) -> str:
    """The method name of ``model_path`` in the task's metric tables: the family, or
    ``<family>_level<k>`` for a synthesis level's model (``models/<family>/level<k>/``)."""
    parent = Path(model_path).parent.name
    return f"{family}_{parent}" if parent.startswith("level") else family


def input_files(node: Any, found: dict[str, str] | None = None) -> dict[str, str]:
    """Every ``{path: sha256}`` under an ``inputs`` key of the provenance (``node``: a
    checkpoint's provenance dict), in order: the files ``medgen info`` lists as inputs."""
    found = {} if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "inputs" and isinstance(value, dict):
                found.update({str(k): str(v) for k, v in value.items()})
            else:
                input_files(value, found)
    return found


def _signature(data: dict[str, Any]) -> dict[str, Any]:
    """The data signature with long gene lists cut to their first names and a count."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list) and len(value) > MAX_LISTED:
            out[key] = {"n": len(value), "first": value[:MAX_LISTED]}
        else:
            out[key] = value
    return out


def _held_out(table: pd.DataFrame) -> list[str]:
    splits = list(dict.fromkeys(table["split"]))
    return [s for s in HELD_OUT if s in splits]


def _table_of(method: str, tidy_paths: Sequence[str | os.PathLike]) -> tuple[Path, pd.DataFrame]:
    """The first tidy table that evaluates ``method`` (the expression task writes one per
    family), with the rows of every later table that also evaluates it (its generated
    samples' table) appended; a row already read is not read twice."""
    seen, found = [], []
    for tidy_path in tidy_paths:
        path = Path(tidy_path)
        table = tidy.read(path)
        if method in set(table["method"]):
            found.append((path, table))
        seen += [m for m in dict.fromkeys(table["method"]) if m not in seen]
    if not found:
        raise MedgenInputError(
            f"{', '.join(map(str, tidy_paths))}: no rows of method {method!r}; the table(s) "
            f"evaluate {', '.join(seen)}")
    table = pd.concat([t for _, t in found], ignore_index=True).drop_duplicates(
        ["method", "split", "unit_kind", "unit", "metric"], keep="first")
    return found[0][0], table.reset_index(drop=True)


def _operating_points(tidy_path: Path, method: str) -> dict[str, Any] | None:
    """The thresholds the evaluation beside ``tidy_path`` calibrated on val
    (``operating_points.json``, anomaly detection): this model's and the baselines', so
    that an apply run can score both at them. None when the task calibrates none."""
    path = tidy_path.parent / tidy.OPERATING_POINTS
    if not path.is_file():
        return None
    points = json.loads(path.read_text())
    return {"model": points.get(method),
            "baselines": {m: p for m, p in points.items() if not replicates.is_model(m)}}


def stored(model_path: str | os.PathLike) -> dict[str, Any] | None:
    """The card JSON beside ``model_path`` when it was written for this very file (its
    sha256 matches), else None: a card of an earlier model in the folder is not this one's."""
    path = Path(model_path)
    card_path = path.parent / CARD_JSON
    if not (card_path.is_file() and path.is_file()):
        return None
    try:
        card = json.loads(card_path.read_text())
        written_for = card["model"]["sha256"]
    except (ValueError, KeyError, TypeError):
        return None
    return card if written_for == sha256_file(path) else None


def evaluation(method: str, task: str, tidy_paths: Sequence[str | os.PathLike],
               summary_path: str | os.PathLike | None = None,
               comparisons_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The model's held-out metrics beside every other method of the same run.

    Parameters
    ----------
    method
        The model's name in the tables (``method_name``).
    task
        Its task; ``TaskSpec.metrics`` picks the metrics and their direction.
    tidy_paths
        The run's (or replicate's) ``metrics_tidy.tsv`` files (the first that evaluates
        ``method`` is read); whole-split rows of the held-out split (test, or
        cross-validation) are reported.
    summary_path, comparisons_path
        With replicates: ``replicates/<task>/summary.tsv`` and ``comparisons.tsv`` (mean,
        95% interval, paired differences and verdicts over the seeds).

    Returns
    -------
    ``{"split", "metrics": [{"metric", "higher_is_better", "model", "methods": {name:
    value}, "strongest_baseline", "baseline_value", "beaten_by": [...]}], "replicates":
    [...]}``.

    Raises
    ------
    MedgenInputError
        A table that does not exist, no table that evaluates the model, or no held-out
        split.
    """
    path, table = _table_of(method, tidy_paths)
    splits = _held_out(table[table["method"] == method])
    if not splits:
        raise MedgenInputError(f"{path} has no held-out split ({' or '.join(HELD_OUT)}) "
                               f"of method {method!r}")
    split = splits[0]
    part = table[table["split"] == split].assign(seed=0)
    metrics = []
    for spec in replicates.expand_metrics(registry.task(task).metrics, part):
        # the whole-split value, else the mean over units (synthesis: over subjects), as
        # the aggregation over replicates reads it
        rows = replicates.replicate_values(part, spec).dropna(subset=["value"])
        values = dict(zip(rows["method"], rows["value"].astype(float)))
        if method not in values:
            continue
        baselines = {m: v for m, v in values.items()
                     if m != method and not replicates.is_model(m)}
        sign = 1 if spec.higher_is_better else -1
        best = max(baselines, key=lambda m: sign * baselines[m]) if baselines else None
        metrics.append({
            "metric": spec.name, "higher_is_better": spec.higher_is_better,
            "model": values[method], "methods": values, "strongest_baseline": best,
            "baseline_value": baselines.get(best),
            "beaten_by": sorted((m for m, v in baselines.items()
                                 if sign * v > sign * values[method]),
                                key=lambda m: -sign * baselines[m])})
    result: dict[str, Any] = {"split": split, "metrics": metrics, "replicates": [],
                              "operating_points": _operating_points(path, method)}
    if summary_path and comparisons_path:
        comparisons = pd.read_csv(comparisons_path, sep="\t")
        summary = pd.read_csv(summary_path, sep="\t").set_index(["split", "metric", "method"])
        mine = comparisons[(comparisons["model"] == method) & (comparisons["split"] == split)]
        for row in mine.itertuples():
            model = summary.loc[(row.split, row.metric, method)]
            result["replicates"].append({
                "metric": row.metric, "baseline": row.baseline,
                "model_mean": float(model["mean"]), "model_ci": [float(model["ci_low"]),
                                                                 float(model["ci_high"])],
                "difference": float(row.mean_difference),
                "difference_ci": [float(row.ci_low), float(row.ci_high)],
                "verdict": row.verdict, "n_replicates": int(row.n_replicates)})
    return result


def _limits(family: str, task: str, evaluated: dict[str, Any] | None) -> list[str]:
    """The family's stated limits, then what this model's own evaluation shows: every
    baseline that scored better on the headline metric (or was judged better over the
    replicates)."""
    limits = list(registry.get(family).limitations)
    if not evaluated:
        return limits
    worse = [r for r in evaluated["replicates"] if r["verdict"] == "worse"]
    for r in worse:
        low, high = r["difference_ci"]
        limits.append(f"Over {r['n_replicates']} replicates this model is worse than "
                      f"{r['baseline']} on {evaluated['split']} {r['metric']} (difference "
                      f"{r['difference']:+.4g}, 95% CI {low:.4g} to {high:.4g}).")
    if not worse and evaluated["metrics"]:
        head = evaluated["metrics"][0]
        for name in head["beaten_by"]:
            limits.append(f"On this run's {evaluated['split']} split the baseline {name} "
                          f"scored a better {head['metric']} than this model "
                          f"({head['methods'][name]:.4g} against {head['model']:.4g}).")
    return limits


def build(model_path: str | os.PathLike,
          tidy_paths: Sequence[str | os.PathLike] | None = None,
          summary_path: str | os.PathLike | None = None,
          comparisons_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The card of ``model_path`` as plain data (what ``model_card.json`` holds).

    ``tidy_paths``, ``summary_path``, ``comparisons_path``: as for ``evaluation``; without
    ``tidy_paths`` the card has no evaluation (``medgen info`` on a model whose run has not
    been evaluated). Raises MedgenInputError for an unreadable model or table.
    """
    model_path = Path(model_path)
    ckpt = checkpoint.load(model_path)
    spec = registry.get(ckpt.family)
    task = registry.task(spec.task)
    method = method_name(ckpt.family, model_path)
    evaluated = (evaluation(method, spec.task, tidy_paths, summary_path, comparisons_path)
                 if tidy_paths else None)
    training = ckpt.provenance.get("training", {})
    return {
        "model": {"file": str(model_path), "sha256": sha256_file(model_path),
                  "family": ckpt.family, "method": method, "paper": spec.description,
                  "task": spec.task, "task_description": task.description,
                  "checkpoint_format": ckpt.format},
        "training": {"seed": ckpt.seed, "samples": ckpt.provenance.get("samples", {}),
                     "inputs": input_files(ckpt.provenance),
                     "git_revision": training.get("git_revision", "unknown"),
                     "versions": training.get("versions", {}),
                     "settings": training.get("config", {}).get("training", {})},
        "data_signature": _signature(ckpt.data),
        "hyperparameters": ckpt.hparams,
        "evaluation": evaluated,
        "intended_use": task.intended_use,
        "limitations": _limits(ckpt.family, spec.task, evaluated),
        "how_to_apply": _how_to_apply(task, model_path),
    }


def _how_to_apply(task: TaskSpec, model_path: Path) -> str:
    text = task.how_to_apply or (APPLY_HOWTO if task.apply else "")
    if not text:
        return "This task has no apply step: retrain on the new data."
    return text.format(model=model_path, section=task.section)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(card: dict[str, Any]) -> str:
    """``model_card.md``: the card's fields as a page a person reads."""
    m, t = card["model"], card["training"]
    items = ", ".join(f"{k} {v}" for k, v in t["samples"].items()) or "not recorded"
    lines = [f"# Model card: {m['method']} ({m['family']})", "",
             f"- **Model**: {m['paper']}", f"- **Task**: {m['task']}: {m['task_description']}",
             f"- **File**: `{m['file']}` (sha256 `{m['sha256']}`, checkpoint format "
             f"{m['checkpoint_format']})", "", "## Training data", "",
             f"- Seed {t['seed']}; medgen revision {t['git_revision']}; "
             + ", ".join(f"{k} {v}" for k, v in t["versions"].items() if k in
                         ("medgen", "torch", "lightning", "monai")),
             f"- Training items: {items}"]
    files = list(t["inputs"].items())
    lines.append(f"- Input files ({len(files)}, sha256):")
    lines += [f"  - `{path}` `{digest[:16]}...`" for path, digest in files[:MAX_LISTED]]
    if len(files) > MAX_LISTED:
        lines.append(f"  - ... and {len(files) - MAX_LISTED} more (model_card.json)")
    lines += ["", "## Data signature (what new data must match)", ""]
    for key, value in card["data_signature"].items():
        if isinstance(value, dict) and "n" in value:
            value = f"{value['n']} (first: {', '.join(map(str, value['first']))}, ...)"
        lines.append(f"- {key}: {value}")
    lines += ["", "## Hyperparameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in card["hyperparameters"].items()]
    lines += ["", "## Evaluation on held-out data", ""]
    evaluated = card["evaluation"]
    if not evaluated:
        lines.append("Not in this card: it was built from the checkpoint alone "
                     f"({card.get('built_because', 'no evaluation given')}). The workflow "
                     "writes the card with the held-out metrics beside model.pt once the "
                     "model is evaluated.")
    else:
        lines += [f"Split: {evaluated['split']}; every method of the run measured the same "
                  "way.", "", "| metric | this model | strongest baseline | all methods |",
                  "|---|---|---|---|"]
        for r in evaluated["metrics"]:
            arrow = "higher" if r["higher_is_better"] else "lower"
            strongest = (f"{r['strongest_baseline']} {_fmt(r['baseline_value'])}"
                         if r["strongest_baseline"] else "-")
            others = ", ".join(f"{k} {_fmt(v)}" for k, v in r["methods"].items())
            lines.append(f"| {r['metric']} ({arrow} is better) | {_fmt(r['model'])} | "
                         f"{strongest} | {others} |")
        point = (evaluated.get("operating_points") or {}).get("model")
        if point:
            pixel = point["pixel_threshold"]
            lines += ["", f"Operating point ({point['source']}; apply runs use it): image "
                      f"threshold {point['image_threshold']:.6g} ({point['false_positive_rate']:g}"
                      f" false-positive rate on {point['n_val_normals']} val normals)"
                      + (f", pixel threshold {pixel:.6g} (best val Dice)" if pixel is not None
                         else "") + f"; valid with median filter {point['median_filter']}"
                      + (f" (chosen on val among {point['median_filter_setting']})"
                         if isinstance(point.get("median_filter_setting"), list) else "")
                      + " "
                      "and this run's scoring settings."]
        if evaluated["replicates"]:
            lines += ["", "Over the replicates (mean [95% CI]; the verdict rule: README, "
                      "\"Replicates\"):", "", "| metric | this model | against | "
                      "difference [95% CI] | verdict |", "|---|---|---|---|---|"]
            for r in evaluated["replicates"]:
                lines.append(
                    f"| {r['metric']} | {r['model_mean']:.4g} [{r['model_ci'][0]:.4g}, "
                    f"{r['model_ci'][1]:.4g}] | {r['baseline']} | {r['difference']:+.4g} "
                    f"[{r['difference_ci'][0]:.4g}, {r['difference_ci'][1]:.4g}] | "
                    f"{r['verdict']} |")
    lines += ["", "## Intended use", "", card["intended_use"] or "-", "", "## Limitations",
              ""]
    lines += [f"- {text}" for text in card["limitations"]] or ["- none stated"]
    lines += ["", "## How to apply it", "", card["how_to_apply"], ""]
    return "\n".join(lines)


def tracked_metrics(card: dict[str, Any]) -> dict[str, float]:
    """The card's held-out numbers as experiment-tracking metrics: ``<split>/<metric>`` for
    this model, ``<split>/baseline/<method>/<metric>`` for each other method and, with
    replicates, ``<split>/mean_over_seeds/<metric>``. No name is a prefix folder of another
    (MLflow's file store keeps each metric as a file)."""
    evaluated = card.get("evaluation") or {}
    split, out = evaluated.get("split", "test"), {}
    for row in evaluated.get("metrics", []):
        out[f"{split}/{row['metric']}"] = row["model"]
        for name, value in row["methods"].items():
            if name != card["model"]["method"]:
                out[f"{split}/baseline/{name}/{row['metric']}"] = value
    for row in evaluated.get("replicates", []):
        out[f"{split}/mean_over_seeds/{row['metric']}"] = row["model_mean"]
    return out


def write(card: dict[str, Any], out_md: str | os.PathLike,
          out_json: str | os.PathLike) -> None:
    """Write ``model_card.md`` and ``model_card.json`` (each atomically)."""
    atomic.write_text(out_json, json.dumps(card, indent=2, default=str) + "\n")
    atomic.write_text(out_md, markdown(card))


def info(model_path: str | os.PathLike) -> str:
    """What ``medgen info`` prints: the ``model_card.md`` beside ``model_path`` when the
    workflow wrote one for this very file, else the card built from the checkpoint alone
    (no evaluation), saying why (no card beside it, an unreadable one, or one written for
    another model file). A folder is read as its ``model.pt``. Raises MedgenInputError for
    an unreadable model file."""
    path = Path(model_path)
    if path.is_dir():
        path = path / checkpoint.MODEL_FILE
    beside, card_json = path.parent / CARD_MD, path.parent / CARD_JSON
    if beside.is_file() and stored(path) is not None:
        return beside.read_text()
    card = build(path)
    if not card_json.is_file():
        card["built_because"] = "no model_card.json beside it"
    else:
        try:
            json.loads(card_json.read_text())["model"]["sha256"]
            card["built_because"] = ("the model_card.json beside it was written for another "
                                     "model file: its sha256 differs")
        except (ValueError, KeyError, TypeError):
            card["built_because"] = "the model_card.json beside it is unreadable"
    log.warning("%s: %s; printing what the checkpoint alone says", path, card["built_because"])
    return markdown(card)
