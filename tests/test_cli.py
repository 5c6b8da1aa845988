"""``medgen validate`` reads the active sections' sample sheets as the workflow plans them."""

from __future__ import annotations

import pytest
import yaml

from medgen.cli import main
from tests.helpers.synthesis_data import write_subjects


def _config(path, sections: dict):
    path.write_text(yaml.safe_dump(sections))
    return str(path)


def _imaging(sheet) -> dict:
    return {"imaging": {"activate": True, "kind": "volumes", "sample_sheet": str(sheet),
                        "modalities": ["t2"], "data_root": None}}


def _synthesis(sheet) -> dict:
    return {"imaging": {"activate": False},
            "synthesis": {"activate": True, "sample_sheet": str(sheet), "data_root": None,
                          "sources": ["t2"], "target": "flair", "validation_subject": "s2"},
            "models": {"context_gan": {"activate": True}}}


@pytest.mark.parametrize("sections", [_imaging, _synthesis])
def test_validate_reads_the_sample_sheet(tmp_path, capsys, sections):
    sheet = write_subjects(tmp_path / "raw")
    good = _config(tmp_path / "good.yaml", sections(sheet))
    assert main(["validate", good]) == 0
    assert capsys.readouterr().out.strip() == f"{good}: valid"

    (tmp_path / "raw" / "s1_t2.nii.gz").unlink()  # a file the sheet names is gone
    assert main(["validate", good]) == 2
    err = capsys.readouterr().err
    assert f"sample sheet {sheet}, line 3: file in column 't2' does not exist" in err, err
    assert err.count("\n") == 1  # one message, no traceback


def test_validate_refuses_an_empty_synthesis_sheet_key(tmp_path, capsys):
    config = _config(tmp_path / "c.yaml", _synthesis(""))
    assert main(["validate", config]) == 2
    assert "config key 'synthesis.sample_sheet' is empty" in capsys.readouterr().err


def test_validate_leaves_inactive_sections_alone(tmp_path, capsys):
    # a sheet that does not exist, in a section that is switched off: nothing to read
    config = _config(tmp_path / "c.yaml", {
        "imaging": {"activate": False, "kind": "volumes",
                    "sample_sheet": str(tmp_path / "missing.tsv")}})
    assert main(["validate", config]) == 0, capsys.readouterr().err


def test_validate_refuses_an_empty_imaging_sheet_key(tmp_path, capsys):
    # the demo writes its own sheet; other kinds need one before anything is planned
    config = _config(tmp_path / "c.yaml", {"imaging": {"activate": True, "kind": "volumes",
                                                       "sample_sheet": None}})
    assert main(["validate", config]) == 2
    assert "config key 'imaging.sample_sheet' is empty, but imaging.kind is 'volumes'" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("sections, no_train", [
    (_imaging, ("val", "val", "test", "test")),
    (_synthesis, ("test", "test", "train", "test")),  # s2, the one trainee, validates
])
def test_validate_refuses_a_sheet_without_training_or_test_subjects(tmp_path, capsys, sections,
                                                                      no_train):
    sheet = write_subjects(tmp_path / "raw", splits=("train", "train", "train", "val"))
    config = _config(tmp_path / "c.yaml", sections(sheet))
    assert main(["validate", config]) == 2
    assert f"sample sheet {sheet} has no subject in split 'test'" in capsys.readouterr().err
    sheet = write_subjects(tmp_path / "raw2", splits=no_train)
    config = _config(tmp_path / "c2.yaml", sections(sheet))
    assert main(["validate", config]) == 2
    assert f"sample sheet {sheet} has no subject in split 'train'" in capsys.readouterr().err
