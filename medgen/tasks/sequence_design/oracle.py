"""The evaluation oracle of sequence design: a second sequence -> measurement CNN that
scores what the design methods produce, so that no method is judged by the predictor it
optimised (Killoran et al. 2017 relabelled designs with an oracle trained on all measured
data).

It differs from the design predictor in three ways: its architecture (the
``sequence_predictor`` family's 'oracle' preset: other filter width and depth), its seed
(the run's seed + ``ORACLE_SEED_OFFSET``) and its data (every measured sequence, train,
val and test splits together). A design method that exploits quirks of its own predictor
then scores lower under the oracle: the gap is reported (``design_evaluation``).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgen import checkpoint, provenance, registry
from medgen.data.sequence import decode, one_hot, read_measurements
from medgen.errors import MedgenInputError
from medgen.tasks.sequence_design.loaders import _loader
from medgen.tasks.sequence_design.prepare import load_prepared

log = logging.getLogger(__name__)

ORACLE_PRESET = "oracle"
ORACLE_SEED_OFFSET = 1000  # another initialisation and shuffling than the design predictor


def _with_extra_tables(sequences: list[str], value: np.ndarray, tables: list[str],
                       table: dict[str, Any], u_policy: str) -> tuple[list[str], np.ndarray]:
    """The prepared sequences and measurements with those of further measurement tables
    (same columns, e.g. a replicate measurement); a sequence measured in several is
    averaged, as duplicates within one table are."""
    frames = [pd.DataFrame({"sequence": sequences, "value": value})]
    for path in tables:
        frame, _ = read_measurements(path, table["sequence_column"], table["value_column"],
                                     count_prefix=table["count_prefix"],
                                     length=len(sequences[0]), set_column=None,
                                     u_policy=u_policy)
        log.info("evaluation oracle: %d measured sequences of %s added", len(frame), path)
        frames.append(frame[["sequence", "value"]])
    merged = pd.concat(frames, ignore_index=True).groupby("sequence", sort=False)["value"] \
        .mean()
    if len(merged) < sum(len(f) for f in frames):
        log.info("evaluation oracle: %d sequences measured more than once, averaged",
                 sum(len(f) for f in frames) - len(merged))
    return merged.index.tolist(), merged.to_numpy(dtype=np.float64)


def train_oracle(data_path: str | os.PathLike, out: str | os.PathLike, seed: int = 0,
                 preset: str = ORACLE_PRESET, overrides: dict[str, Any] | None = None,
                 num_threads: int | None = None, extra_tables: list[str] | None = None,
                 table: dict[str, Any] | None = None, u_policy: str = "refuse") -> Path:
    """Train the evaluation oracle on every measured sequence of a prepared ``data.npz``
    and write it as a ``sequence_predictor`` ``model.pt`` at ``out`` (loadable with
    ``inference.load``; its provenance says it is an oracle and on what it trained).

    The targets are standardised with the mean and sd of all measurements (the oracle
    predicts in the measurement's units). Trained for the preset's ``max_epochs`` without
    early stopping (no data are held out from it).

    ``extra_tables`` (with the run's ``table`` column settings and ``u_policy``): further
    measurement tables of the same sequences' length, e.g. MPSA's replicate measurement;
    their sequences join the oracle's training data (a sequence measured twice: the mean).

    Raises
    ------
    MedgenInputError
        A file without measurements (FASTA windows), non-finite or constant measurements,
        an unknown preset, an extra table the reader refuses.
    """
    from medgen.models.sequence_predictor.plan import PredictorPlan
    from medgen.seeding import seed_all
    from medgen.train import fit_in_memory

    arrays, record = load_prepared(data_path)
    if "value" not in arrays:
        raise MedgenInputError(f"{data_path} holds sequences without measurements; the "
                               "evaluation oracle trains on a measurement table "
                               "(sequence_design.source: table)")
    value = arrays["value"].astype(np.float64)
    onehot = arrays["onehot"]
    if extra_tables:
        sequences, value = _with_extra_tables(decode(onehot), value, list(extra_tables),
                                              table or {}, u_policy)
        onehot = one_hot(sequences)
    mean, sd = float(value.mean()), float(value.std())
    if not np.isfinite(value).all() or not sd > 0:
        raise MedgenInputError(f"{data_path}: measurements are non-finite or all equal; "
                               "the oracle has nothing to learn")
    hparams = registry.resolve_hparams("sequence_predictor", preset, overrides or {})
    length = int(onehot.shape[1])
    oracle_seed = seed + ORACLE_SEED_OFFSET
    seed_all(oracle_seed)
    plan = PredictorPlan(hparams, length)
    loader = _loader([onehot, ((value - mean) / sd).astype(np.float32)],
                     hparams["batch_size"], oracle_seed)
    started = time.perf_counter()
    with warnings.catch_warnings():  # the plan validates when given data; the oracle has none
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`")
        fit_in_memory(plan, loader, hparams["max_epochs"], oracle_seed, num_threads)
    log.info("evaluation oracle: %s preset, %d epochs on all %d measured sequences "
             "(seed %d), %.0f s", preset, hparams["max_epochs"], len(value), oracle_seed,
             time.perf_counter() - started)
    reader = record.get("reader", {})
    signature = {"length": length, "channels": 4, "alphabet": "ACGT",
                 "output": hparams["output"], "target_mean": mean, "target_sd": sd,
                 "value": str(reader.get("value", "value"))}
    role = {"role": "evaluation oracle", "trained_on": "every measured sequence (train, "
            "val and test splits)" + (f" and those of {list(extra_tables)}"
                                      if extra_tables else ""),
            "n_sequences": int(len(value)), "preset": preset}
    path = Path(out)
    checkpoint.save(checkpoint.Checkpoint(
        family="sequence_predictor", hparams=dict(hparams),
        state={"network": plan.net.state_dict()}, data=signature,
        config={"oracle": role, "hparams": hparams},
        provenance={"data": record.get("provenance", {}), "oracle": role,
                    "samples": {"train": int(len(value))},
                    "training": provenance.collect(config={"oracle": role, "hparams": hparams},
                                                   seed=oracle_seed,
                                                   inputs=[data_path, *(extra_tables or [])])},
        seed=oracle_seed), path)
    return path
