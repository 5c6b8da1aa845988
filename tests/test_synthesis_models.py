"""context_gan networks and losses, whole-volume inference, auto-context levels, metrics
and baselines of the synthesis task, on tiny synthetic volumes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from medgen import checkpoint, registry
from medgen.errors import MedgenInputError
from medgen.models.context_gan.module import (
    build_networks,
    generator_loss,
    gradient_difference_loss,
)
from medgen.models.synthesis import Synthesiser
from medgen.tasks.synthesis import inference
from medgen.tasks.synthesis.auto_context import context_inputs
from medgen.tasks.synthesis.baselines import (
    fit_constant,
    fit_voxel_regression,
    generator_l1_hparams,
    neighbourhood_features,
    predict_constant,
    predict_voxel_regression,
    train_generator_l1,
    train_unet_l1,
)
from medgen.tasks.synthesis.loaders import read_volumes
from medgen.tasks.synthesis.metrics import gradient_error, synthesis_metrics
from medgen.tasks.synthesis.prepare import load_subject, read_manifest
from medgen.train import train_model
from tests.helpers.synthesis_data import prepared_folder

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}


pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_folder(tmp_path_factory.mktemp("synthesis"))


def tiny(preset="default", **kw):
    hp = registry.presets("context_gan")[preset]
    return {**hp, "generator_channels": 4, "discriminator_channels": 4, "batch_size": 4,
            "samples_per_volume": 4, "max_epochs": 1, **kw}


@pytest.mark.parametrize("preset, out", [("paper", 16), ("default", 32), ("l1_only", 32),
                                         ("mr_to_ct", 32)])
def test_presets_build_the_documented_geometry(preset, out):
    hp = registry.presets("context_gan")[preset]
    generator, discriminator = build_networks(hp, 2)
    y = generator(torch.zeros(2, 2, 32, 32, 32))
    assert y.shape == (2, 1, out, out, out)
    assert discriminator(y).shape[0] == 2
    if preset == "paper":
        assert hp["adversarial_weight"] == 0.5 and hp["l2_weight"] == hp["gdl_weight"] == 1
    if preset == "l1_only":
        assert hp["adversarial_weight"] == hp["gdl_weight"] == hp["l2_weight"] == 0
        assert hp["auto_context_levels"] == 1


@pytest.mark.parametrize("preset, params, match", [
    ("default", {"patch_size": 16},
     r"'models.context_gan.params.patch_size' is 16, so the discriminator sees 16\^3 "
     r"patches; MONAI's PatchDiscriminator .* needs at least 32\^3: expected patch_size >= 32"),
    ("paper", {"patch_size": 18},
     r"'models.context_gan.params.patch_size' is 18: the 'valid' convolutions of "
     r"generator_kernels \[7, 5, 5, 3\] trim 16 voxels, leaving 2; expected patch_size >= 20"),
    ("paper", {"patch_size": 22},
     r"sees 6\^3 patches; the paper's CNN discriminator needs at least 8\^3: expected "
     r"patch_size >= 24"),
])
def test_patch_too_small_for_the_discriminator_fails_when_the_config_is_validated(
        preset, params, match):
    from medgen.config import validate
    from medgen.models.context_gan.plan import ContextGANPlan

    config = {"models": {"context_gan": {"preset": preset, "params": params}}}
    with pytest.raises(MedgenInputError, match=match):
        validate(config)
    # and a plan built from code, before torch sees a tensor
    with pytest.raises(MedgenInputError, match=match.replace("models.context_gan", ".*")):
        ContextGANPlan({**registry.presets("context_gan")[preset], **params}, 1,
                       params["patch_size"])


def test_small_patches_pass_without_an_adversarial_term():
    from medgen.config import validate

    for preset, patch in (("l1_only", 16), ("default", 32), ("paper", 24)):
        validate({"models": {"context_gan": {"preset": preset,
                                             "params": {"patch_size": patch}}}})
    hp = {**registry.presets("context_gan")["default"], "patch_size": 16,
          "adversarial_weight": 0.0}
    generator, _ = build_networks(hp, 1)
    assert generator(torch.zeros(2, 1, 16, 16, 16)).shape == (2, 1, 16, 16, 16)


@pytest.mark.parametrize("params, match", [
    ({"max_epochs": -1}, r"params.max_epochs' is -1; expected an integer >= 1"),
    ({"max_epochs": 0}, r"params.max_epochs' is 0; expected an integer >= 1"),
    ({"samples_per_volume": 0}, r"params.samples_per_volume' is 0; expected an integer >= 1"),
    ({"batch_size": 0}, r"params.batch_size' is 0; expected an integer >= 1"),
    ({"auto_context_levels": 0}, r"params.auto_context_levels' is 0; expected an integer"),
    ({"lr": 0.0}, r"params.lr' is 0.0; expected a finite number > 0"),
    ({"lr": -0.001}, r"params.lr' is -0.001; expected a finite number > 0"),
    ({"beta1": 1.0}, r"params.beta1' is 1.0; expected Adam's beta1 in \[0, 1\)"),
    ({"beta1": -0.1}, r"params.beta1' is -0.1; expected Adam's beta1 in \[0, 1\)"),
    ({"l1_weight": -1.0}, r"params.l1_weight' is -1.0; expected a weight >= 0"),
    ({"l2_weight": -1.0}, r"params.l2_weight' is -1.0; expected a weight >= 0"),
    ({"gdl_weight": -1.0}, r"params.gdl_weight' is -1.0; expected a weight >= 0"),
    ({"adversarial_weight": -0.5}, r"params.adversarial_weight' is -0.5; expected a weight"),
    ({"l2_weight": 0.0}, r"params.l1_weight' and 'models.context_gan.params.l2_weight' are "
                         r"both 0: no reconstruction term"),
    ({"norm": "group"}, r"params.norm' is 'group'; expected one of: batch, instance, none"),
    ({"padding": "full"}, r"params.padding' is 'full'; expected one of: same, valid"),
    ({"discriminator": "pixel"}, r"params.discriminator' is 'pixel'; expected one of: patch, cnn"),
    ({"generator_kernels": []}, r"params.generator_kernels' is \[\]; expected a non-empty list "
                                r"of odd kernel sides >= 1"),
    ({"generator_kernels": [3, 4]}, r"params.generator_kernels' is \[3, 4\]; expected"),
    ({"generator_kernels": [3, -1]}, r"params.generator_kernels' is \[3, -1\]; expected"),
])
def test_out_of_range_hyperparameters_fail_when_the_config_is_validated(params, match):
    from medgen.config import validate

    with pytest.raises(MedgenInputError, match="config keys? 'models.context_gan." + match):
        validate({"models": {"context_gan": {"preset": "default", "params": params}}})


def test_the_old_auto_context_stages_key_fails_naming_auto_context_levels():
    from medgen.config import validate

    # the auto-context level was once called a stage: the old key is refused, not ignored
    with pytest.raises(MedgenInputError, match=(
            r"^unknown config key 'models.context_gan.params.auto_context_stages'; valid "
            r"keys: .*\bauto_context_levels\b")):
        validate({"models": {"context_gan": {"preset": "default",
                                             "params": {"auto_context_stages": 2}}}})
    with pytest.raises(MedgenInputError, match=r"valid keys: .*\bauto_context_levels\b"):
        registry.resolve_hparams("context_gan", "default", {"auto_context_stages": 2})


def test_checked_choices_are_what_the_networks_build():
    from medgen.models.context_gan import DISCRIMINATORS, NORMS, PADDINGS, module

    assert NORMS == tuple(module.NORMS)  # spelt out torch-free in the family module
    hp = {**registry.presets("context_gan")["default"], "generator_channels": 2,
          "discriminator_channels": 2}
    for norm in NORMS:
        for padding in PADDINGS:
            for discriminator in DISCRIMINATORS:
                build_networks({**hp, "norm": norm, "padding": padding,
                                "discriminator": discriminator}, 1)
    with pytest.raises(ValueError):
        build_networks({**hp, "padding": "full"}, 1)
    with pytest.raises(ValueError):
        build_networks({**hp, "discriminator": "pixel"}, 1)


def test_gradient_difference_loss_and_loss_weights():
    y = torch.rand(2, 1, 8, 8, 8)
    assert gradient_difference_loss(y, y) == 0
    blurred = torch.nn.functional.avg_pool3d(y, 3, 1, 1)
    assert gradient_difference_loss(blurred, y) > 0
    # a constant offset leaves the gradients unchanged: GDL 0, L2 not
    assert gradient_difference_loss(y + 1, y) < 1e-10
    hp = {"l2_weight": 1.0, "l1_weight": 0.0, "gdl_weight": 2.0, "adversarial_weight": 0.0}
    terms = generator_loss(blurred, y, None, hp)
    torch.testing.assert_close(terms.total, terms.l2 + 2 * terms.gdl)
    assert terms.adversarial == 0


class CentreCopy(nn.Module):
    """A 'generator' with valid convolutions of margin m that copies channel 0."""

    def __init__(self, margin):
        super().__init__()
        self.margin = margin
        self.calls = 0

    def forward(self, x):
        self.calls += len(x)
        m = self.margin
        return x[:, :1, m:-m, m:-m, m:-m] if m else x[:, :1]


@pytest.mark.parametrize("margin", [0, 8])
def test_sliding_window_blends_valid_outputs_exactly_and_skips_empty_windows(margin):
    rng = np.random.default_rng(0)
    source = rng.random((2, 70, 50, 40)).astype(np.float32)
    mask = np.zeros((70, 50, 40), np.uint8)
    mask[5:30, 10:40, 5:35] = 1
    net = CentreCopy(margin)
    model = Synthesiser(net, margin, {"channels": 2})
    out = model.predict(source, mask, window=32, overlap=0.25)
    np.testing.assert_allclose(out[mask > 0], source[0][mask > 0], rtol=1e-5)
    assert (out[mask == 0] == 0).all()
    calls = net.calls
    model.predict(source, np.ones_like(mask), window=32, overlap=0.25)
    assert calls < net.calls  # windows without a mask voxel were not run
    with pytest.raises(MedgenInputError, match="takes 2 source channel"):
        model.predict(source[:1], mask)


@pytest.mark.parametrize("preset", ["default", "paper"])
def test_skipping_empty_windows_leaves_the_output_inside_the_mask_unchanged(preset):
    # a real (random) generator: inside the mask, skipping windows without a mask voxel
    # gives what running every window gives
    torch.manual_seed(0)
    generator, _ = build_networks(tiny(preset), 1)
    rng = np.random.default_rng(1)
    source = rng.random((1, 60, 44, 36)).astype(np.float32)
    mask = np.zeros((60, 44, 36), np.uint8)
    mask[30:52, 6:30, 4:20] = 1
    model = Synthesiser(generator.eval(), generator.margin, {"channels": 1})
    skipped = model.predict(source, mask, window=32, overlap=0.25)
    every = model.predict(source, np.ones_like(mask), window=32, overlap=0.25)
    assert np.abs(every[mask > 0]).min() > 0  # the network's output, not zeros
    np.testing.assert_allclose(skipped[mask > 0], every[mask > 0], rtol=1e-5, atol=1e-6)


def test_nifti_keeps_the_source_affine_and_header(tmp_path):
    affine = np.array([[-1.0, 0, 0, 90], [0, 1, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    ref = nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), affine)
    ref.header.set_xyzt_units("mm", "sec")
    ref.header["descrip"] = b"source"
    nib.save(ref, tmp_path / "t2.nii.gz")
    out = inference.write_nifti(np.ones((4, 5, 6)), affine, tmp_path / "t2.nii.gz",
                                tmp_path / "o" / "s_level1.nii.gz", {"units": "HU"})
    written = nib.load(out)
    np.testing.assert_allclose(written.affine, affine)
    assert written.header.get_xyzt_units() == ("mm", "sec")
    assert written.header["descrip"] == b"source" and written.get_data_dtype() == np.float32
    assert inference.read_sidecar(out) == {"units": "HU"}


def test_two_auto_context_levels_train_as_separate_jobs(prepared, tmp_path):
    # level 1 on the prepared folder, level 2 on the source plus level 1's output
    hp = tiny()
    level1 = train_model("context_gan", prepared, hp, TRAINING, 0, tmp_path / "level1")
    model1 = inference.load(level1)
    assert model1.data["level"] == 1 and model1.data["modalities"] == ["t2"]
    data2 = context_inputs(prepared, model1, level1, tmp_path / "data2", window=32)
    manifest = read_manifest(data2)
    assert manifest["level"] == 2 and manifest["sources"] == ["t2", "flair_level1"]
    assert manifest["context_models"] == [str(level1)]
    subjects, volumes = read_volumes(data2, "train")
    first = read_volumes(prepared, "train")[1][0]
    np.testing.assert_array_equal(volumes[0]["source"][0], first["source"][0])
    np.testing.assert_allclose(volumes[0]["source"][1],
                               model1.predict(first["source"], first["mask"][0], window=32))
    level2 = train_model("context_gan", data2, hp, TRAINING, 0, tmp_path / "level2")
    model2 = inference.load(level2)
    assert model2.channels == 2 and checkpoint.load(level2).data["level"] == 2
    with pytest.raises(MedgenInputError, match="takes 2 source channel.*holds 1"):
        context_inputs(prepared, model2, level2, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    arrays = load_subject(prepared, "s3")
    outputs, written = inference.synthesise_subject(
        [model1, model2], arrays["source"], arrays["mask"][0], read_manifest(prepared), "s3",
        tmp_path / "out", window=32)
    assert len(outputs) == 2
    assert [p.name for p in written] == ["s3_level1.nii.gz", "s3_level2.nii.gz"]
    image = nib.load(written[1])
    assert image.shape == tuple(manifest["subjects"]["s3"]["shape"])
    assert np.isfinite(image.get_fdata()).all()
    assert inference.read_sidecar(written[1])["level"] == 2


def test_paper_preset_trains_and_infers_a_whole_volume(prepared, tmp_path):
    path = train_model("context_gan", prepared, tiny("paper"), TRAINING, 0, tmp_path / "p")
    model = inference.load(path)
    assert model.margin == 8
    _, (volume,) = read_volumes(prepared, "test")
    out = model.predict(volume["source"], volume["mask"][0], window=40)
    assert out.shape == volume["mask"].shape[1:] and np.isfinite(out).all()
    assert (out[volume["mask"][0] > 0] != 0).any()


def test_metrics_inside_the_mask():
    rng = np.random.default_rng(0)
    target = rng.random((24, 24, 24)).astype(np.float32)
    mask = np.zeros(target.shape, bool)
    mask[4:20, 4:20, 4:20] = True
    label = np.zeros(target.shape, np.int16)
    label[8:12, 8:12, 8:12] = 1
    perfect = synthesis_metrics(target, target, mask, label)
    assert perfect["mae"] == 0 and perfect["gradient_error"] == 0
    assert perfect["ssim"] == pytest.approx(1) and perfect["ssim_tumour"] == pytest.approx(1)
    noisy = target + 0.1 * rng.standard_normal(target.shape).astype(np.float32)
    metrics = synthesis_metrics(noisy, target, mask, label, data_range=1.0)
    mse = float(((noisy - target)[mask] ** 2).mean())
    assert metrics["psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-4)
    assert metrics["mae"] == pytest.approx(float(np.abs(noisy - target)[mask].mean()), rel=1e-5)
    assert 0 < metrics["ssim"] < 1 and metrics["n_voxels"] == mask.sum()
    # errors outside the mask do not count
    outside = target.copy()
    outside[~mask] = 5
    assert synthesis_metrics(outside, target, mask)["mae"] == 0
    constant = np.full_like(target, float(target[mask].mean()))
    assert synthesis_metrics(constant, target, mask)["ssim"] < 0.1
    assert gradient_error(constant, target, mask) > 0
    assert np.isnan(synthesis_metrics(noisy, target, mask)["ssim_tumour"])


def test_constant_baseline_is_the_training_targets_in_mask_median(prepared):
    _, train = read_volumes(prepared, "train")
    _, (test,) = read_volumes(prepared, "test")
    value = fit_constant(train)
    inside = np.concatenate([v["target"][0][v["mask"][0] != 0] for v in train])
    assert value == np.median(inside)
    # the median is the constant with the lowest training MAE
    for other in (value - 0.05, value + 0.05):
        assert np.abs(inside - value).mean() < np.abs(inside - other).mean()
    mask = test["mask"][0]
    pred = predict_constant(value, mask)
    assert pred.dtype == np.float32 and (pred[mask == 0] == 0).all()
    assert np.allclose(pred[mask != 0], value)


def test_voxel_regression_baselines_and_the_l1_unet(prepared):
    _, train = read_volumes(prepared, "train")
    _, (test,) = read_volumes(prepared, "test")
    coords = np.array([[5, 6, 7]])
    features = neighbourhood_features(test["source"], coords)
    assert features.shape == (1, 27)
    assert features[0, 13] == test["source"][0, 5, 6, 7]  # the centre voxel
    mask = test["mask"][0]
    target = test["target"][0]
    for kind in ("linear", "hgb"):
        model = fit_voxel_regression(train, kind, voxels_per_subject=2000)
        pred = predict_voxel_regression(model, test["source"], mask)
        assert (pred[mask == 0] == 0).all()
        constant = np.full_like(target, target[mask > 0].mean())
        assert (synthesis_metrics(pred, target, mask)["mae"]
                < synthesis_metrics(constant, target, mask)["mae"])
    unet = train_unet_l1(train, {"channels": [4, 8], "patch_size": 16,
                                 "samples_per_volume": 4, "batch_size": 4, "max_epochs": 1,
                                 "lr": 1e-3}, seed=0, num_threads=1)
    out = unet.predict(test["source"], mask, window=32)
    assert out.shape == mask.shape and np.isfinite(out).all()
    assert unet.data["model_selection"]["rule"] == "last epoch"
    # with validation subjects it keeps the epoch of lowest val_mae, as the family does
    hp = {"channels": [4, 8], "patch_size": 16, "samples_per_volume": 4, "batch_size": 4,
          "max_epochs": 3, "lr": 1e-3}
    selected = train_unet_l1(train, hp, seed=0, num_threads=1, val_volumes=[test])
    choice = selected.data["model_selection"]
    assert choice["rule"] == "lowest val_mae" and choice["epochs_trained"] == 3
    assert 0 <= choice["epoch"] <= 2 and np.isfinite(choice["val_mae"])


def test_generator_l1_baseline_is_the_configured_generator_with_l1_only(prepared):
    _, train = read_volumes(prepared, "train")
    _, (test,) = read_volumes(prepared, "test")
    hp = tiny("paper")  # valid convolutions: 32^3 -> 16^3, the margin must carry over
    assert generator_l1_hparams(hp) == {**hp, "l1_weight": 1.0, "l2_weight": 0.0,
                                        "gdl_weight": 0.0, "adversarial_weight": 0.0,
                                        "auto_context_levels": 1}
    net = train_generator_l1(train, hp, seed=0, num_threads=1)
    reference, _ = build_networks(hp, 1)
    assert net.margin == reference.margin == 8
    assert ({k: v.shape for k, v in net.network.state_dict().items()}
            == {k: v.shape for k, v in reference.state_dict().items()})
    mask = test["mask"][0]
    out = net.predict(test["source"], mask, window=32)
    assert out.shape == mask.shape and np.isfinite(out).all() and (out[mask == 0] == 0).all()
    again = train_generator_l1(train, hp, seed=0, num_threads=1)
    np.testing.assert_array_equal(again.predict(test["source"], mask, window=32), out)


def test_evaluation_reports_every_level_and_baseline_per_subject(prepared, tmp_path):
    import json

    import pandas as pd

    from medgen.tasks.synthesis.evaluate import evaluate_synthesis

    level1 = train_model("context_gan", prepared, tiny(auto_context_levels=1), TRAINING, 0,
                         tmp_path / "m")
    unet = {"channels": [4, 8], "patch_size": 16, "samples_per_volume": 2, "batch_size": 2,
            "max_epochs": 1, "lr": 1e-3}
    table = evaluate_synthesis(prepared, {"context_gan": [str(level1)]}, tmp_path / "eval",
                               ["constant", "linear", "unet_l1", "generator_l1"], 0, unet,
                               window=32,
                               num_threads=1, generator=tiny(samples_per_volume=2))
    methods = {"context_gan_level1", "constant", "voxel_linear", "unet_l1", "generator_l1"}
    assert set(table["method"]) == methods
    # the validation subject s2 beside the test subject s3, each row labelled
    assert table.groupby("split")["subject"].unique().map(list).to_dict() == {
        "test": ["s3"], "val": ["s2"]}
    assert table[["mae", "psnr", "ssim", "gradient_error", "ssim_tumour"]].notna().all().all()
    saved = pd.read_csv(tmp_path / "eval" / "metrics.tsv", sep="\t")
    assert len(saved) == 10 and set(saved["split"]) == {"test", "val"}
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # test means stay where they were; every split's means are keyed by split
    assert summary["split"] == "test" and summary["subjects"] == ["s3"]
    assert set(summary["mean"]) == methods and summary["units"] == "normalised"
    assert summary["splits"]["test"]["mean"] == summary["mean"]
    assert summary["splits"]["val"]["subjects"] == ["s2"]
    val_psnr = saved.query("split == 'val' and method == 'unet_l1'")["psnr"].item()
    assert summary["splits"]["val"]["mean"]["unet_l1"]["psnr"] == pytest.approx(val_psnr)
    for subject in ("s2", "s3"):
        assert (tmp_path / "eval" / "context_gan" / f"{subject}_level1.nii.gz").exists()
        # baselines' volumes too (the report's mid-slices), in the source grid
        written = nib.load(tmp_path / "eval" / "unet_l1" / f"{subject}.nii.gz")
        assert written.shape == nib.load(tmp_path / "eval" / "context_gan"
                                         / f"{subject}_level1.nii.gz").shape
    with pytest.raises(MedgenInputError, match="'generator_l1' but no context_gan"):
        evaluate_synthesis(prepared, {}, tmp_path / "e2", ["generator_l1"], 0, unet)
    with pytest.raises(MedgenInputError, match="unknown synthesis baseline 'gan'.*generator_l1"):
        evaluate_synthesis(prepared, {}, tmp_path / "e2", ["gan"], 0, unet)


@pytest.mark.realdata
def test_ct_target_is_evaluated_in_hounsfield_units(shared_data, tmp_path):
    import json

    from medgen.tasks.synthesis.evaluate import evaluate_synthesis, report_scale
    from medgen.tasks.synthesis.pairs import read_pairs
    from medgen.tasks.synthesis.prepare import prepare_synthesis
    from tests.helpers.synthesis_data import CT_SETTINGS, REAL_CT, ct_pair_sheet

    sheet = ct_pair_sheet(tmp_path / "raw", shared_data / REAL_CT["nifti_trunk"])
    prepared = prepare_synthesis(read_pairs(sheet, ["mr"], "ct"), CT_SETTINGS, tmp_path / "p")
    manifest = read_manifest(prepared)
    _, (test,) = read_volumes(prepared, "test")
    mask, target = test["mask"][0], test["target"][0]
    hu, units = report_scale(target, manifest, "ct1", mask)
    assert units == "HU" and hu[mask > 0].min() >= -1024 and hu[mask > 0].max() > 1000
    # 0.01 on the window's [0, 1] scale is 40.95 HU: MAE comes out in HU
    off, _ = report_scale(np.where(mask > 0, target + 0.01, 0), manifest, "ct1", mask)
    assert synthesis_metrics(off, hu, mask)["mae"] == pytest.approx(40.95, abs=0.05)
    evaluate_synthesis(prepared, {}, tmp_path / "eval", ["linear"], 0, {}, splits=("test",))
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert summary["units"] == "HU" and summary["subjects"] == ["ct1"]
    assert summary["mean"]["voxel_linear"]["mae"] > 1  # HU, not the [0, 1] scale
