"""AnoGAN / f-AnoGAN / baselines: presets, training with resume, batched scoring, metrics."""

from __future__ import annotations

import csv
import json
import logging
import warnings

import numpy as np
import pytest
import torch

from medgen import registry
from medgen.atomic import save_npz
from medgen.checkpoint import load as load_checkpoint
from medgen.config import load_schema, validate
from medgen.errors import MedgenInputError
from medgen.models.anogan.module import map_latents
from medgen.nn.dcgan import Discriminator, Generator
from medgen.tasks.anomaly.evaluate import evaluate_anomaly
from medgen.tasks.anomaly.inference import (
    SLIDING_OVERLAP,
    WINDOW_BLEND,
    run_scorer,
    score_anomalies,
    score_splits,
)
from medgen.tasks.anomaly.metrics import (
    best_dice_threshold,
    calibrate_threshold,
    covariate_deviations,
    dice_at,
    image_metrics,
    pixel_metrics,
    sensitivity_specificity,
)
from medgen.tasks.anomaly.outputs import read_scores
from medgen.tasks.anomaly.scorers import fit_pca, load_scorer
from medgen.train import train_model

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": 1,
            "progress_bar": False}
TINY = {
    "anogan": {"latent_dim": 8, "generator_channels": 8, "discriminator_channels": 8,
               "batch_size": 16, "score_steps": 10, "score_batch_size": 32},
    "fanogan": {"latent_dim": 8, "channels_base": 8, "batch_size": 16, "n_critic": 2,
                "score_batch_size": 32},
}


