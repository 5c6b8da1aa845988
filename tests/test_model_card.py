"""Model cards (medgen.model_card, `medgen info`): every family's card holds its fields, the
evaluation sets the model beside the baselines, limits follow from the numbers, and a card
is never shown for another model."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from medgen import checkpoint, cli, model_card, planning, registry
from medgen import config as medgen_config
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.provenance import sha256_file


def fake_model(path, family, seed=0):
    """A model.pt of ``family`` as training writes it (its default preset, a data signature,
    provenance with the prepared data's checksum); the weights are a stand-in: a card never
    builds the network."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data_file = path.parent / "train.npz"
    data_file.write_bytes(b"prepared data")
    genes = [f"g{i}" for i in range(30)]
    ckpt = checkpoint.Checkpoint(
        family=family, hparams=registry.presets(family)["default"],
        state={"network": {"w": torch.zeros(2)}},
        data={"genes": genes, "channels": 1, "image_size": 32},
        provenance={"samples": {"train": 120, "val": 12}, "training": {
            "inputs": {str(data_file): sha256_file(data_file)}, "git_revision": "abc123",
            "versions": {"torch": "2.13.0"}, "config": {"training": {"max_epochs": 3}}}},
        seed=seed)
    return checkpoint.save(ckpt, path)


def tidy_table(path, method, task, model_value, baselines):
    """Whole-split test rows of the task's headline metric: the model and ``baselines``
    ({name: value}); a train row that a card must ignore."""
    metric = registry.task(task).metrics[0].name.replace("*", "tumor_normal")
    values = {method: model_value, **baselines}
    rows = pd.DataFrame({"method": list(values), "split": "test", metric: list(values.values())})
    train = pd.DataFrame({"method": [method], "split": ["train"], metric: [0.0]})
    tidy.write([tidy.melt(pd.concat([rows, train]), "all", [metric])], path)
    return metric


@pytest.mark.parametrize("family", registry.names())
def test_the_card_of_every_family_holds_its_fields(tmp_path, family, capsys):
    spec = registry.get(family)
    folder = tmp_path / "models" / family / ("level2" if spec.task == "synthesis" else "")
    model = fake_model(folder / "model.pt", family)
    method = model_card.method_name(family, model)
    higher = registry.task(spec.task).metrics[0].higher_is_better
    good, bad = (0.9, 0.4) if higher else (0.1, 0.6)
    metric = tidy_table(tmp_path / "tidy.tsv", method, spec.task, good,
                        {"mean": bad, "ridge": (good + bad) / 2})
    card = model_card.build(model, [tmp_path / "tidy.tsv"])
    model_card.write(card, folder / model_card.CARD_MD, folder / model_card.CARD_JSON)
    assert card["model"]["family"] == family and card["model"]["task"] == spec.task
    assert card["model"]["paper"] == spec.description
    assert card["model"]["sha256"] == sha256_file(model)
    assert list(card["training"]["inputs"].values()) == [sha256_file(folder / "train.npz")]
    assert card["training"]["samples"] == {"train": 120, "val": 12}
    assert card["data_signature"]["genes"]["n"] == 30  # a long list is counted, not dumped
    assert card["hyperparameters"] == registry.presets(family)["default"]
    head = card["evaluation"]["metrics"][0]
    assert card["evaluation"]["split"] == "test" and head["metric"] == metric
    assert head["model"] == good and head["strongest_baseline"] == "ridge"
    assert head["beaten_by"] == []
    assert card["intended_use"].startswith("Research use")
    assert list(spec.limitations) == card["limitations"] and spec.limitations
    assert str(model) in card["how_to_apply"]
    text = (folder / model_card.CARD_MD).read_text()
    for heading in ("## Training data", "## Data signature", "## Hyperparameters",
                    "## Evaluation on held-out data", "## Intended use", "## Limitations",
                    "## How to apply it"):
        assert heading in text, heading
    assert json.loads((folder / model_card.CARD_JSON).read_text()) == json.loads(
        json.dumps(card, default=str))
    assert cli.main(["info", str(folder)]) == 0  # a folder is read as its model.pt
    assert capsys.readouterr().out == text


def test_a_baseline_that_scores_better_is_a_stated_limit(tmp_path):
    model = fake_model(tmp_path / "fanogan" / "model.pt", "fanogan")
    tidy_table(tmp_path / "tidy.tsv", "fanogan", "anomaly", 0.62,
               {"intensity": 0.84, "mask_fraction": 0.85, "pca": 0.45, "anogan": 0.9})
    card = model_card.build(model, [tmp_path / "tidy.tsv"])
    head = card["evaluation"]["metrics"][0]
    # a model (anogan) is not a baseline; the better baselines are named, best first
    assert head["beaten_by"] == ["mask_fraction", "intensity"]
    assert head["strongest_baseline"] == "mask_fraction"
    assert ("On this run's test split the baseline intensity scored a better auroc than "
            "this model (0.84 against 0.62).") in card["limitations"]


def test_the_generated_samples_table_adds_its_metrics_after_the_headline(tmp_path):
    model = fake_model(tmp_path / "fanogan" / "model.pt", "fanogan")
    tidy_table(tmp_path / "detection.tsv", "fanogan", "anomaly", 0.8, {"pca": 0.7})
    # the synthetic-image evaluation's table: the generator beside simple image generators
    samples = pd.DataFrame({"method": ["fanogan", "noisy_resample"], "split": "test",
                            "c2st_auroc_excess": [0.3, 0.45]})
    tidy.write([tidy.melt(samples, "all", ["c2st_auroc_excess"])], tmp_path / "samples.tsv")
    card = model_card.build(model, [tmp_path / "detection.tsv", tmp_path / "samples.tsv"])
    metrics = {m["metric"]: m for m in card["evaluation"]["metrics"]}
    assert list(metrics)[0] == "auroc"  # the detection headline stays first
    assert metrics["c2st_auroc_excess"]["model"] == 0.3
    assert metrics["c2st_auroc_excess"]["strongest_baseline"] == "noisy_resample"
    assert metrics["c2st_auroc_excess"]["beaten_by"] == []  # lower is better here


def test_a_task_scored_per_subject_reports_the_mean_over_subjects(tmp_path):
    model = fake_model(tmp_path / "context_gan" / "level2" / "model.pt", "context_gan")
    psnr = {"context_gan_level2": [20.0, 22.0], "unet_l1": [21.0, 23.5], "constant": [15, 16]}
    rows = pd.DataFrame([{"method": m, "split": "test", "subject": s, "psnr": v}
                         for m, values in psnr.items() for s, v in zip(("a", "b"), values)])
    tidy.write([tidy.melt(rows, "subject", ["psnr"], unit="subject")], tmp_path / "tidy.tsv")
    head = model_card.build(model, [tmp_path / "tidy.tsv"])["evaluation"]["metrics"][0]
    assert head["metric"] == "psnr" and head["model"] == 21.0
    assert head["beaten_by"] == ["unet_l1"] and head["baseline_value"] == 22.25


def test_replicates_give_mean_interval_and_verdict_and_a_worse_verdict_is_a_limit(tmp_path):
    model = fake_model(tmp_path / "seed0" / "tybalt" / "model.pt", "tybalt")
    tidy_table(tmp_path / "tidy.tsv", "tybalt", "expression", 0.0093, {"pca": 0.0086})
    summary = pd.DataFrame({"split": "test", "metric": "test_mse", "method": ["tybalt", "pca"],
                            "mean": [0.0093, 0.00859], "ci_low": [0.00925, 0.00858],
                            "ci_high": [0.00934, 0.0086]})
    comparisons = pd.DataFrame({
        "split": ["test"], "metric": ["test_mse"], "model": ["tybalt"], "baseline": ["pca"],
        "mean_difference": [0.0007], "ci_low": [0.0006], "ci_high": [0.0008],
        "verdict": ["worse"], "n_replicates": [5]})
    summary.to_csv(tmp_path / "summary.tsv", sep="\t", index=False)
    comparisons.to_csv(tmp_path / "comparisons.tsv", sep="\t", index=False)
    card = model_card.build(model, [tmp_path / "tidy.tsv"], tmp_path / "summary.tsv",
                            tmp_path / "comparisons.tsv")
    (row,) = card["evaluation"]["replicates"]
    assert row["model_ci"] == [0.00925, 0.00934] and row["verdict"] == "worse"
    assert any(text.startswith("Over 5 replicates this model is worse than pca on test "
                               "test_mse") for text in card["limitations"])
    assert "| test_mse | 0.0093 [0.00925, 0.00934] | pca | +0.0007" in model_card.markdown(card)


def test_info_without_a_card_or_with_a_stale_one_reads_the_model_itself(tmp_path, capsys,
                                                                        caplog):
    model = fake_model(tmp_path / "ggan" / "model.pt", "ggan")
    assert cli.main(["info", str(model)]) == 0
    shown = capsys.readouterr().out
    assert ("Not in this card: it was built from the checkpoint alone (no model_card.json "
            "beside it)") in shown
    assert "# Model card: ggan (ggan)" in shown
    # a card written for an earlier model in this folder is not shown for this one
    tidy_table(tmp_path / "tidy.tsv", "ggan", "expression_inference", 0.2, {"ridge": 0.3})
    card = model_card.build(model, [tmp_path / "tidy.tsv"])
    model_card.write(card, model.parent / model_card.CARD_MD, model.parent / model_card.CARD_JSON)
    fake_model(model, "ggan", seed=7)  # retrained in place
    assert cli.main(["info", str(model)]) == 0
    out = capsys.readouterr()
    assert "written for another model file: its sha256 differs" in out.out
    assert "printing what the checkpoint alone says" in caplog.text
    (model.parent / model_card.CARD_JSON).write_text("{not json")
    assert cli.main(["info", str(model)]) == 0
    assert "the model_card.json beside it is unreadable" in capsys.readouterr().out


def test_bad_input_is_named(tmp_path, capsys):
    assert cli.main(["info", str(tmp_path / "missing.pt")]) == 2
    assert "model file" in capsys.readouterr().err
    (tmp_path / "notes.pt").write_text("not a model")
    assert cli.main(["info", str(tmp_path / "notes.pt")]) == 2
    assert "is not a medgen model file" in capsys.readouterr().err
    model = fake_model(tmp_path / "dgex" / "model.pt", "dgex")
    tidy_table(tmp_path / "tidy.tsv", "ggan", "expression_inference", 0.2, {"ridge": 0.3})
    with pytest.raises(MedgenInputError,
                       match=r"tidy.tsv: no rows of method 'dgex'; the table\(s\) evaluate "
                             r"ggan, ridge"):
        model_card.build(model, [tmp_path / "tidy.tsv"])
    with pytest.raises(MedgenInputError, match="absent.tsv does not exist"):
        model_card.build(model, [tmp_path / "absent.tsv"])


def test_every_trained_model_folder_of_the_shipped_configs_gets_a_card():
    datasets = medgen_config.REPO_ROOT / "config" / "datasets"
    expected = {"brats_anomaly.yaml": ("anomaly", ["anogan", "fanogan", "convae"]),
                "brats_synthesis.yaml": ("synthesis", ["context_gan/level1",
                                                       "context_gan/level2"]),
                "tcga_mirna_inference.yaml": ("expression_inference", ["ggan", "dgex"]),
                "tcga_mirna.yaml": ("expression", ["tybalt"])}
    for name, (task, models) in expected.items():
        config = medgen_config.load([datasets / name])
        assert planning.trained_models(config, task) == models, name
