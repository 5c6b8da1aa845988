"""Seeded, stratified, group-aware train/val/test splits.

Groups (patients) never straddle splits: a tumour and its matched normal from one patient
would otherwise let a model "recognise" the patient at test time. Each group gets one label
(its most frequent; ties go to the rarer label overall, so a patient with one tumour and one
normal counts as normal), and within each label the groups are shuffled with the seed and
cut into test, val and train by the requested fractions of groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medgen.errors import MedgenInputError

TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)


def _column(obs: pd.DataFrame, name: str, role: str) -> pd.Series:
    if name not in obs.columns:
        raise MedgenInputError(
            f"split.{role} is '{name}', which is not an obs column; available columns: "
            + (", ".join(map(str, obs.columns)) or "(none)")
        )
    values = obs[name]
    if values.isna().any():
        example = values.index[values.isna()][0]
        raise MedgenInputError(
            f"split.{role} column '{name}' is empty for {int(values.isna().sum())} samples "
            f"(e.g. '{example}'); every sample needs a value"
        )
    return values.astype(str)


def group_labels(groups: pd.Series, labels: pd.Series) -> pd.Series:
    """One label per group: its most frequent, ties broken towards the rarer label overall."""
    rarity = labels.value_counts()  # larger count = more common
    table = pd.crosstab(groups, labels)
    # Sort label columns rarest first so that idxmax (first maximum) prefers rare labels.
    order = sorted(table.columns, key=lambda lab: (rarity[lab], str(lab)))
    return table[order].idxmax(axis=1)


def split_groups(
    obs: pd.DataFrame,
    group_by: str | None,
    stratify_by: str | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> pd.Series:
    """Assign each sample to 'train', 'val' or 'test'.

    Parameters
    ----------
    obs
        Sample table (index = sample IDs).
    group_by
        Column whose members stay in one split (e.g. 'patient'); None = each sample alone.
    stratify_by
        Column whose proportions each split keeps (by group label); None = no strata.
    val_fraction, test_fraction
        Fractions of groups (per stratum, rounded) in val and test.
    seed
        Seed of the shuffle; the same inputs and seed give the same split.

    Returns
    -------
    pandas.Series
        Index = ``obs.index``, values in {'train', 'val', 'test'}.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise MedgenInputError(f"split.{name} is {value}; expected 0 <= value < 1")
    if val_fraction + test_fraction >= 1:
        raise MedgenInputError(
            f"split.val_fraction + split.test_fraction is {val_fraction + test_fraction}; "
            "expected less than 1 so that the training split is not empty"
        )
    if obs.index.has_duplicates:
        raise MedgenInputError("cannot split: duplicate sample IDs in obs")
    groups = (
        _column(obs, group_by, "group_by")
        if group_by
        else pd.Series(obs.index.astype(str), index=obs.index)
    )
    if stratify_by:
        labels = group_labels(groups, _column(obs, stratify_by, "stratify_by"))
    else:
        unique = pd.Index(sorted(groups.unique()))
        labels = pd.Series("all", index=unique)

    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for label in sorted(labels.unique(), key=str):
        members = np.array(sorted(labels.index[labels == label]), dtype=object)
        members = members[rng.permutation(len(members))]
        n_test = int(round(test_fraction * len(members)))
        n_val = int(round(val_fraction * len(members)))
        for i, group in enumerate(members):
            assignment[group] = TEST if i < n_test else VAL if i < n_test + n_val else TRAIN
    split = groups.map(assignment)
    if (split == TRAIN).sum() == 0:
        raise MedgenInputError(
            f"the training split is empty ({groups.nunique()} groups); lower "
            "split.val_fraction/test_fraction or add samples"
        )
    return split.rename("split")


def shared_groups(split: pd.Series, groups: pd.Series, a: str = TEST, b: str = TRAIN) -> set:
    """Groups with samples in both split ``a`` and split ``b`` (empty for a grouped split)."""
    return set(groups[split == a]) & set(groups[split == b])
