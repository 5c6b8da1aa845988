"""Synthetic images from a trained f-AnoGAN's generator (medgen.tasks.anomaly.sampling) and
their evaluation beside simple image generators (medgen.tasks.anomaly.synthetic), and the
workflow rule that runs it."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medgen import checkpoint, provenance, registry
from medgen.atomic import save_npz
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from tests.test_anomaly_models import TINY, TRAINING, blobs

SYNTHETIC = {"n_samples": 0, "baselines": ["noisy_resample", "pca_gaussian", "real_val"]}
ANOMALY = {"unit": "slice"}  # the fixture's units are whole 16 x 16 images


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Training blobs, and val/test splits of 30 normal and 10 anomalous blobs each."""
    folder = tmp_path_factory.mktemp("data")
    save_npz(folder / "train.npz", {"images": blobs(64), "y": np.zeros(64, np.int8)})
    for split, seed in (("val", 1), ("test", 2)):
        images = np.concatenate([blobs(30, seed=seed), blobs(10, seed=seed + 10,
                                                             anomalous=True)])
        save_npz(folder / f"{split}.npz", {"images": images,
                                           "y": np.repeat([0, 1], [30, 10]).astype(np.int8),
                                           "subject": np.array([f"i{i}" for i in range(40)])})
    return folder


