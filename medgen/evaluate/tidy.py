"""The tidy metrics table every task's evaluation writes beside its own tables
(``metrics_tidy.tsv``): one row per method x split x unit x metric.

A unit is what a metric is measured on: a subject, a slice, a gene or a sample; ``all``
marks a metric of the whole split (AUROC over the slices, a latent space's k-NN accuracy).
Per-unit rows are what a paired comparison of two methods within one run needs, and the
``all`` rows are what a comparison over replicate runs aggregates; the same layout for
every task is what lets one aggregation serve them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from medgen import atomic
from medgen.errors import MedgenInputError

COLUMNS = ("method", "split", "unit_kind", "unit", "metric", "value")
UNIT_KINDS = ("all", "subject", "slice", "gene", "sample")
WHOLE_SPLIT = "all"  # the unit of a metric measured on the whole split
FILE = "metrics_tidy.tsv"
# beside it, a task that calibrates decision thresholds on val writes them (method ->
# operating point; anomaly detection): model cards store them for apply runs
OPERATING_POINTS = "operating_points.json"


def melt(wide: pd.DataFrame, unit_kind: str, metrics: Iterable[str],
         unit: str | None = None, split: str | None = None) -> pd.DataFrame:
    """Long rows from a wide table (one row per method, and per unit or split).

    Parameters
    ----------
    wide
        Has a ``method`` column, the ``metrics`` columns and, unless given as arguments,
        ``split`` and the unit column ``unit``.
    unit_kind
        One of ``UNIT_KINDS``; 'all': every row is a whole-split value.
    metrics
        The columns to keep as metrics (numbers); others are dropped.
    unit
        The column naming each row's unit (e.g. 'subject', 'gene'); None for 'all'.
    split
        The split of every row when ``wide`` has no ``split`` column.

    Returns
    -------
    DataFrame with ``COLUMNS``; NaN values are kept (a metric a unit does not define).

    Raises
    ------
    MedgenInputError
        An unknown ``unit_kind``, or a missing column.
    """
    if unit_kind not in UNIT_KINDS:
        raise MedgenInputError(f"unit kind {unit_kind!r}; expected one of {UNIT_KINDS}")
    metrics = [m for m in metrics if m in wide.columns]
    needed = ["method", *([] if split else ["split"]), *([unit] if unit else [])]
    missing = [c for c in needed if c not in wide.columns]
    if missing:
        raise MedgenInputError(f"metrics table lacks the column(s) {missing}")
    frame = wide.assign(
        split=split if split else wide["split"],
        unit_kind=unit_kind,
        unit=wide[unit].astype(str) if unit else WHOLE_SPLIT,
    )
    long = frame.melt(id_vars=["method", "split", "unit_kind", "unit"], value_vars=metrics,
                      var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype(np.float64)
    return long[list(COLUMNS)]


def write(parts: Iterable[pd.DataFrame], path: str | os.PathLike) -> pd.DataFrame:
    """Concatenate tidy parts, check them and write them as TSV (atomically; rows in a
    fixed order, so a rerun writes the same bytes). Returns the table.

    Raises
    ------
    MedgenInputError
        A part without ``COLUMNS``, or two rows for one method x split x unit x metric.
    """
    parts = list(parts)
    for part in parts:
        if list(part.columns) != list(COLUMNS):
            raise MedgenInputError(f"a tidy metrics part has columns {list(part.columns)}; "
                                   f"expected {list(COLUMNS)}")
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    key = ["method", "split", "unit_kind", "unit", "metric"]
    repeated = table[table.duplicated(key, keep=False)]
    if len(repeated):
        raise MedgenInputError(f"tidy metrics: {len(repeated)} rows repeat a method x split "
                               f"x unit x metric, e.g. {repeated.iloc[0][key].to_dict()}")
    with atomic.atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.10g", na_rep="NaN",
                     lineterminator="\n")
    return table


def read(path: str | os.PathLike) -> pd.DataFrame:
    """A tidy metrics table written by ``write`` (unit ids as text).

    Raises
    ------
    MedgenInputError
        The file is missing or lacks ``COLUMNS``.
    """
    if not os.path.exists(path):
        raise MedgenInputError(f"tidy metrics table {path} does not exist")
    try:
        table = pd.read_csv(path, sep="\t", dtype={"unit": str, "split": str, "method": str,
                                                   "value": str},
                            keep_default_na=False, na_values=[])
    except pd.errors.EmptyDataError:
        raise MedgenInputError(f"tidy metrics table {path} is empty; expected a header "
                               f"{list(COLUMNS)} and rows") from None
    if list(table.columns) != list(COLUMNS):
        raise MedgenInputError(f"{path} has columns {list(table.columns)}; expected "
                               f"{list(COLUMNS)}")
    # unit ids stay text ('NA' is a gene); a value may be a number, NaN or empty (missing)
    text = table["value"].fillna("").str.strip()
    missing = text.str.lower().isin(["", "nan", "na"])
    values = pd.to_numeric(text.where(~missing, "nan"), errors="coerce")
    bad = values.isna() & ~missing
    if bad.any():
        row = table[bad].iloc[0]
        raise MedgenInputError(f"{path}: value {row['value']!r} of {row['method']} / "
                               f"{row['metric']} is not a number; expected a number or NaN")
    table["value"] = values.astype(np.float64)
    return table
