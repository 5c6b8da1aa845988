"""The tidy metrics table (medgen.evaluate.tidy) every task's evaluation writes."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from medgen.errors import MedgenInputError
from medgen.evaluate import tidy


def test_melt_whole_split_and_per_unit_rows(tmp_path):
    pooled = pd.DataFrame({"method": ["gan", "pca"], "split": ["test", "test"],
                           "auroc": [0.9, 0.7], "n_normal": [5, 5]})
    per_subject = pd.DataFrame({"method": ["gan", "gan"], "split": ["test", "test"],
                                "subject": ["s1", "s2"], "psnr": [20.5, float("nan")]})
    table = tidy.write([tidy.melt(pooled, "all", ["auroc"]),
                        tidy.melt(per_subject, "subject", ["psnr"], unit="subject")],
                       tmp_path / tidy.FILE)
    assert list(table.columns) == list(tidy.COLUMNS)
    assert table[table["unit"] == "all"].set_index("method")["value"].to_dict() == {
        "gan": 0.9, "pca": 0.7}  # n_normal is not a metric listed: left out
    back = tidy.read(tmp_path / tidy.FILE)
    assert back["unit"].tolist() == ["all", "all", "s1", "s2"]
    assert back["value"].iloc[2] == 20.5 and math.isnan(back["value"].iloc[3])


def test_split_given_for_tables_without_one_and_units_kept_as_text():
    genes = pd.DataFrame({"method": ["ridge"] * 2, "gene": ["7", "TP53"], "mae": [0.1, 0.2]})
    long = tidy.melt(genes, "gene", ["mae"], unit="gene", split="cv")
    assert long["split"].tolist() == ["cv", "cv"] and long["unit"].tolist() == ["7", "TP53"]


def test_a_repeated_row_and_a_wrong_part_are_refused(tmp_path):
    pooled = pd.DataFrame({"method": ["gan"], "split": ["test"], "auroc": [0.9]})
    part = tidy.melt(pooled, "all", ["auroc"])
    with pytest.raises(MedgenInputError, match="repeat a method x split x unit x metric"):
        tidy.write([part, part], tmp_path / "t.tsv")
    assert not (tmp_path / "t.tsv").exists()  # nothing half-written
    with pytest.raises(MedgenInputError, match="expected \\['method'"):
        tidy.write([pooled], tmp_path / "t.tsv")
    with pytest.raises(MedgenInputError, match="unit kind 'voxel'"):
        tidy.melt(pooled, "voxel", ["auroc"])
    with pytest.raises(MedgenInputError, match="lacks the column"):
        tidy.melt(pooled.drop(columns="split"), "all", ["auroc"])


def test_reading_a_file_that_is_not_tidy_names_it(tmp_path):
    path = tmp_path / "wide.tsv"
    path.write_text("method\tauroc\ngan\t0.9\n")
    with pytest.raises(MedgenInputError, match="wide.tsv has columns"):
        tidy.read(path)
    with pytest.raises(MedgenInputError, match="does not exist"):
        tidy.read(tmp_path / "missing.tsv")
