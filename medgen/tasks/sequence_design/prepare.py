"""The prepared data of the sequence-design task: one ``data.npz`` of equal-length sequences,
their split and (from a measurement table) their measurements, with ``data.json`` beside it
(the reader's report and the provenance).

``data.npz`` arrays:

- ``onehot``: uint8 (N, L, 4), channels A, C, G, T (N bases all zeros);
- ``split``: unicode (N,), 'train', 'val' or 'test';
- ``value``: float64 (N,), the measurement (source 'table' only);
- ``generator_train``: bool (N,), the training sequences the generators train on (source
  'table' with ``table.generator_below_quantile``; absent otherwise: the training split);
- ``record``, ``start``: FASTA record id and 0-based window start (source 'fasta');
  ``line``: 1-based line of the table (source 'table').
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgen import atomic, provenance
from medgen.data.sequence import (
    check_strand_split,
    identity_split,
    one_hot,
    read_fasta_windows,
    read_measurements,
)
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def provenance_path(data_path: str | os.PathLike) -> Path:
    """The JSON written beside a prepared file (``data.npz`` -> ``data.json``)."""
    return Path(data_path).with_suffix(".json")


def _log_split(split: np.ndarray, how: str, required: tuple[str, ...] = ("train",),
               remedy: str = "give more sequences (a longer FASTA, a larger "
                             "sequence_design.window.max_windows) or other "
                             "sequence_design.split_fractions") -> dict[str, int]:
    """Counts per split, logged; MedgenInputError naming the split, the counts and the
    ``remedy`` when a ``required`` split is empty (too few sequences for the fractions, or
    a table's set column without that set), before anything is written rather than when
    the evaluation finds it empty."""
    counts = {name: int((split == name).sum()) for name in SPLITS}
    listed = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    log.info("sequence split (%s): %s", how, listed)
    for name in required:
        if not counts[name]:
            raise MedgenInputError(
                f"no '{name}' sequences after the split ({how}): {listed} of {len(split):,} "
                f"sequences; {remedy}")
    return counts


def _required(fractions: tuple[float, float, float]) -> tuple[str, ...]:
    """The splits an identity split by ``fractions`` must fill: those given a share."""
    return tuple(name for name, share in zip(SPLITS, fractions, strict=True) if share > 0)


def prepare_windows(fasta: str | os.PathLike, out: str | os.PathLike, length: int,
                    stride: int | None = None, n_policy: str = "drop",
                    u_policy: str = "refuse", max_windows: int | None = None,
                    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
                    config: dict[str, Any] | None = None) -> Path:
    """Cut a FASTA into windows (``medgen.data.sequence.read_fasta_windows``), split them by
    identity (``identity_split``, ``fractions``, ``seed``) and write ``out`` (data.npz) and
    its ``data.json`` (reader report, split counts, provenance with the FASTA's checksum).

    Returns ``out``. Raises MedgenInputError as the reader and the split do, and when a
    split given a share holds no window (naming it and the counts); nothing is written then.
    """
    windows, report = read_fasta_windows(fasta, length, stride, n_policy, u_policy,
                                         max_windows)
    split = identity_split(windows["sequence"].tolist(), fractions, seed).astype(str)
    counts = _log_split(split, f"identity, fractions {list(fractions)}, seed {seed}",
                        _required(fractions))
    arrays = {"onehot": one_hot(windows["sequence"].tolist()).astype(np.uint8),
              "split": split, "record": windows["record"].to_numpy(dtype=str),
              "start": windows["start"].to_numpy(dtype=np.int64)}
    return _write(out, arrays, {"source": "fasta", "reader": report, "split": {
        "how": "identity", "fractions": list(fractions), "seed": seed, "counts": counts}},
        config, seed, [fasta])


def prepare_measurements(table: str | os.PathLike, out: str | os.PathLike,
                         sequence_column: str = "x", value_column: str | None = "y",
                         count_prefix: str | None = None, set_column: str | None = "set",
                         length: int | None = None, u_policy: str = "refuse",
                         fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                         seed: int = 0, config: dict[str, Any] | None = None,
                         generator_below_quantile: float | None = None) -> Path:
    """Read a measurement table (``medgen.data.sequence.read_measurements``) and write
    ``out`` (data.npz with ``value``) and its ``data.json``.

    The split is the table's own set column when it has one (``set_column``; refused when
    it puts a sequence and its reverse complement in two splits,
    ``medgen.data.sequence.check_strand_split``), an identity split by ``fractions`` and
    ``seed`` otherwise; which one is logged and recorded.

    ``generator_below_quantile`` (Killoran et al.'s design check, 0.4 there): a
    ``generator_train`` mask of the training sequences measured at or below that quantile
    of the training measurements; the generators (dna_gan) train on those alone, so
    designs that pass the training maximum show what design adds beyond the GAN's data.

    Returns ``out``. Raises MedgenInputError as the reader and the split do, and when a
    split holds no sequence (one given a share; with the table's set column 'train' or
    'test'), naming it and the counts.
    """
    frame, report = read_measurements(table, sequence_column, value_column,
                                      count_prefix=count_prefix, length=length,
                                      set_column=set_column, u_policy=u_policy)
    if "set" in frame.columns:
        split = frame["set"].to_numpy(dtype=str)
        how = {"how": f"the table's column '{set_column}'"}
        # identity_split keeps strands together; a table's own split must do the same
        check_strand_split(frame["sequence"].tolist(), split, frame["line"].tolist(),
                           f"{table}, column '{set_column}'")
        required = ("train", "test")  # the evaluations score the test split
        remedy = (f"give the table's column '{set_column}' training and test rows, or set "
                  "sequence_design.table.set_column: null to split by "
                  "sequence_design.split_fractions")
    else:
        split = identity_split(frame["sequence"].tolist(), fractions, seed).astype(str)
        how = {"how": "identity", "fractions": list(fractions), "seed": seed}
        required = _required(fractions)
        remedy = "give more sequences or other sequence_design.split_fractions"
    how["counts"] = _log_split(split, how["how"], required, remedy)
    arrays = {"onehot": one_hot(frame["sequence"].tolist()).astype(np.uint8),
              "split": split, "value": frame["value"].to_numpy(dtype=np.float64),
              "line": frame["line"].to_numpy(dtype=np.int64)}
    if generator_below_quantile is not None:
        train = split == "train"
        cut = float(np.quantile(arrays["value"][train], generator_below_quantile))
        arrays["generator_train"] = train & (arrays["value"] <= cut)
        how["generator_train"] = {"quantile": generator_below_quantile, "cut": cut,
                                  "n": int(arrays["generator_train"].sum())}
        log.info("generators train on the %d training sequences measured at or below the "
                 "%g quantile (%.4g)", arrays["generator_train"].sum(),
                 generator_below_quantile, cut)
    return _write(out, arrays, {"source": "table", "reader": report, "split": how},
                  config, seed, [table])


def _write(out: str | os.PathLike, arrays: dict[str, np.ndarray], record: dict[str, Any],
           config: dict[str, Any] | None, seed: int, inputs: list) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(out, arrays)
    atomic.write_json(provenance_path(out), {
        **record, "length": int(arrays["onehot"].shape[1]), "alphabet": "ACGT",
        "provenance": provenance.collect(config, seed, inputs)})
    log.info("wrote %s: %d sequences of %d bases", out, *arrays["onehot"].shape[:2])
    return out


def prepare(section: dict[str, Any], out: str | os.PathLike, seed: int = 0) -> Path:
    """The task's data from the resolved config section ``sequence_design`` (its
    ``families`` are not read) and the run's ``seed`` (the identity split's):
    :func:`prepare_windows` for source 'fasta', :func:`prepare_measurements` for 'table'.

    Raises MedgenInputError for an empty ``path``, and as the two functions do.
    """
    if not section["path"]:
        raise MedgenInputError("config key 'sequence_design.path' is empty; name the FASTA "
                               "or the measurement table")
    fractions = tuple(section["split_fractions"])
    recorded = {"sequence_design": section, "seed": seed}
    if section["source"] == "fasta":
        window = section["window"]
        return prepare_windows(section["path"], out, window["length"], window["stride"],
                               window["n_policy"], section["u_policy"],
                               window["max_windows"], fractions, seed, recorded)
    table = section["table"]
    return prepare_measurements(section["path"], out, table["sequence_column"],
                                table["value_column"], table["count_prefix"],
                                table["set_column"], table["length"], section["u_policy"],
                                fractions, seed, recorded,
                                table.get("generator_below_quantile"))


def load_prepared(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, data.json record) of a prepared ``data.npz``.

    Raises
    ------
    MedgenInputError
        A missing file, or one without ``onehot`` (N, L, 4) and a ``split`` of N labels.
    """
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"prepared sequence data {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    onehot = arrays.get("onehot")
    if onehot is None or onehot.ndim != 3 or onehot.shape[2] != 4:
        raise MedgenInputError(
            f"{path}: expected an array 'onehot' of shape (N, L, 4); got "
            f"{None if onehot is None else onehot.shape}")
    if arrays.get("split") is None or arrays["split"].shape != (len(onehot),):
        raise MedgenInputError(f"{path}: expected an array 'split' of {len(onehot)} labels")
    record_path = provenance_path(path)
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    return arrays, record