@pytest.fixture(scope="module")
def model(data_dir, tmp_path_factory):
    """A tiny f-AnoGAN, one epoch per stage."""
    from medgen.train import train_model

    hp = {**registry.resolve_hparams("fanogan", "default"), **TINY["fanogan"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(train_model("fanogan", data_dir / "train.npz", hp, TRAINING, 0,
                               tmp_path_factory.mktemp("fanogan")))


def test_samples_have_the_shape_units_seed_and_provenance(model, tmp_path):
    from medgen.tasks.anomaly.sampling import read_samples, sample_images

    info = sample_images(model, 12, tmp_path / "s.npz", seed=3)
    images, meta = read_samples(tmp_path / "s.npz")
    assert images.shape == (12, 1, 16, 16) and images.dtype == np.float32
    assert info["shape"] == [12, 1, 16, 16] and info["family"] == "fanogan"
    # tanh output mapped back to the training images' [0, 1]
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0
    with np.load(tmp_path / "s.npz") as archive:
        assert bool(archive["synthetic"]) is True
    assert meta["synthetic"] is True and meta["seed"] == 3 and meta["shape"] == [12, 1, 16, 16]
    assert "[0, 1]" in meta["units"] and meta["model"]["family"] == "fanogan"
    assert meta["model"]["sha256"] == provenance.sha256_file(model)
    assert meta["provenance"]["config"]["n"] == 12
    assert (tmp_path / "s.png").stat().st_size > 0
    sample_images(model, 12, tmp_path / "same.npz", seed=3)
    sample_images(model, 12, tmp_path / "other.npz", seed=4)
    np.testing.assert_array_equal(read_samples(tmp_path / "same.npz")[0], images)
    assert not np.allclose(read_samples(tmp_path / "other.npz")[0], images)


def test_chunked_writing_gives_the_same_images_as_unchunked(model, tmp_path):
    from medgen.tasks.anomaly.sampling import read_samples, sample_images

    sample_images(model, 11, tmp_path / "one.npz", seed=5)
    sample_images(model, 11, tmp_path / "chunks.npz", seed=5, chunk_images=4)
    one, chunks = read_samples(tmp_path / "one.npz"), read_samples(tmp_path / "chunks.npz")
    np.testing.assert_allclose(chunks[0], one[0], rtol=0, atol=1e-6)
    assert one[1]["model"] == chunks[1]["model"]


@pytest.mark.parametrize(("n", "message"), [
    (0, "number of images is 0; expected a whole number > 0"),
    (-3, "number of images is -3"),
    (2.5, "number of images is 2.5"),
])
def test_bad_counts_get_one_clear_error_and_no_file(model, tmp_path, n, message):
    from medgen.tasks.anomaly.sampling import sample_images

    with pytest.raises(MedgenInputError, match=message):
        sample_images(model, n, tmp_path / "s.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("family", "task"), [("convae", "anomaly"), ("tybalt", "expression")])
def test_a_model_of_another_family_or_task_is_refused(tmp_path, family, task):
    from medgen.tasks.anomaly.sampling import sample_images

    other = tmp_path / "model.pt"
    checkpoint.save(checkpoint.Checkpoint(
        family=family, hparams={}, state={"decoder": {"w": torch.zeros(1)}},
        data={"channels": 1, "image_size": 16}), other)
    with pytest.raises(MedgenInputError,
                       match=f"'{family}' model \\(task {task}\\).*'anogan' or 'fanogan'"):
        sample_images(other, 5, tmp_path / "s.npz")
    assert not (tmp_path / "s.npz").exists()


def test_the_sample_command_writes_images_and_refuses_categories(model, tmp_path, capsys):
    from medgen.cli import main
    from medgen.tasks.anomaly.sampling import read_samples

    out = tmp_path / "cli.npz"
    assert main(["sample", model, "--n", "6", "--out", str(out), "--seed", "2"]) == 0
    images, meta = read_samples(out)
    assert images.shape == (6, 1, 16, 16) and meta["seed"] == 2 and meta["synthetic"] is True
    assert main(["sample", model, "--n", "normal=3", "--out", str(tmp_path / "x.npz")]) == 2
    assert "no categories" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


def test_a_model_of_volumes_is_refused(tmp_path):
    from medgen.tasks.anomaly.sampling import sample_images

    volumes = tmp_path / "model.pt"
    checkpoint.save(checkpoint.Checkpoint(
        family="fanogan", hparams={}, state={"generator": {"w": torch.zeros(1)}},
        data={"channels": 1, "image_size": 16, "spatial_dims": 3}), volumes)
    with pytest.raises(MedgenInputError, match="3-D images; .* 2-D"):
        sample_images(volumes, 5, tmp_path / "s.npz")
    assert not (tmp_path / "s.npz").exists()


# --- the evaluation ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def evaluated(model, data_dir, tmp_path_factory):
    from medgen.tasks.anomaly.synthetic import evaluate_synthetic_images

    root = tmp_path_factory.mktemp("synthetic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 200 draws from 64 training images: the noisy copies cover nearly all of them
        table = evaluate_synthetic_images(data_dir, data_dir, model,
                                          {**SYNTHETIC, "n_samples": 200}, ANOMALY, 0,
                                          root / "out")
    return root / "out", table


def test_evaluation_writes_tables_samples_and_figures(evaluated):
    out, table = evaluated
    methods = ["fanogan", "noisy_resample", "pca_gaussian", "real_val"]
    assert list(dict.fromkeys(table["method"])) == methods
    written = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert set(written["method"]) == set(methods) and set(written["category"]) == {"all"}
    for method in methods:
        metrics = set(written.loc[written["method"] == method, "metric"])
        assert {"precision", "recall", "density", "coverage", "c2st_auroc", "mmd2",
                "intensity_wasserstein", "wasserstein_mean", "dcr_synthetic_median",
                "membership_auroc"} <= metrics, method
    assert written["value"].notna().all()
    tidy_table = tidy.read(out / tidy.FILE)
    assert set(tidy_table["split"]) == {"test"} and set(tidy_table["method"]) == set(methods)
    with np.load(out / "samples.npz") as archive:
        assert archive["images"].shape == (200, 1, 16, 16)
    assert json.loads((out / "samples.json").read_text())["synthetic"] is True
    for name in ("grid.png", "pca.png", "samples.png"):
        assert (out / name).stat().st_size > 0, name


def test_noisy_copies_leak_membership_more_than_the_pca_gaussian(evaluated):
    _, table = evaluated
    value = table.set_index(["method", "metric"])["value"]
    assert value["noisy_resample", "membership_auroc"] > value["pca_gaussian",
                                                                "membership_auroc"]
    assert value["noisy_resample", "dcr_synthetic_median"] < value["pca_gaussian",
                                                                   "dcr_synthetic_median"]
    # real validation blobs are as far from training as the held-out test blobs are
    assert abs(value["real_val", "membership_auroc"] - 0.5) < 0.25


def test_held_out_slices_are_cut_into_normal_patches_like_the_training_units():
    from medgen.tasks.anomaly.synthetic import normal_units

    images = np.ones((3, 1, 32, 32), np.float32)
    labels = np.zeros((3, 32, 32), np.uint8)
    labels[0, :8, :8] = 1  # one lesion in the first (normal-labelled) slice's corner
    data = {"images": images, "y": np.array([0, 0, 1], np.int8),
            "masks": np.ones((3, 32, 32), np.uint8), "labels_map": labels,
            "subject": np.array(["a", "a", "b"])}
    patch = {"unit": "patch", "image_size": 16, "patch_stride": 16,
             "patch_min_mask_fraction": 0.5, "max_patches_per_subject": 100}
    units = normal_units(data, patch, 16, 0, "test.npz")
    # the anomalous slice is left out, and the patch with the lesion
    assert units.shape == (4 + 3, 1, 16, 16)
    with pytest.raises(MedgenInputError, match="test.npz: images of side 32, the model's "
                                               "units 16"):
        normal_units(data, {"unit": "slice"}, 16, 0, "test.npz")


def test_an_unknown_baseline_and_too_few_normals_are_refused(model, data_dir, tmp_path):
    from medgen.tasks.anomaly.synthetic import evaluate_synthetic_images

    with pytest.raises(MedgenInputError, match=r"synthetic.baselines' names \['gaussian'\]"):
        evaluate_synthetic_images(data_dir, data_dir, model,
                                  {**SYNTHETIC, "baselines": ["gaussian"]}, ANOMALY, 0,
                                  tmp_path / "a")
    few = tmp_path / "few"
    few.mkdir()
    save_npz(few / "test.npz", {"images": blobs(5), "y": np.zeros(5, np.int8)})
    with pytest.raises(MedgenInputError, match="5 normal .* at least 10"):
        evaluate_synthetic_images(data_dir, few, model, SYNTHETIC, ANOMALY, 0, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.workflow
@pytest.mark.parametrize("enabled", [True, False])
def test_the_rule_is_planned_only_when_enabled(tmp_path, enabled):
    from tests.test_workflow import snakemake, write_config

    config = write_config(tmp_path, results_dir=str(tmp_path / "results"),
                          cache_dir=str(tmp_path / "cache"), tasks=["anomaly"],
                          anomaly={"evaluation": {"synthetic": {"enabled": enabled}}},
                          replicates={"seeds": [0, 1]})
    plan = snakemake("-n", "--cores", "1", "--configfile", str(config)).stdout
    jobs = re.findall(r"^rule (\w+):", plan, re.MULTILINE)
    assert "evaluate_anomaly" in jobs
    assert jobs.count("evaluate_synthetic_images") == (2 if enabled else 0), plan
    # the replicates' aggregation compares the generated images too, per seed
    aggregate = plan.split("rule aggregate_replicates:")[1].split("\n\n")[0]
    assert ("seed1/anomaly/synthetic/fanogan/metrics_tidy.tsv" in aggregate) == enabled, (
        aggregate)


def test_apply_mode_samples_a_generator_and_refuses_a_model_without_one(model, tmp_path):
    from medgen import config as medgen_config
    from medgen.apply import apply_model, check_apply_config
    from medgen.tasks.anomaly.sampling import read_samples, sample_images

    config = medgen_config.load(overrides={
        "tasks": ["anomaly"], "seed": 2, "apply": {"activate": True, "model": model},
        # no sample sheet: sampling needs no new images
        "anomaly": {"sampling": {"n_samples": 6}}})
    assert check_apply_config(config) == "anomaly"
    out = apply_model(model, config, tmp_path / "apply")
    assert out == tmp_path / "apply" / "samples.npz"
    images, meta = read_samples(out)
    assert images.shape == (6, 1, 16, 16) and meta["synthetic"] and meta["seed"] == 2
    sample_images(model, 6, tmp_path / "direct.npz", seed=2)
    np.testing.assert_array_equal(images, read_samples(tmp_path / "direct.npz")[0])
    convae = tmp_path / "convae" / "model.pt"
    checkpoint.save(checkpoint.Checkpoint(
        family="convae", hparams={}, state={"network": {"w": torch.zeros(1)}},
        data={"channels": 1, "image_size": 16}), convae)
    config["apply"]["model"] = str(convae)
    with pytest.raises(MedgenInputError, match="'anomaly.sampling.n_samples' is set, but .* "
                                               "is a convae model, which does not generate"):
        check_apply_config(config)


def test_the_sample_command_never_overwrites_the_model_card_and_checks_its_options(
        model, tmp_path, capsys):
    from medgen.cli import main

    # the images' JSON sidecar of model_card.npz would be the model's card
    out = Path(model).parent / "model_card.npz"
    assert main(["sample", model, "--n", "4", "--out", str(out)]) == 2
    assert "would overwrite" in capsys.readouterr().err and not out.exists()
    assert main(["sample", model, "--n", "4", "--out", str(tmp_path / "x.npz"), "--latent",
                 "aggregate_posterior"]) == 2
    assert "options of tybalt models" in capsys.readouterr().err
    assert main(["sample", model, "--n", "4", "--out", str(tmp_path / "x.h5ad")]) == 2
    assert "must end .npz" in capsys.readouterr().err
    assert main(["sample", model, "--n", str(10**12), "--out", str(tmp_path / "x.npz")]) == 2
    assert "at most 10,000,000" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_sigterm_mid_sampling_leaves_no_partial_file(model, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "many.npz"
    process = subprocess.Popen([sys.executable, "-m", "medgen.cli", "sample", model, "--n",
                                "2000000", "--out", str(out)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".many.npz.*")) and time.monotonic() < deadline:
        time.sleep(0.2)  # until the partial file exists
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(tmp_path.iterdir())