def blobs(n: int, size: int = 16, seed: int = 0, anomalous: bool = False) -> np.ndarray:
    """Gaussian blobs in [0, 1]; anomalous ones carry a bright square (synthetic fixture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centres = rng.uniform(5, size - 5, (n, 2))
    images = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 12)
    if anomalous:
        images[:, 2:6, 2:6] = 1.0
    return images[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    save_npz(folder / "train.npz", {"images": blobs(64), "y": np.zeros(64, np.int8)})
    test = np.concatenate([blobs(20, seed=1), blobs(20, seed=2, anomalous=True)])
    y = np.repeat([0, 1], 20).astype(np.int8)
    for split in ("val", "test"):
        save_npz(folder / f"{split}.npz", {"images": test, "y": y,
                                           "subject": np.array([f"i{i}" for i in range(40)]),
                                           "index": np.arange(40)})
    return folder


@pytest.mark.parametrize("family", ["anogan", "fanogan"])
def test_presets_and_overrides(family):
    for preset in ("paper", "default"):
        hp = registry.resolve_hparams(family, preset)
        assert all(isinstance(v, (int, float, bool, str)) for v in hp.values())
    with pytest.raises(MedgenInputError, match=f"models.{family}.params.nope"):
        registry.resolve_hparams(family, "default", {"nope": 1})
    with pytest.raises(MedgenInputError, match="expected int"):
        registry.resolve_hparams(family, "default", {"latent_dim": "big"})


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_generator_upsampling_modes_draw_the_same_shape(spatial_dims):
    z = torch.randn(2, 8)
    shapes = {mode: Generator(8, 1, 16, 4, spatial_dims, mode)(z).shape
              for mode in ("transposed", "nearest")}
    assert shapes["transposed"] == shapes["nearest"] == (2, 1, *[16] * spatial_dims)
    nearest = Generator(8, 1, 16, 4, spatial_dims, "nearest")
    assert not any(isinstance(m, torch.nn.modules.conv._ConvTransposeNd)
                   for m in list(nearest.net)[3:])  # only the 1 -> 4 projection transposes
    with pytest.raises(ValueError, match="upsampling"):
        Generator(8, 1, 16, 4, spatial_dims, "bilinear")


def test_fanogan_upsampling_is_checked_with_the_config():
    from medgen.models.fanogan import UPSAMPLING, check_hparams
    from medgen.nn import dcgan

    assert UPSAMPLING == dcgan.UPSAMPLING  # spelt out torch-free in the family module
    default = registry.resolve_hparams("fanogan", "default")
    check_hparams({**default, "upsampling": "nearest"})
    with pytest.raises(MedgenInputError, match="models.fanogan.params.upsampling.*'cubic'"):
        check_hparams({**default, "upsampling": "cubic"})
    with pytest.raises(MedgenInputError, match="residual_blocks"):
        check_hparams({**registry.resolve_hparams("fanogan", "paper"),
                       "upsampling": "transposed"})


def test_fanogan_checkpoint_without_upsampling_builds_transposed_generator():
    from medgen.models.fanogan.module import build_networks

    hp = {**registry.resolve_hparams("fanogan", "default"), **TINY["fanogan"]}
    del hp["upsampling"]  # a model.pt written before the key existed
    generator = build_networks(hp, 1, 16)[0]
    assert isinstance(list(generator.net)[3], torch.nn.modules.conv._ConvTransposeNd)


def test_anogan_paper_preset_is_faithful():
    hp = registry.resolve_hparams("anogan", "paper")
    assert (hp["score_steps"], hp["score_lambda"]) == (500, 0.1)
    assert registry.resolve_hparams("fanogan", "paper")["kappa"] == 1.0


@pytest.mark.parametrize("family", ["anogan", "fanogan"])
def test_train_resume_and_score(family, data_dir, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    hp = {**registry.resolve_hparams(family, "default"), **TINY[family]}
    out = tmp_path / family
    path = train_model(family, data_dir / "train.npz", hp, TRAINING, 0, out)
    saved = load_checkpoint(path)
    assert saved.family == family and saved.data["image_size"] == 16
    # the log names each stage, then has one line per epoch (no bar: progress_bar false)
    stage = "stage 'gan', " if family == "fanogan" else ""  # anogan has one, unnamed
    assert f"{family}: {stage}max_epochs=1, seed 0" in caplog.text
    assert "epoch 1/" in caplog.text
    # a rerun with more epochs resumes from last.ckpt instead of starting again
    ckpt_dir = out / ("gan" if family == "fanogan" else "") / "checkpoints"
    assert (ckpt_dir / "last.ckpt").exists()
    train_model(family, data_dir / "train.npz", hp, {**TRAINING, "max_epochs": 2}, 0, out)
    metrics = (ckpt_dir.parent / "metrics.csv").read_text().splitlines()
    epochs = {row["epoch"] for row in csv.DictReader(metrics)}
    # epoch 0 came from the checkpoint, epoch 1 was trained; metrics.csv keeps both
    assert epochs == {"0", "1"}
    ckpt = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1
    if family == "fanogan":  # the encoder stage left G and the critic untouched
        after = load_checkpoint(path).state
        gan = torch.load(out / "gan" / "checkpoints" / "last.ckpt", weights_only=True)
        for key, value in after["generator"].items():
            torch.testing.assert_close(value, gan["state_dict"][f"generator.{key}"])
    tsv = score_anomalies(family, path, data_dir / "test.npz", tmp_path / "scores", "test")
    scores = read_scores(tsv)
    assert len(scores["score"]) == 40 and np.isfinite(scores["score"]).all()
    assert len(list((tmp_path / "scores" / "residuals_test").glob("*.png"))) == 40
    if family == "anogan":
        # not a terminal: no bar, one log line per batch of the mapping (2 batches)
        assert "latent mapping" not in capsys.readouterr().err
        assert "AnoGAN latent mapping: batch 2/2 done" in caplog.text
        # larger images go through sliding windows: one bar over windows, the scorer's off
        scorer = load_scorer(path)
        scorer.progress = True  # forced on: the bar runs to its end, 2 batches x 10 steps
        scorer.score(blobs(40))
        assert "20/20" in capsys.readouterr().err
        caplog.clear()
        run_scorer(scorer, {"images": np.tile(blobs(2), (1, 1, 2, 2))}, family)
        assert "AnoGAN latent mapping" not in capsys.readouterr().err + caplog.text
        assert scorer.progress is True


def test_fanogan_encoder_stage_does_not_warn_about_its_frozen_networks(data_dir, tmp_path):
    # izi_f keeps G and the critic in eval mode on purpose: Lightning's warning is noise
    hp = {**registry.resolve_hparams("fanogan", "default"), **TINY["fanogan"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_model("fanogan", data_dir / "train.npz", hp, TRAINING, 0, tmp_path)
    assert not [w for w in caught if "in eval mode" in str(w.message)]


def test_batched_latent_mapping_equals_one_at_a_time():
    torch.manual_seed(0)
    g, d = Generator(8, 1, 16, 8), Discriminator(1, 16, 8, 0.2)
    x = torch.as_tensor(blobs(6)) * 2 - 1
    batched = map_latents(g, d, x, steps=30, lam=0.1, lr=0.05, seed=0)
    single = [map_latents(g, d, x[i:i + 1], steps=30, lam=0.1, lr=0.05, seed=i).score
              for i in range(6)]
    torch.testing.assert_close(batched.score, torch.cat(single), rtol=1e-4, atol=1e-3)
    assert (batched.steps == 30).all()
    # the loss falls during mapping
    start = map_latents(g, d, x, steps=0, seed=0).score
    assert (batched.score < start).all()


def test_early_stop_drops_converged_images():
    torch.manual_seed(0)
    g, d = Generator(8, 1, 16, 8), Discriminator(1, 16, 8, 0.2)
    x = torch.as_tensor(blobs(8)) * 2 - 1
    full = map_latents(g, d, x, steps=200, lr=0.05)
    early = map_latents(g, d, x, steps=200, lr=0.05, tol=0.01, check_every=10)
    assert early.steps.max() < 200
    assert torch.allclose(early.score, full.score, rtol=0.1)


def test_pca_baseline_and_trivial_scores(data_dir, tmp_path):
    pca = fit_pca(data_dir / "train.npz", 5, tmp_path / "pca.npz")
    tsv = score_anomalies("pca", pca, data_dir / "test.npz", tmp_path / "pca", "test")
    scores = read_scores(tsv)
    assert image_metrics(scores["score"], scores["y"])["auroc"] > 0.9  # square is off-manifold
    tsv = score_anomalies("brightness", None, data_dir / "test.npz", tmp_path / "b", "test")
    assert image_metrics(*[read_scores(tsv)[k] for k in ("score", "y")])["auroc"] > 0.9
    with pytest.raises(MedgenInputError, match="not a medgen model file"):
        torch.save({"family": "vae"}, tmp_path / "other.pt")
        load_scorer(tmp_path / "other.pt")


def test_convae_baseline_takes_its_code_width_from_the_config(data_dir, tmp_path):
    resolved = validate({"anomaly": {"evaluation": {"convae_bottleneck": 5}}})
    evaluation = resolved["anomaly"]["evaluation"]
    hp = {**registry.family_hparams("convae", resolved), "channels_base": 4, "batch_size": 32}
    path = train_model("convae", data_dir / "train.npz", hp, TRAINING, 0, tmp_path)
    code = load_scorer(path).model.encoder[-1]
    assert (code.out_features, evaluation["convae_epochs"]) == (5, 20)  # unset: default
    with pytest.raises(MedgenInputError, match="anomaly.evaluation.convae_bottleneck"):
        validate({"anomaly": {"evaluation": {"convae_bottleneck": 0}}})


def test_inference_device_follows_training_accelerator(monkeypatch):
    from medgen.train import inference_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert inference_device("cpu") == inference_device("auto") == "cpu"
    with pytest.raises(MedgenInputError, match="training.accelerator.*no CUDA device"):
        inference_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert inference_device("auto") == inference_device("gpu") == "cuda"
    assert inference_device("cpu") == "cpu"


def test_scoring_defaults_of_the_functions_equal_the_schema_defaults():
    # the workflow takes the schema's, direct callers the keyword defaults: one value each
    scoring = load_schema()["properties"]["anomaly"]["properties"]["scoring"]["properties"]
    assert scoring["window_blend"]["default"] == WINDOW_BLEND
    assert scoring["window_overlap"]["default"] == SLIDING_OVERLAP


def test_score_splits_loads_networks_on_the_given_device(data_dir, tmp_path, monkeypatch):
    hp = {**registry.resolve_hparams("fanogan", "default"), **TINY["fanogan"]}
    path = train_model("fanogan", data_dir / "train.npz", hp, TRAINING, 0,
                               tmp_path / "fanogan")
    asked = []
    real_load_scorer = load_scorer

    def recording_load_scorer(model_path, device="cpu", data=None):
        asked.append(device)
        return real_load_scorer(model_path, "cpu", data)  # no GPU here: record, run on CPU

    # scoring looks the loader up in its own namespace
    monkeypatch.setattr("medgen.tasks.anomaly.inference.load_scorer", recording_load_scorer)
    scoring = {"window_overlap": 0.5, "window_overlap_by_method": {"anogan": 0.0},
               "residual": "abs", "slice_score": "mean", "window_blend": "constant"}
    written = score_splits("fanogan", path, data_dir, tmp_path / "scores", scoring,
                           "npz2d", device="cuda")
    assert asked == ["cuda", "cuda"] and set(written) == {"val", "test"}


def test_threshold_calibration():
    normal = np.arange(100, dtype=float)
    threshold = calibrate_threshold(normal, 0.05)
    assert (normal > threshold).mean() <= 0.05
    result = sensitivity_specificity(np.array([1.0, 200, 300, 50]), np.array([0, 1, 1, 0]),
                                     threshold)
    assert result["sensitivity"] == 1.0 and result["specificity"] == 1.0
    with pytest.raises(MedgenInputError, match="held-out normal"):
        calibrate_threshold(np.array([]), 0.05)


def test_pixel_metrics():
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, :2, :2] = 1
    masks = np.ones_like(labels)
    perfect = labels.astype(np.float32)
    assert pixel_metrics(perfect, labels, masks, threshold=0.5) == {
        "pixel_auroc": 1.0, "pixel_auprc": 1.0, "dice_at_val_threshold": 1.0,
        "best_dice_upper_bound": 1.0}
    # a threshold chosen elsewhere (val) can miss: every pixel flagged
    assert pixel_metrics(perfect, labels, masks, -1.0)["dice_at_val_threshold"] == 0.4
    assert np.isnan(pixel_metrics(perfect, labels, masks)["dice_at_val_threshold"])
    threshold, dice = best_dice_threshold(perfect * 0.7 + 0.1, labels, masks)
    assert dice == 1.0 and dice_at(perfect * 0.7 + 0.1, labels, masks, threshold) == 1.0
    inverted = 1 - perfect
    assert pixel_metrics(inverted, labels, masks)["best_dice_upper_bound"] == pytest.approx(0.4)
    masks[0, :2, :2] = 0  # labels outside the mask do not count
    assert np.isnan(pixel_metrics(perfect, labels, masks)["pixel_auprc"])


def test_pixel_metrics_per_subject_in_the_report(tmp_path):
    # subject "bright": the lesion is the brightest tissue; "dark": normal tissue is brighter
    images = np.full((4, 1, 8, 8), 0.5, np.float32)
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[:, 2:4, 2:4] = 1
    images[:2, 0, 2:4, 2:4] = 0.9
    images[2:, 0, 2:4, 2:4] = 0.2
    images[2:, 0, 6:, 6:] = 0.9
    data = {"images": images, "masks": np.ones((4, 8, 8), np.uint8), "labels_map": labels,
            "y": np.array([0, 1, 0, 1], np.int8), "index": np.arange(4),
            "subject": np.array(["bright", "bright", "dark", "dark"])}
    for split in ("val", "test"):
        save_npz(tmp_path / "data" / f"{split}.npz", data)
        score_anomalies("intensity", None, tmp_path / "data" / f"{split}.npz",
                        tmp_path / "intensity", split)
    anomaly = validate({"anomaly": {"evaluation": {"pixel_level": True}}})["anomaly"]
    evaluate_anomaly({"intensity": tmp_path / "intensity"}, tmp_path / "data", anomaly,
                     tmp_path / "report")
    rows = list(csv.DictReader((tmp_path / "report" / "pixel_by_subject.tsv").open(),
                               delimiter="\t"))
    test = {r["subject"]: float(r["pixel_auprc"]) for r in rows if r["split"] == "test"}
    pooled = next(r for r in csv.DictReader((tmp_path / "report" / "metrics.tsv").open(),
                                            delimiter="\t") if r["split"] == "test")
    assert test["bright"] == 1.0 and test["dark"] < 0.5
    assert test["dark"] < float(pooled["pixel_auprc"]) < test["bright"]
    assert float(pooled["pixel_rho_intensity"]) == 1.0  # the intensity map is the image


def test_median_filter_removes_isolated_bright_pixels_in_the_report(tmp_path):
    # a rounded lesion (4 x 4 less its corners, which a 3 x 3 median keeps whole) and
    # single bright pixels elsewhere, which it removes
    images = np.full((2, 1, 12, 12), 0.5, np.float32)
    labels = np.zeros((2, 12, 12), np.uint8)
    labels[:, 2:6, 2:6] = 1
    labels[:, [2, 2, 5, 5], [2, 5, 2, 5]] = 0
    images[:, 0][labels > 0] = 0.9
    images[:, 0, [8, 10, 9], [9, 3, 11]] = 1.0
    data = {"images": images, "masks": np.ones((2, 12, 12), np.uint8), "labels_map": labels,
            "y": np.array([0, 1], np.int8), "index": np.arange(2),
            "subject": np.array(["a", "b"])}
    for split in ("val", "test"):
        save_npz(tmp_path / "data" / f"{split}.npz", data)
        score_anomalies("intensity", None, tmp_path / "data" / f"{split}.npz",
                        tmp_path / "intensity", split)
    auprc = {}
    for size in (0, 3):
        anomaly = validate({"anomaly": {"evaluation": {
            "pixel_level": True, "median_filter": size}}})["anomaly"]
        table = evaluate_anomaly({"intensity": tmp_path / "intensity"}, tmp_path / "data",
                                 anomaly, tmp_path / f"report{size}")
        rows = list(csv.DictReader(table.read_text().splitlines(), delimiter="\t"))
        auprc[size] = float(next(r for r in rows if r["split"] == "test")["pixel_auprc"])
    assert auprc[0] < 0.9 and auprc[3] == 1.0
    # the saved maps stay raw: filtering happens in the metrics only
    raw = np.load(tmp_path / "intensity" / "maps_test.npz")["residual_map"]
    assert raw[0, 8, 9] == 1.0


def test_median_filter_candidates_are_chosen_on_val_not_test(tmp_path):
    # val: the lesions are single bright pixels, which any median filter erases (raw maps
    # win on val); test: the rounded lesion and isolated bright noise of the test above (a
    # 3 x 3 filter would win on test). The choice must follow val.
    def split(single_pixel_lesions):
        images = np.full((2, 1, 12, 12), 0.5, np.float32)
        labels = np.zeros((2, 12, 12), np.uint8)
        if single_pixel_lesions:
            labels[:, [2, 6, 9], [3, 8, 2]] = 1
        else:
            labels[:, 2:6, 2:6] = 1
            labels[:, [2, 2, 5, 5], [2, 5, 2, 5]] = 0
            images[:, 0, [8, 10, 9], [9, 3, 11]] = 1.0
        images[:, 0][labels > 0] = 0.9
        return {"images": images, "masks": np.ones((2, 12, 12), np.uint8),
                "labels_map": labels, "y": np.array([0, 1], np.int8), "index": np.arange(2),
                "subject": np.array(["a", "b"])}

    for name, single in (("val", True), ("test", False)):
        save_npz(tmp_path / "data" / f"{name}.npz", split(single))
        score_anomalies("intensity", None, tmp_path / "data" / f"{name}.npz",
                        tmp_path / "intensity", name)
    anomaly = validate({"anomaly": {"evaluation": {
        "pixel_level": True, "median_filter": [0, 3]}}})["anomaly"]
    table = evaluate_anomaly({"intensity": tmp_path / "intensity"}, tmp_path / "data",
                             anomaly, tmp_path / "report")
    test = next(r for r in csv.DictReader(table.read_text().splitlines(), delimiter="\t")
                if r["split"] == "test")
    point = json.loads((tmp_path / "report" / "operating_points.json").read_text())["intensity"]
    assert point["median_filter"] == 0 and point["median_filter_setting"] == [0, 3]
    assert point["median_filter_val_pixel_auprc"]["0"] == 1.0
    assert point["median_filter_val_pixel_auprc"]["3"] < 1.0
    assert test["median_filter"] == "0" and float(test["pixel_auprc"]) < 0.9
    notes = (tmp_path / "report" / "notes.txt").read_text()
    assert "Median filter chosen per method among [0, 3] on the val split" in notes
    assert "intensity 0 (val pixel AUPRC 0: 1.000, 3: " in notes
    # the same candidates where val has no lesion masks: nothing to choose on
    for name in ("val", "test"):
        data = split(False)
        del data["labels_map"]
        save_npz(tmp_path / "nolabels" / f"{name}.npz", data)
    with pytest.raises(MedgenInputError, match=r"median_filter' lists \[0, 3\] to choose "
                                               "among on the val split, but intensity has no "
                                               "val split with pixel labels"):
        evaluate_anomaly({"intensity": tmp_path / "intensity"}, tmp_path / "nolabels",
                         anomaly, tmp_path / "report2")


def test_wrong_image_geometry(tmp_path):
    save_npz(tmp_path / "train.npz", {"images": np.zeros((4, 1, 20, 20), np.float32)})
    with pytest.raises(MedgenInputError, match="not a power of two"):
        train_model("anogan", tmp_path / "train.npz",
                            registry.resolve_hparams("anogan", "default"), TRAINING, 0, tmp_path)


def test_evaluate_writes_table_figures_and_provenance(data_dir, tmp_path):
    pca = fit_pca(data_dir / "train.npz", 5, tmp_path / "pca.npz")
    dirs = {}
    for method, path in (("pca", pca), ("brightness", None)):
        for split in ("val", "test"):
            score_anomalies(method, path, data_dir / f"{split}.npz", tmp_path / method, split)
        dirs[method] = tmp_path / method
    anomaly = validate({})["anomaly"]
    table = evaluate_anomaly(dirs, data_dir, anomaly, tmp_path / "report")
    rows = list(csv.DictReader(table.read_text().splitlines(), delimiter="\t"))
    deviations = [(f"{c}_deviation", s) for s in ("val", "test")
                  for c in ("brightness", "contrast", "sharpness")]
    assert [(r["method"], r["split"]) for r in rows] == [
        ("pca", "val"), ("pca", "test"), ("brightness", "val"), ("brightness", "test"),
        *deviations]
    test_pca = rows[1]
    assert float(test_pca["specificity"]) >= 0.9 and float(test_pca["auroc"]) > 0.9
    for name in ("roc_val.png", "roc_test.png", "hist_test.png", "grid_pca.png", "metrics.json"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["synthetic_anomalies"] is False  # real labels here, nothing inserted
    # the settings evaluated with, recorded under the config key they come from
    assert report["provenance"]["config"]["anomaly"] == json.loads(json.dumps(anomaly))
    assert not (tmp_path / "report" / "pixel_by_subject.tsv").exists()
    # pixel level asked for but no tumour masks: the declared table exists, header only
    anomaly["evaluation"]["pixel_level"] = True
    evaluate_anomaly(dirs, data_dir, anomaly, tmp_path / "pixel")
    assert (tmp_path / "pixel" / "pixel_by_subject.tsv").read_text() == (
        "method\tsplit\tsubject\tpixel_auroc\tpixel_auprc\tdice_at_val_threshold\t"
        "best_dice_upper_bound\n")


def test_latent_mapping_under_no_grad():
    # sliding-window inference calls scorers inside torch.no_grad()
    torch.manual_seed(0)
    g, d = Generator(8, 1, 16, 8), Discriminator(1, 16, 8, 0.2)
    x = torch.as_tensor(blobs(2)) * 2 - 1
    with torch.no_grad():
        fit_ = map_latents(g, d, x, steps=5, seed=0)
    torch.testing.assert_close(fit_.score, map_latents(g, d, x, steps=5, seed=0).score)


def test_resume_after_moving_the_run_folder(data_dir, tmp_path):
    import shutil

    hp = {**registry.resolve_hparams("anogan", "default"), **TINY["anogan"]}
    train_model("anogan", data_dir / "train.npz", hp, TRAINING, 0, tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for epochs in (2, 3):
        train_model("anogan", data_dir / "train.npz", hp,
                            {**TRAINING, "max_epochs": epochs}, 0, tmp_path / "b")
    # the third run resumed from the second's last.ckpt (epoch 1), not the copied epoch 0:
    # each epoch was trained once
    rows = list(csv.DictReader((tmp_path / "b" / "metrics.csv").read_text().splitlines()))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert not list((tmp_path / "b" / "checkpoints").glob("last-v*.ckpt"))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["anogan", "fanogan"])
def test_ddp_two_cpu_processes(family, data_dir, tmp_path):
    """GAN steps leave the other network's parameters unused: DDP must still run them."""
    import subprocess
    import sys
    from pathlib import Path

    job = Path(__file__).parent / "helpers" / "train_anomaly_job.py"
    result = subprocess.run(
        [sys.executable, str(job), family, str(data_dir / "train.npz"), str(tmp_path), "2"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["family"] == family
    stage = tmp_path / "gan" if family == "fanogan" else tmp_path
    rows = list(csv.DictReader((stage / "metrics.csv").read_text().splitlines()))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    losses = [float(v) for row in rows for k, v in row.items() if "loss" in k and v]
    assert losses and np.isfinite(losses).all()


def test_covariate_deviation_is_two_sided():
    reference = {"sharpness": np.array([1.0, 2.0, 3.0, 4.0, 5.0])}
    values = {"sharpness": np.array([3.0, 1.0, 5.0, 9.0])}
    got = covariate_deviations(reference, values)["sharpness_deviation"]
    # median 3, MAD 1: too blurry and too sharp are equally far
    np.testing.assert_allclose(got, [0.0, 2.0, 2.0, 6.0])


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
def test_sliding_windows_blend_back_to_the_image(blend):
    from medgen.models.anomaly import Scores
    from medgen.tasks.anomaly.inference import _sliding

    class Echo:  # reconstructs each window exactly; scores it by its mean
        image_size, batch_size = 16, 8

        def score(self, windows):
            return Scores(score=windows.reshape(len(windows), -1).mean(1), terms={},
                          reconstruction=windows, steps=None)

    image = blobs(2, size=40)  # 40 = 16-pixel windows at half overlap, uneven coverage
    recon, score_map = _sliding(Echo(), image, 0.5, blend)
    # weights are normalised per pixel: a perfect reconstruction stitches back to the
    # input, whatever the number of windows covering each pixel
    np.testing.assert_allclose(recon, image, atol=1e-5)
    assert score_map.shape == (2, 40, 40)
    # window scores differ, so the two weightings give different maps
    other = _sliding(Echo(), image, 0.5, "constant" if blend == "gaussian" else "gaussian")[1]
    assert not np.allclose(score_map, other)


def test_sliding_window_scoring_logs_its_progress_in_a_job_log(monkeypatch, caplog):
    # a job's log has no bar: AnoGAN's mapping can take many minutes a split, so a line
    # says how far it is (every LOG_EVERY_S; 0 here: every window batch)
    from medgen.models.anomaly import Scores
    from medgen.tasks.anomaly import inference

    class Echo:
        image_size, batch_size = 16, 8

        def score(self, windows):
            return Scores(score=windows.reshape(len(windows), -1).mean(1), terms={},
                          reconstruction=windows, steps=None)

    monkeypatch.setattr(inference, "LOG_EVERY_S", 0.0)
    monkeypatch.setattr(inference, "show_progress", lambda: False)
    with caplog.at_level(logging.INFO, logger="medgen.tasks.anomaly.inference"):
        inference._sliding(Echo(), blobs(2, size=40), 0.5)
    lines = [r.getMessage() for r in caplog.records]
    # 40 pixels, 16-pixel windows at half overlap: 4 x 4 windows an image, 32 in all
    assert lines[0] == "sliding-window scoring: about 8 of 32 windows (2 images) so far"
    assert lines[-1] == "sliding-window scoring: about 32 of 32 windows (2 images) so far"


def test_residual_panels_share_one_scale_from_inside_the_masks():
    from medgen.tasks.anomaly.figures import residual_scale

    residuals = np.zeros((2, 10, 10), np.float32)
    residuals[0, :5] = 0.2          # inside the mask
    residuals[1] = 0.1
    residuals[1, 9, 9] = 50.0       # one hot pixel outside the mask: ignored
    masks = np.zeros_like(residuals)
    masks[:, :5] = 1
    assert residual_scale(residuals, masks) == pytest.approx(0.2)
    assert residual_scale(residuals) > 0.2  # without masks the hot pixel counts
    assert residual_scale(np.zeros((1, 4, 4))) == 1.0
