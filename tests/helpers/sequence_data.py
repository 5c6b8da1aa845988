"""Small synthetic sequence-design inputs: random DNA, a FASTA, a measurement table with a
planted motif effect, and their prepared ``data.npz``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MOTIF = "TATAAT"  # the planted motif (the -10 box of a bacterial promoter)


def random_sequences(n: int, length: int, rng: np.random.Generator) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def write_fasta(path: Path, records: dict[str, str]) -> Path:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in records.items()))
    return path


def write_motif_table(path: Path, n: int = 120, length: int = 20, seed: int = 0,
                      effect: float = 2.0, noise: float = 0.1) -> Path:
    """A CSV (x, y): half the sequences carry MOTIF at a random position; y = effect for
    those, 0 otherwise, plus Gaussian noise of sd ``noise``."""
    rng = np.random.default_rng(seed)
    sequences, values = [], []
    for i, seq in enumerate(random_sequences(n, length, rng)):
        has = i % 2 == 0
        if has:
            at = int(rng.integers(0, length - len(MOTIF) + 1))
            seq = seq[:at] + MOTIF + seq[at + len(MOTIF):]
        sequences.append(seq)
        values.append(effect * has + rng.normal(0, noise))
    pd.DataFrame({"x": sequences, "y": values}).to_csv(path, index=False)
    return path


def prepared_measurements(folder: Path, seed: int = 0, **table) -> Path:
    """``folder/data.npz`` (and data.json) prepared from a :func:`write_motif_table` table."""
    from medgen.tasks.sequence_design.prepare import prepare_measurements

    folder.mkdir(parents=True, exist_ok=True)
    csv = write_motif_table(folder / "table.csv", seed=seed, **table)
    return prepare_measurements(csv, folder / "data.npz", set_column=None, seed=seed)
