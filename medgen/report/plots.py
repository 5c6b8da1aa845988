"""What every task's figures share: a PNG written atomically and identically on reruns, and
Lightning's CSV training log read as one row per epoch."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch jobs have no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.atomic import atomic_path  # noqa: E402
from medgen.errors import MedgenInputError  # noqa: E402


def save_png(fig: plt.Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` to ``path`` as PNG (110 dpi) through a temporary file and close it.

    No version or date stamp in the metadata, so a rerun writes a byte-identical file.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight",
                    metadata={"Software": None})
    plt.close(fig)


def per_epoch(metrics_csv: str | os.PathLike) -> pd.DataFrame:
    """Lightning's CSV log (``metrics.csv``: train and val rows of an epoch apart) as one
    row per epoch (mean of the numeric columns), indexed by epoch.

    Raises
    ------
    MedgenInputError
        The file does not exist or has no ``epoch`` column.
    """
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.exists():
        raise MedgenInputError(f"training metrics {metrics_csv} do not exist")
    table = pd.read_csv(metrics_csv)
    if "epoch" not in table:
        raise MedgenInputError(f"{metrics_csv} has no 'epoch' column")
    return table.groupby("epoch").mean(numeric_only=True)
