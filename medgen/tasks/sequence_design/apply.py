"""Apply a trained sequence-design model (``medgen.apply``; nothing is trained):

- a ``sequence_predictor`` scores new sequences: the windows of the ``sequence_design``
  section's FASTA (cut at the model's length, with the section's stride, N and U policies)
  or the sequences of its measurement table (which must have the model's length); outputs
  ``predictions.tsv`` (and, for a table, the measurement beside each prediction and
  ``metrics.json`` with Pearson r and MSE against the measurements); each sequence is
  flagged ``seen_in_fitting`` when it (or its reverse complement) was in the model's
  train or val split, and the metrics are given on the unseen sequences too, so that a
  table that overlaps the training data does not pass for a held-out check;
- a ``dna_gan`` samples ``sequence_design.sampling.n_sequences`` sequences with the run's
  seed: ``generated.fa`` and ``generated.tsv`` (sequence, GC, the generator's mean
  probability of the chosen base: how sure it was).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen import atomic, checkpoint, provenance, registry
from medgen.data.sequence import (
    canonical,
    decode,
    one_hot,
    read_fasta_windows,
    read_measurements,
)
from medgen.errors import MedgenInputError
from medgen.synthetic_output import check_count, check_room

log = logging.getLogger(__name__)


def _family(model_path: str | os.PathLike) -> str:
    return checkpoint.load(model_path, family=tuple(registry.names("sequence_design"))).family


def fitting_keys(model_provenance: dict[str, Any]) -> set[str] | None:
    """Strand-free keys (``medgen.data.sequence.canonical``) of the sequences a predictor
    was fitted or selected on (its prepared data's train and val splits), read from the
    ``data.npz`` its checkpoint's provenance names when that file is still there unchanged
    (same sha256); None (logged) otherwise: the overlap cannot be checked."""
    from medgen.tasks.sequence_design.prepare import load_prepared

    inputs = (model_provenance.get("training") or {}).get("inputs") or {}
    for path, digest in inputs.items():
        if Path(path).is_file() and provenance.sha256_file(path) == digest:
            arrays, _ = load_prepared(path)
            fitted = np.isin(arrays["split"], ["train", "val"])
            return {canonical(s) for s in decode(arrays["onehot"][fitted])}
    log.warning("the predictor's training data (%s) is not here unchanged: whether the new "
                "sequences overlap its train/val splits is not checked",
                ", ".join(inputs) or "not recorded")
    return None


def _measured_metrics(table: pd.DataFrame) -> dict[str, float]:
    from medgen.tasks.sequence_design.design_evaluation import pearson_r

    truth, predicted = table["measured"].to_numpy(), table["prediction"].to_numpy()
    return {"n_sequences": len(table), "pearson_r": pearson_r(predicted, truth),
            "mse": float(np.mean((predicted - truth) ** 2)) if len(table) else float("nan")}


def generates(model_path: str | os.PathLike) -> bool:
    """True when the trained model at ``model_path`` generates sequences (a dna_gan): its
    apply samples and reads no new data. Raises MedgenInputError for a file that is not a
    sequence_design checkpoint."""
    return _family(model_path) != "sequence_predictor"


def check_new_data(config: dict[str, Any], model_path: str | os.PathLike) -> None:
    """``TaskSpec.check_apply``: a predictor needs new sequences (``sequence_design.path``);
    a generator needs a positive ``sequence_design.sampling.n_sequences``.

    Raises MedgenInputError naming the key.
    """
    section = config["sequence_design"]
    if _family(model_path) == "sequence_predictor":
        if not section["path"]:
            raise MedgenInputError(
                "config key 'sequence_design.path' is empty; name the FASTA or table whose "
                f"sequences the predictor {model_path} scores")
    elif section["sampling"]["n_sequences"] < 1:
        raise MedgenInputError("config key 'sequence_design.sampling.n_sequences' is "
                               f"{section['sampling']['n_sequences']}; expected >= 1")


def sample_sequences(model_path: str | os.PathLike, n: int, out: str | os.PathLike,
                     seed: int = 0, device: str = "cpu",
                     final: str | os.PathLike | None = None) -> pd.DataFrame:
    """``n`` sequences of a trained dna_gan (argmax of its base probabilities, seeded) as
    a FASTA at ``out`` (headers: id, ``synthetic=true``, the seed, GC and the generator's
    mean probability of the chosen base) and a TSV beside it (``<out>.tsv``) with the same
    columns and ``<out>.json`` (model sha256, provenance, ``synthetic: true``). Returns the
    table. ``final``: where ``out`` ends up, for the log (apply mode writes into a
    temporary folder); default ``out``.

    Raises MedgenInputError for n < 1, n above ``medgen.synthetic_output.MAX_SAMPLES`` or
    more than the disk holds, or a model of another family.
    """
    from medgen.tasks.sequence_design.generation_metrics import gc_content
    from medgen.tasks.sequence_design.inference import load

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise MedgenInputError(f"number of sequences is {n!r}; expected an integer >= 1")
    check_count(int(n), "sequences")
    model = load(model_path, device=device, family="dna_gan")
    # FASTA and TSV: the sequence twice and ~100 bytes of header and columns each
    check_room(out, int(n) * (2 * model.length + 200), "the sequences")
    probabilities = model.sample(int(n), seed=seed)
    sequences = decode(probabilities)
    table = pd.DataFrame({
        "id": [f"generated_{i}" for i in range(n)], "sequence": sequences,
        "gc": gc_content(sequences),
        "mean_base_probability": probabilities.max(axis=2).mean(axis=1)})
    out = Path(out)
    atomic.write_text(out, "".join(
        f">{i} synthetic=true seed={seed} gc={g:.3f} p={p:.3f}\n{s}\n"
        for i, s, g, p in zip(table["id"], sequences, table["gc"],
                              table["mean_base_probability"], strict=True)))
    atomic.write_text(out.with_name(out.name + ".tsv"),
                      table.to_csv(sep="\t", index=False, float_format="%.6g"))
    atomic.write_json(out.with_name(out.name + ".json"), {
        "model": str(model_path), "model_sha256": provenance.sha256_file(model_path),
        "family": "dna_gan", "n_sequences": int(n), "seed": seed, "synthetic": True,
        "provenance": provenance.collect(seed=seed, inputs=[model_path])})
    log.info("dna_gan: %d sequences sampled (seed %d) to %s, mean GC %.3f", n, seed,
             final or out, table["gc"].mean())
    return table


def _new_sequences(section: dict[str, Any], length: int) -> pd.DataFrame:
    """The sequences a predictor scores: id, sequence and (a table's) measurement."""
    if section["source"] == "fasta":
        window = section["window"]
        if window["length"] != length:
            log.warning("config key 'sequence_design.window.length' (%d) is not used: the "
                        "FASTA is cut into windows of the predictor's length, %d",
                        window["length"], length)
        windows, _ = read_fasta_windows(section["path"], length, window["stride"],
                                        window["n_policy"], section["u_policy"],
                                        window["max_windows"])
        ids = windows["record"].astype(str) + ":" + windows["start"].astype(str)
        return pd.DataFrame({"id": ids, "sequence": windows["sequence"]})
    table = section["table"]
    frame, _ = read_measurements(section["path"], table["sequence_column"],
                                 table["value_column"], count_prefix=table["count_prefix"],
                                 length=length, set_column=None,
                                 u_policy=section["u_policy"],
                                 length_from="the predictor's input length")
    lengths = frame["sequence"].str.len()
    if (lengths != length).any():
        first = frame[lengths != length].iloc[0]
        raise MedgenInputError(
            f"{section['path']}, line {first['line']}: a sequence of {len(first['sequence'])} "
            f"bases; the predictor was trained on {length}")
    return pd.DataFrame({"id": "line" + frame["line"].astype(str),
                         "sequence": frame["sequence"], "measured": frame["value"]})


def apply_sequence_design(model_path: str | os.PathLike, config: dict[str, Any],
                          out_dir: Path, device: str = "cpu") -> Path:
    """Score new sequences with a predictor, or sample sequences from a generator (module
    docstring). Returns ``metrics.json`` (a table with measurements), else
    ``predictions.tsv`` or ``generated.tsv``.

    Raises
    ------
    MedgenInputError
        A model of another task, new sequences the readers refuse (naming file, record and
        position), a table whose sequences have another length than the model's.
    """
    from medgen.tasks.sequence_design.inference import load

    check_new_data(config, model_path)
    section = config["sequence_design"]
    saved = checkpoint.load(model_path, family=tuple(registry.names("sequence_design")))
    family = saved.family
    model = load(model_path, device=device, family=family)
    seed = int(config.get("seed", 0))
    record = {"model": str(model_path), "model_sha256": provenance.sha256_file(model_path),
              "family": family, "provenance": provenance.collect(
                  config={"sequence_design": section}, seed=seed,
                  inputs=[section["path"]] if family == "sequence_predictor" else [])}
    with atomic.atomic_dir(out_dir) as tmp:
        if family == "dna_gan":
            if section["path"]:  # a generator samples from its prior; no data are read
                log.warning("config key 'sequence_design.path' (%s) is not used: a dna_gan "
                            "samples sequences without data", section["path"])
            n = section["sampling"]["n_sequences"]
            table = sample_sequences(model_path, n, tmp / "generated.fa", seed, device,
                                     final=Path(out_dir) / "generated.fa")
            table.to_csv(tmp / "generated.tsv", sep="\t", index=False, float_format="%.6g")
            (tmp / "generated.fa.tsv").unlink()
            (tmp / "generated.fa.json").unlink()
            atomic.write_json(tmp / "apply.json", {**record, "n_sequences": n,
                                                   "synthetic": True})
            result = "generated.tsv"
        else:
            table = _new_sequences(section, model.length)
            if not len(table):
                raise MedgenInputError(f"{section['path']}: no sequences of {model.length} "
                                       "bases to score")
            table["prediction"] = model.predict(one_hot(table["sequence"].tolist()))
            keys = fitting_keys(saved.provenance)
            if keys is not None:
                table["seen_in_fitting"] = [canonical(s) in keys for s in table["sequence"]]
                seen = int(table["seen_in_fitting"].sum())
                if seen:
                    log.warning("%d of %d sequences (or their reverse complements) are in "
                                "the predictor's train/val splits: their predictions are "
                                "not held-out; metrics.json gives the unseen ones apart",
                                seen, len(table))
            table.to_csv(tmp / "predictions.tsv", sep="\t", index=False, float_format="%.6g")
            summary = {**record, "n_sequences": len(table), "value": model.value,
                       "overlap_checked": keys is not None}
            if keys is not None:
                summary["n_seen_in_fitting"] = int(table["seen_in_fitting"].sum())
            result = "predictions.tsv"
            if "measured" in table:
                summary["metrics"] = _measured_metrics(table)
                if keys is not None:
                    summary["metrics_unseen"] = _measured_metrics(
                        table[~table["seen_in_fitting"]])
                atomic.write_json(tmp / "metrics.json", summary)
                result = "metrics.json"
                log.info("sequence_predictor on %d measured sequences: %s; unseen: %s",
                         len(table), summary["metrics"], summary.get("metrics_unseen"))
            atomic.write_json(tmp / "apply.json", summary)
            log.info("sequence_predictor: %d sequences scored", len(table))
    return Path(out_dir) / result
