"""Schema additions (anomaly, models.anogan, models.fanogan) and the dataset configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medgen.config import REPO_ROOT, load, load_schema, validate
from medgen.errors import MedgenInputError
from medgen.tasks.anomaly.prepare import load_split, prepare_images

DATASETS = REPO_ROOT / "config" / "datasets"


def _walk(schema: dict, path: str = ""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}.{key}".lstrip("."), sub
        yield from _walk(sub, f"{path}.{key}")


def test_every_added_key_has_description_and_default():
    schema = load_schema()["properties"]
    for section in ("anomaly", "models"):
        for key, sub in _walk(schema[section], section):
            if key.startswith("models.tybalt"):
                continue
            assert "description" in sub, key
            assert "default" in sub or key.endswith(".params"), key
        assert schema[section]["additionalProperties"] is False


def test_defaults_keep_anomaly_off_and_list_fanogan_alone():
    cfg = validate({})  # the schema's defaults, without config/config.yaml's demo
    assert cfg["tasks"] == [] and cfg["anomaly"]["kind"] == "mni152_demo"
    # f-AnoGAN is the family the task trains once it is listed; AnoGAN only when listed
    assert cfg["anomaly"]["families"] == ["fanogan"]
    assert set(cfg["models"]["anogan"]) == set(cfg["models"]["fanogan"]) == {"preset", "params"}
    assert cfg["models"]["fanogan"]["preset"] == "default"


@pytest.mark.parametrize("name", ["pneumoniamnist", "brats_anomaly"])
def test_dataset_configs_validate(name):
    cfg = load(DATASETS / f"{name}.yaml")  # on config/config.yaml, as the workflow reads it
    # the dataset's list replaces the default config's: anomaly detection alone
    assert cfg["tasks"] == ["anomaly"] and (REPO_ROOT / cfg["anomaly"]["sample_sheet"]).exists()
    assert cfg["anomaly"]["families"] == ["anogan", "fanogan"]
    # the one machine-specific setting is the data path
    assert cfg["anomaly"]["data_root"].startswith("../shared/data/imaging/")


@pytest.mark.parametrize("bad, message", [
    ({"anomaly": {"unit": "voxel"}}, "'anomaly.unit'"),
    ({"anomaly": {"nope": 1}}, "unknown config key 'anomaly.nope'"),
    ({"models": {"fanogan": {"preset": "fast"}}}, "models.fanogan.preset"),
    ({"anomaly": {"lower_percentile": 99.0, "upper_percentile": 1.0}},
     "'anomaly.lower_percentile' is 99.0, not below anomaly.upper_percentile 1.0"),
])
def test_bad_anomaly_config(bad, message):
    with pytest.raises(MedgenInputError, match=message):
        validate(bad)
    with pytest.raises(MedgenInputError, match=message):  # as the experiment CLI resolves it
        load(overrides=bad)


@pytest.mark.parametrize("anomaly, message", [
    ({"image_size": 12, "unit": "patch"},
     r"'anomaly.image_size' is 12; expected a power of two >= 8 \(e.g. 8 or 16\)"),
    ({"kind": "npz2d", "image_size": 28},
     r"'anomaly.image_size' is 28; expected a power of two >= 8 \(e.g. 16 or 32\)"),
    # whole slices are the training images: their side is slice_size
    ({"unit": "slice", "slice_size": 96},
     r"'anomaly.slice_size' is 96; expected a power of two >= 8 \(e.g. 64 or 128\)"),
    ({"image_size": 128, "slice_size": 96, "unit": "patch"},
     r"'anomaly.image_size' is 128, larger than anomaly.slice_size 96; expected "
     r"image_size <= slice_size"),
])
def test_image_sides_the_networks_cannot_train_on_are_refused(anomaly, message):
    with pytest.raises(MedgenInputError, match="config key " + message):
        validate({"anomaly": anomaly})
    with pytest.raises(MedgenInputError, match="config key " + message):
        load(overrides={"anomaly": anomaly})  # on config/config.yaml, as the workflow


@pytest.mark.parametrize("anomaly", [
    {"image_size": 32, "slice_size": 96, "unit": "patch"},  # slices scored by windows
    {"image_size": 64, "slice_size": 64, "unit": "patch"},
    {"image_size": 12, "slice_size": 64, "unit": "slice"},  # image_size unused
    {"kind": "npz2d", "image_size": 32, "slice_size": 12, "unit": "slice"},  # 2D: no slices
])
def test_image_sides_that_train_pass(anomaly):
    validate({"anomaly": anomaly})


def test_mni152_demo_prepares_from_installed_package(tmp_path):
    cfg = validate({"anomaly": {"image_size": 32, "slice_size": 96, "unit": "patch",
                                "max_patches_per_subject": 100}})["anomaly"]
    out = prepare_images(None, cfg, 0, tmp_path)
    train, test = load_split(out["train"]), load_split(out["test"])
    assert train["images"].shape[1:] == (1, 32, 32) and len(train["images"]) == 100
    slabs = {str(s) for s in np.unique(test["subject"])}  # one subject per test slab
    assert len(slabs) >= 3 and slabs == {f"mni152_right_test{k}" for k in range(1, len(slabs) + 1)}
    # the healthy template's val/test slices: half get one synthetic anomaly with its mask
    val = load_split(out["val"])
    for split in (val, test):
        assert abs(split["y"].mean() - 0.5) < 0.05
        assert (split["labels_map"][split["y"] == 1].sum(axis=(1, 2)) > 0).all()
        assert (split["labels_map"][split["y"] == 0] == 0).all()


@pytest.mark.realdata
def test_pneumoniamnist_splits(shared_data, tmp_path):
    cfg = load(DATASETS / "pneumoniamnist.yaml")["anomaly"]
    cfg["data_root"] = str(shared_data / "imaging" / "pneumoniamnist")
    out = prepare_images(DATASETS / "pneumoniamnist_samples.tsv", cfg, 0, tmp_path)
    counts = {s: np.bincount(load_split(p)["y"], minlength=2).tolist() for s, p in out.items()}
    assert counts == {"train": [1214, 0], "val": [135, 389], "test": [234, 390]}
    assert load_split(out["train"])["images"].shape[1:] == (1, 32, 32)


def test_sheet_for_npz_needs_npz_split(tmp_path):
    np.savez(tmp_path / "x.npz", train_images=np.zeros((2, 28, 28), np.uint8),
             train_labels=np.zeros((2, 1), np.uint8))
    (tmp_path / "s.tsv").write_text("subject\tsplit\timage\nx\ttrain\tx.npz\n")
    cfg = validate({"anomaly": {"kind": "npz2d"}})["anomaly"]
    with pytest.raises(MedgenInputError, match="no npz_split"):
        prepare_images(tmp_path / "s.tsv", cfg, 0, tmp_path / "out")
    assert not Path(tmp_path / "out" / "train.npz").exists()


def test_npz_images_normalised_one_by_one_before_padding(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, (28, 28))
    exposures = np.stack([base * 255, (base * 0.5 + 0.3) * 255]).astype(np.uint8)
    np.savez(tmp_path / "x.npz", train_images=exposures, train_labels=np.zeros((2, 1), np.uint8))
    (tmp_path / "s.tsv").write_text("subject\tsplit\timage\tnpz_split\nx\ttrain\tx.npz\ttrain\n")
    cfg = validate({"anomaly": {"kind": "npz2d", "image_size": 32}})["anomaly"]
    assert cfg["normalisation"] == "percentile"
    train = load_split(prepare_images(tmp_path / "s.tsv", cfg, 0, tmp_path / "out")["train"])
    images = train["images"][:, 0, 2:-2, 2:-2]  # the 28 x 28 inside the zero padding
    # the same anatomy at two exposures becomes the same image (up to uint8 rounding)
    np.testing.assert_allclose(images[0], images[1], atol=0.03)
    # percentiles come from the image, not the padding: 1 % of pixels at 0, 1 % at 1
    assert 0.005 < (images <= 0).mean() < 0.03 and 0.005 < (images >= 1).mean() < 0.03
    # trivial scores keep the stored intensities
    np.testing.assert_allclose(train["raw_images"][:, 0, 2:-2, 2:-2], exposures / 255, atol=1e-6)

    cfg["normalisation"] = "ct_window"
    with pytest.raises(MedgenInputError, match="'anomaly.normalisation'"):
        prepare_images(tmp_path / "s.tsv", cfg, 0, tmp_path / "out2")
