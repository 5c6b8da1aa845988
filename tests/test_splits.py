"""Grouped, stratified, seeded splits: synthetic properties and the real TCGA tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgen.data.splits import group_labels, shared_groups, split_groups
from medgen.data.tcga import barcode_table
from medgen.errors import MedgenInputError


def _obs(n_patients: int = 200, seed: int = 1) -> pd.DataFrame:
    """Patients with 1-3 samples; ~10% of patients also give a normal sample."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for s in range(rng.integers(1, 4)):
            rows.append({"sample": f"p{p}-t{s}", "patient": f"p{p}", "tn": "tumor"})
        if rng.random() < 0.1:
            rows.append({"sample": f"p{p}-n", "patient": f"p{p}", "tn": "normal"})
    return pd.DataFrame(rows).set_index("sample")


def test_groups_never_straddle_and_all_splits_present():
    obs = _obs()
    split = split_groups(obs, "patient", "tn", 0.1, 0.1, seed=0)
    assert split.index.equals(obs.index)
    assert set(split) == {"train", "val", "test"}
    assert (split.groupby(obs["patient"]).nunique() == 1).all()
    for a, b in [("test", "train"), ("val", "train"), ("test", "val")]:
        assert not shared_groups(split, obs["patient"], a, b)


def test_group_fractions_and_label_proportions():
    obs = _obs(n_patients=1000)
    split = split_groups(obs, "patient", "tn", 0.1, 0.2, seed=3)
    per_patient = split.groupby(obs["patient"]).first().value_counts(normalize=True)
    assert per_patient["val"] == pytest.approx(0.1, abs=0.01)
    assert per_patient["test"] == pytest.approx(0.2, abs=0.01)
    normal = (obs["tn"] == "normal").groupby(split).mean()
    overall = (obs["tn"] == "normal").mean()
    assert (normal - overall).abs().max() < 0.02


def test_deterministic_for_a_seed_and_changes_with_seed():
    obs = _obs()
    first = split_groups(obs, "patient", "tn", 0.1, 0.1, seed=7)
    assert first.equals(split_groups(obs, "patient", "tn", 0.1, 0.1, seed=7))
    assert not first.equals(split_groups(obs, "patient", "tn", 0.1, 0.1, seed=8))
    # Row order does not matter either.
    shuffled = obs.sample(frac=1.0, random_state=0)
    assert split_groups(shuffled, "patient", "tn", 0.1, 0.1, seed=7).loc[obs.index].equals(first)


def test_sample_level_split_without_group_or_strata():
    obs = _obs(50)
    split = split_groups(obs, None, None, 0.2, 0.2, seed=0)
    counts = split.value_counts()
    assert counts["test"] == round(0.2 * len(obs)) and counts["val"] == round(0.2 * len(obs))


def test_group_label_ties_go_to_rarer_label():
    groups = pd.Series(["a", "a", "b", "c"])
    labels = pd.Series(["tumor", "normal", "tumor", "tumor"])
    assert group_labels(groups, labels).to_dict() == {"a": "normal", "b": "tumor", "c": "tumor"}


def test_bad_arguments_name_the_key():
    obs = _obs(10)
    with pytest.raises(MedgenInputError, match="split.group_by is 'donor'.*patient, tn"):
        split_groups(obs, "donor", "tn", 0.1, 0.1, 0)
    with pytest.raises(MedgenInputError, match="split.stratify_by is 'label'"):
        split_groups(obs, "patient", "label", 0.1, 0.1, 0)
    with pytest.raises(MedgenInputError, match="training split is not empty"):
        split_groups(obs, "patient", "tn", 0.5, 0.5, 0)
    broken = obs.copy()
    broken.iloc[0, broken.columns.get_loc("patient")] = None
    with pytest.raises(MedgenInputError, match="'patient' is empty for 1 samples"):
        split_groups(broken, "patient", "tn", 0.1, 0.1, 0)


@pytest.fixture(scope="module")
def tcga_obs(shared_data):
    frames = []
    for table in ("BRCA", "PRAD"):
        index = pd.read_parquet(shared_data / f"expression/tcga_mirna/{table}.parquet").index
        labels = barcode_table(index)
        labels["cancer_type"] = table
        frames.append(labels)
    return pd.concat(frames)


@pytest.mark.realdata
def test_real_tcga_patient_split_has_no_shared_patients(tcga_obs):
    split = split_groups(tcga_obs, "patient", "tumor_normal", 0.1, 0.1, seed=0)
    assert len(tcga_obs) == 1758
    for a, b in [("test", "train"), ("val", "train"), ("test", "val")]:
        assert shared_groups(split, tcga_obs["patient"], a, b) == set()
    normal = (tcga_obs["tumor_normal"] == "normal").groupby(split).mean()
    assert normal.between(0.07, 0.11).all(), normal  # ~9% normals overall
    counts = split.value_counts()
    assert counts["test"] == 173 and counts["val"] == 176 and counts["train"] == 1409


@pytest.mark.realdata
def test_real_tcga_naive_sample_split_leaks_patients(tcga_obs):
    """Why the split is grouped: a sample-level split puts patients on both sides."""
    split = split_groups(tcga_obs, None, "tumor_normal", 0.1, 0.1, seed=0)
    train_patients = set(tcga_obs["patient"][split == "train"])
    leaked = tcga_obs["patient"][split == "test"].isin(train_patients).sum()
    assert (split == "test").sum() == 176
    assert leaked == 26
