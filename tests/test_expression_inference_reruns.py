"""Reruns of the expression-inference task: new profiles to infer rerun the inference job
alone, not the preparation, the training and the evaluation (config by stage)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.replicates import planned_jobs

from conftest import make_inference_table, run_snakemake


def tiny_config(root: Path, profiles: Path) -> dict:
    return {
        "results_dir": str(root / "results"), "run_name": "tiny",
        "tasks": ["expression_inference"],
        "training": {"max_epochs": 1, "accelerator": "cpu", "progress_bar": False},
        "expression_inference": {
            "families": ["ggan"], "folds": 3,
            "table": {"path": str(root / "table.csv"), "orientation": "samples_as_rows"},
            "gene_sets": {"source": "lists", "landmarks": [f"L{j}" for j in range(6)],
                          "targets": [f"T{j}" for j in range(10)]},
            "infer": {"path": str(profiles)},
        },
    }


@pytest.mark.workflow
def test_new_profiles_to_infer_rerun_only_the_inference(tmp_path):
    frame = make_inference_table(tmp_path / "table.csv")
    frame.iloc[:5, :6].to_csv(tmp_path / "profiles.csv")
    frame.iloc[5:9, :6].to_csv(tmp_path / "new_profiles.csv")
    done = tmp_path / "done.yaml"
    done.write_text(yaml.safe_dump(tiny_config(tmp_path, tmp_path / "profiles.csv")))
    # a completed run without training anything: every output exists and Snakemake's
    # metadata (params, inputs) is recorded as after real jobs (--touch --forceall)
    summary = run_snakemake("--summary", "--configfile", str(done)).stdout
    outputs = [line.split("\t")[0] for line in summary.splitlines()
               if line.startswith(str(tmp_path))]
    assert any(path.endswith("data.h5ad") for path in outputs)
    for path in map(Path, outputs):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    run_snakemake("--touch", "--forceall", "--cores", "1", "--configfile", str(done))

    config = tiny_config(tmp_path, tmp_path / "new_profiles.csv")
    config["expression_inference"]["infer"]["chunk_size"] = 2
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(config))
    out = run_snakemake("-n", "--configfile", str(new)).stdout
    jobs = planned_jobs(out)
    # the run's provenance records the whole config and its input files: it follows too
    assert set(jobs) - {"total"} == {"infer_targets", "provenance", "default"}, out
    assert jobs["infer_targets"] == 1
    # the recorded params were compared (so a preparation that held them would rerun)
    assert "params have changed since last execution:\n        infer_targets" in out
