"""``medgen validate`` reads the sample sheets of the tasks in ``tasks`` as the workflow
plans them."""

from __future__ import annotations

import pytest
import yaml

from medgen.cli import main
from tests.helpers.synthesis_data import write_subjects


def _config(path, sections: dict):
    path.write_text(yaml.safe_dump(sections))
    return str(path)


def _anomaly(sheet) -> dict:
    return {"tasks": ["anomaly"],
            "anomaly": {"kind": "volumes", "sample_sheet": str(sheet), "modalities": ["t2"],
                        "data_root": None}}


def _synthesis(sheet) -> dict:
    return {"tasks": ["synthesis"],
            "synthesis": {"families": ["context_gan"], "sample_sheet": str(sheet),
                          "data_root": None, "sources": ["t2"], "target": "flair",
                          "validation_subject": "s2"}}


@pytest.mark.parametrize("sections", [_anomaly, _synthesis])
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


def test_validate_leaves_sections_of_unlisted_tasks_alone(tmp_path, capsys):
    # sheets that do not exist, in sections whose tasks are not in tasks: nothing to read
    missing = str(tmp_path / "missing.tsv")
    sections = {**_anomaly(missing), **_synthesis(missing), "tasks": ["expression"]}
    config = _config(tmp_path / "c.yaml", sections)
    assert main(["validate", config]) == 0, capsys.readouterr().err
    # the same sections, their tasks listed: the missing sheet is read and refused
    for task in ("anomaly", "synthesis"):
        listed = _config(tmp_path / f"{task}.yaml", {**sections, "tasks": [task]})
        assert main(["validate", listed]) == 2
        err = capsys.readouterr().err
        assert f"invalid {task} sample sheet: " in err and "missing.tsv" in err, err


def test_validate_refuses_an_empty_anomaly_sheet_key(tmp_path, capsys):
    # the demo writes its own sheet; other kinds need one before anything is planned
    config = _config(tmp_path / "c.yaml", {"tasks": ["anomaly"],
                                           "anomaly": {"kind": "volumes", "sample_sheet": None}})
    assert main(["validate", config]) == 2
    assert "config key 'anomaly.sample_sheet' is empty, but anomaly.kind is 'volumes'" in (
        capsys.readouterr().err)


def test_validate_refuses_an_old_config_naming_the_new_key(tmp_path, capsys):
    config = _config(tmp_path / "c.yaml", {"imaging": {"activate": True, "kind": "volumes"}})
    assert main(["validate", config]) == 2
    err = capsys.readouterr().err
    assert "config key 'imaging' is now 'anomaly'" in err, err
    assert err.count("\n") == 1  # one message, no traceback


@pytest.mark.parametrize("sections, no_train", [
    (_anomaly, ("val", "val", "test", "test")),
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
