"""Real-world synthesis inputs (issue 32): a target with a smaller field of view, a target
stored in another axis order, thin volumes, a CT that lost its rescale intercept. Each is
read right (and says so in the log and the metadata) or refused with one message."""

from __future__ import annotations

import logging
import re

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel import orientations

from medgen.errors import MedgenInputError
from medgen.models.context_gan.module import generator_loss
from medgen.tasks.synthesis.evaluate import score_outputs, subject_notes
from medgen.tasks.synthesis.loaders import training_data
from medgen.tasks.synthesis.metrics import metric_notes, synthesis_metrics
from medgen.tasks.synthesis.pairs import load_pair, read_pairs, reorientation
from medgen.tasks.synthesis.prepare import load_subject, prepare_synthesis, read_manifest
from tests.helpers.synthesis_data import AFFINE, SETTINGS, pair_volumes, save_nii, write_subjects

RESAMPLE = {**SETTINGS, "resample_target": True, "min_target_coverage": 0.5}
CT = {**SETTINGS, "target_is_ct": True, "target_normalisation": "ct_window"}


@pytest.fixture
def sheet(tmp_path):
    return write_subjects(tmp_path / "raw")


def _pairs(sheet, **kw):
    return read_pairs(sheet, ["t2"], "flair", **kw)


def _middle_slab(flair: np.ndarray, start: int = 8, stop: int = 26) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """A coarser target (2x in-plane, 2x slice spacing) covering only slices start..stop of
    the source's z range: (data, affine)."""
    affine = AFFINE @ np.diag([2.0, 2.0, 2.0, 1.0])
    affine[2, 3] = start * AFFINE[2, 2]
    return flair[::2, ::2, start:stop:2], affine


# 1. a target with a smaller field of view ------------------------------------------------

def test_a_target_with_a_smaller_field_of_view_is_scored_on_its_coverage(
        sheet, tmp_path, caplog):
    _, flair, _ = pair_volumes(0)
    slab, affine = _middle_slab(flair)
    save_nii(sheet.parent / "s0_flair.nii.gz", slab, affine)
    pair = _pairs(sheet)[0]
    with caplog.at_level(logging.WARNING):
        volume = load_pair(pair, RESAMPLE)
    mask = volume.mask != 0
    covered = volume.coverage != 0
    info = volume.grid["target"]
    assert info["how"] == "resampled"
    # the target's voxel edges run from z = 7 to z = 25 and over every x, y of the source
    # grid (its voxel centres from z = 8 to 24, x, y = 0 to 34)
    assert covered[:, :, 7:26].all() and not covered[:, :, :7].any()
    assert not covered[:, :, 26:].any()
    excluded = int((mask & ~covered).sum())
    assert excluded > 0 and info["excluded_voxels"] == excluded
    assert info["coverage"] == pytest.approx(1 - excluded / mask.sum())
    assert f"the {excluded} voxel(s) outside its field of view are left out" in caplog.text
    # the target's normalisation is measured where it is known, not on the zero padding
    out = prepare_synthesis(_pairs(sheet), RESAMPLE, tmp_path / "p")
    manifest = read_manifest(out)
    assert manifest["subjects"]["s0"]["grid"]["target"]["excluded_voxels"] == excluded
    assert manifest["subjects"]["s1"]["grid"]["target"]["how"] == "same grid"
    arrays = load_subject(out, "s0")
    assert int(((arrays["mask"] != 0) & (arrays["coverage"] == 0)).sum()) == excluded
    assert "coverage" not in load_subject(out, "s1")  # covers its grid: no map stored
    expected = np.quantile(volume.target[mask & covered], 0.99)
    assert manifest["subjects"]["s0"]["target_params"]["high"] == pytest.approx(expected,
                                                                               rel=1e-3)
    # the metrics: a prediction right inside the coverage and wrong outside scores 0
    target = arrays["target"][0]
    pred = np.where(arrays["coverage"][0] != 0, target, target + 5)
    rows, _ = score_outputs({"m": pred}, target, manifest, "s0", arrays["mask"][0],
                            coverage=arrays["coverage"][0])
    assert rows[0]["mae"] == 0 and rows[0]["n_excluded"] == excluded
    assert rows[0]["n_voxels"] == int(mask.sum()) - excluded
    assert rows[0]["gradient_error"] == 0 and rows[0]["ssim"] == pytest.approx(1)
    notes = subject_notes(manifest, ["s0", "s1"], {"s0": target.shape, "s1": target.shape})
    assert notes == {"s0": {"target_coverage": info["coverage"], "excluded_voxels": excluded}}
    # training patches carry the coverage; patches of s1 are all covered
    data = training_data(out, {"patch_size": 16, "samples_per_volume": 8, "batch_size": 8},
                         seed=0, family="context_gan")
    coverages = torch.cat([batch[2] for batch in data.train])
    assert (coverages == 0).any() and (coverages == 1).any()


@pytest.mark.usefixtures("quiet_warnings")
def test_a_gan_and_the_trained_baselines_train_on_partly_covered_targets(sheet, tmp_path):
    from medgen import checkpoint, registry
    from medgen.tasks.synthesis.baselines import train_generator_l1, train_unet_l1
    from medgen.tasks.synthesis.loaders import read_volumes
    from medgen.train import train_model

    for i in (0, 2):  # a training subject and the validation subject
        _, flair, _ = pair_volumes(i)
        save_nii(sheet.parent / f"s{i}_flair.nii.gz", *_middle_slab(flair))
    out = prepare_synthesis(_pairs(sheet, validation_subject="s2"), RESAMPLE, tmp_path / "p")
    hp = {**registry.presets("context_gan")["default"], "generator_channels": 4,
          "discriminator_channels": 4, "batch_size": 4, "samples_per_volume": 4,
          "max_epochs": 1, "auto_context_levels": 1, "select_on_val": True}
    training = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
                "num_threads": 1, "progress_bar": False}
    model = train_model("context_gan", out, hp, training, 0, tmp_path / "gan")
    selection = checkpoint.load(model).provenance["model_selection"]
    assert selection["rule"] == "lowest val_mae" and np.isfinite(selection["val_mae"])
    _, train = read_volumes(out, "train")
    _, val = read_volumes(out, "val")
    unet = {"channels": [4, 8], "patch_size": 16, "samples_per_volume": 2, "batch_size": 2,
            "max_epochs": 1, "lr": 1e-3}
    assert np.isfinite(train_unet_l1(train, unet, 0, 1, val).data["model_selection"]["val_mae"])
    generator = train_generator_l1(train, hp, 0, 1, val)
    assert np.isfinite(generator.data["model_selection"]["val_mae"])


def test_the_training_loss_ignores_voxels_outside_the_coverage():
    rng = torch.Generator().manual_seed(0)
    target = torch.rand((2, 1, 8, 8, 8), generator=rng)
    weight = torch.ones_like(target)
    weight[..., 5:] = 0
    fake = target + 0.1
    hp = {"l2_weight": 1.0, "l1_weight": 1.0, "gdl_weight": 1.0, "adversarial_weight": 0.0}
    right = generator_loss(fake, target, None, hp, weight=weight)
    wrong = generator_loss(torch.where(weight > 0, fake, fake + 7), target, None, hp,
                           weight=weight)
    assert right.l1.item() == pytest.approx(0.1) and right.l2.item() == pytest.approx(0.01)
    for term in ("l1", "l2", "gdl", "total"):
        assert getattr(wrong, term).item() == pytest.approx(getattr(right, term).item())
    # without a coverage map the wrong voxels count
    assert generator_loss(torch.where(weight > 0, fake, fake + 7), target, None, hp).l1 > 1


@pytest.mark.parametrize("minimum", ["above", "exact"])
def test_a_target_covering_too_little_of_the_mask_is_refused(sheet, tmp_path, minimum):
    _, flair, _ = pair_volumes(3)
    slab, affine = _middle_slab(flair, 12, 20)
    save_nii(sheet.parent / "s3_flair.nii.gz", slab, affine)
    share = load_pair(_pairs(sheet)[3], {**RESAMPLE, "min_target_coverage": 0})
    share = share.grid["target"]["coverage"]
    assert 0 < share < 0.5
    if minimum == "exact":  # a coverage of exactly the minimum passes
        load_pair(_pairs(sheet)[3], {**RESAMPLE, "min_target_coverage": share})
        return
    # the last subject fails: nothing of the first three is left behind
    with pytest.raises(MedgenInputError,
                       match=rf"subject 's3': target 'flair' \(.*s3_flair.nii.gz\) covers only "
                             rf"{100 * share:.1f} % of the mask .*expected at least 50 % "
                             r"\(synthesis.min_target_coverage\)"):
        prepare_synthesis(_pairs(sheet), RESAMPLE, tmp_path / "p")
    assert not (tmp_path / "p").exists()


# 2. a pure permutation / flip of axes ----------------------------------------------------

@pytest.mark.parametrize("ornt", [
    [[0, -1], [1, -1], [2, 1]],  # LPS, as DICOM-derived files
    [[2, 1], [0, -1], [1, 1]],  # axes permuted and one flipped
    [[0, 1], [1, 1], [2, -1]],  # RAI: slices stored top to bottom
])
def test_a_target_in_another_axis_order_is_reoriented_exactly(sheet, caplog, ornt):
    _, flair, _ = pair_volumes(0)
    ornt = np.array(ornt, float)
    stored = orientations.apply_orientation(flair, ornt)
    affine = AFFINE @ orientations.inv_ornt_aff(ornt, flair.shape)
    path = save_nii(sheet.parent / "s0_flair.nii.gz", stored, affine)
    codes = "".join(nib.aff2axcodes(nib.load(path).affine))
    assert codes != "RAS"
    with caplog.at_level(logging.INFO):
        volume = load_pair(_pairs(sheet)[0], SETTINGS)  # no resample_target needed
    assert np.array_equal(volume.target, flair)  # exact: no interpolation
    assert volume.grid["target"] == {"file": str(path), "how": "reoriented",
                                     "orientation": codes, "to_orientation": "RAS",
                                     "coverage": 1.0, "excluded_voxels": 0}
    assert volume.coverage is None
    assert f"is stored {codes}" in caplog.text and "exact, no interpolation" in caplog.text


@pytest.mark.parametrize("degrees", [0, 30])
def test_reorientation_finds_the_exact_transform_of_oblique_grids_too(degrees):
    angle = np.deg2rad(degrees)
    reference = np.eye(4)
    reference[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    reference[:3, :3] = reference[:3, :3] @ np.diag([1.2, 1.1, 1.5])
    reference[:3, 3] = [-20, 5, 7]
    shape = (20, 22, 9)
    data = np.random.default_rng(0).random(shape)
    ornt = np.array([[1, 1], [0, -1], [2, -1]], float)  # permuted, two axes flipped
    stored = orientations.apply_orientation(data, ornt)
    affine = reference @ orientations.inv_ornt_aff(ornt, shape)
    transform = reorientation(affine, stored.shape, reference, shape)
    assert np.array_equal(orientations.apply_orientation(stored, transform), data)
    assert reorientation(reference, shape, reference, shape) is None  # nothing to do
    affine[:3, 3] += 0.5  # a shift is no reorientation
    assert reorientation(affine, stored.shape, reference, shape) is None


def test_a_flip_with_a_real_misalignment_still_needs_resampling(sheet):
    _, flair, _ = pair_volumes(0)
    ornt = np.array([[0, -1], [1, 1], [2, 1]], float)
    affine = AFFINE @ orientations.inv_ornt_aff(ornt, flair.shape)
    affine[0, 3] += 0.6  # and half a voxel off
    save_nii(sheet.parent / "s0_flair.nii.gz", orientations.apply_orientation(flair, ornt),
             affine)
    with pytest.raises(MedgenInputError, match=r"not on one voxel grid \(its axes are "
                       r"flipped \(stored axis 0\): stored LAS, the source grid RAS; once "
                       r"reoriented, affine: origin off by 0.6 mm .*\); set "
                       r"synthesis.resample_target: true"):
        load_pair(_pairs(sheet)[0], SETTINGS)
    volume = load_pair(_pairs(sheet)[0], RESAMPLE)
    assert volume.grid["target"]["how"] == "resampled"


# 3. thin volumes ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(64, 64, 3), (64, 64, 1), (7, 7, 7), (6, 40, 40)])
def test_metrics_of_thin_volumes_are_nan_with_a_reason_never_an_error(shape):
    rng = np.random.default_rng(0)
    target = rng.random(shape).astype(np.float32)
    pred = target + 0.1
    mask = np.ones(shape, bool)
    label = np.zeros(shape, np.int16)
    label.flat[0] = 1
    metrics = synthesis_metrics(pred, target, mask, label)
    notes = metric_notes(shape)
    assert metrics["mae"] == pytest.approx(0.1, rel=1e-4) and np.isfinite(metrics["psnr"])
    assert metrics["n_voxels"] == mask.sum() and metrics["n_excluded"] == 0
    if min(shape) >= 7:  # the window fits: SSIM of its one interior voxel (or more)
        assert notes == {} and np.isfinite(metrics["ssim"])
        return
    assert set(notes) >= {"ssim", "ssim_tumour", "ssim_non_tumour"}
    assert "thinner than the 7-voxel SSIM window" in notes["ssim"]
    assert np.isnan(metrics["ssim"]) and np.isnan(metrics["ssim_non_tumour"])
    if min(shape) == 1:
        assert "single voxel" in notes["gradient_error"]
        assert np.isnan(metrics["gradient_error"])
    else:
        assert metrics["gradient_error"] == pytest.approx(0, abs=1e-6)


def test_a_single_slice_is_refused_naming_the_file(sheet, tmp_path):
    # 2D images are the npz2d readers' business; a synthesis pair must be 3D
    t2, flair, _ = pair_volumes(3, shape=(40, 40, 1), lesion=False)
    save_nii(sheet.parent / "s3_t2.nii.gz", t2 + 1)
    save_nii(sheet.parent / "s3_flair.nii.gz", flair + 1)
    with pytest.raises(MedgenInputError, match=r"s3_t2.nii.gz: expected a 3D volume, got an "
                       r"image of shape \(40, 40, 1\) \(a 3D volume has at least 2 voxels"):
        prepare_synthesis(_pairs(sheet), SETTINGS, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_thin_subjects_in_the_evaluation_say_why_their_ssim_is_nan(tmp_path, caplog):
    root = tmp_path / "raw"
    sheet = write_subjects(root, splits=("train", "train", "val", "test"))
    for i in (2, 3):  # the validation and test subjects are 3 slices thick
        t2, flair, seg = pair_volumes(i)
        for name, data in (("t2", t2), ("flair", flair), ("seg", seg)):
            save_nii(root / f"s{i}_{name}.nii.gz", data[:, :, 15:18])
    out = prepare_synthesis(_pairs(sheet), SETTINGS, tmp_path / "p")
    manifest = read_manifest(out)
    arrays = load_subject(out, "s3")
    assert arrays["target"].shape[-1] == 3
    with caplog.at_level(logging.WARNING):
        rows, _ = score_outputs({"m": arrays["target"][0] * 0.9}, arrays["target"][0],
                                manifest, "s3", arrays["mask"][0], arrays["label"][0])
    assert np.isnan(rows[0]["ssim"]) and rows[0]["mae"] > 0
    assert "s3: ssim, ssim_tumour, ssim_non_tumour are NaN: the volume (" in caplog.text
    notes = subject_notes(manifest, ["s3"], {"s3": arrays["target"][0].shape})
    assert "thinner than the 7-voxel SSIM window" in notes["s3"]["nan_metrics"]["ssim"]
    # training-time validation on the thin validation subject: padded patches, covered
    # voxels only
    data = training_data(out, {"patch_size": 16, "samples_per_volume": 2, "batch_size": 4},
                         seed=0, family="context_gan")
    _, target, coverage = next(iter(data.val))
    # the three real slices are covered, the padding around them is not
    assert ((coverage.amax(dim=(0, 1, 2, 3)) > 0).sum() == 3).item()
    assert target.shape[-1] == 16


# 4. a CT that lost its rescale intercept ---------------------------------------------------

def _ct(shape=(36, 36, 34)) -> np.ndarray:
    """HU: air around an ellipsoid body of soft tissue (40 HU), fat rim, bone block."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    radius = (grid**2).sum(0)
    ct = np.full(shape, -1000.0)
    ct[radius < 0.6] = -90.0
    ct[radius < 0.5] = 40.0
    ct[14:20, 14:20, 14:20] = 1200.0
    noise = np.random.default_rng(0).normal(0, 10, shape)
    return (ct + noise).astype(np.float32)


def _write_ct(sheet, data, inter=None, dtype=None):
    path = sheet.parent / "s0_flair.nii.gz"
    image = nib.Nifti1Image(np.asarray(data), AFFINE)
    if dtype is not None:
        image.set_data_dtype(dtype)
    if inter is not None:
        image.header.set_slope_inter(1.0, inter)
    nib.save(image, path)
    return path


def test_a_ct_without_its_rescale_intercept_is_refused_naming_the_file(sheet):
    stored = np.clip(np.rint(_ct() + 1024), 0, None).astype(np.uint16)  # air at ~24
    path = _write_ct(sheet, stored)
    assert np.asarray(nib.load(path).dataobj).dtype == np.uint16
    with pytest.raises(MedgenInputError, match=(
            r"CT target .*s0_flair.nii.gz does not look like Hounsfield units: air .* near "
            r"-1000 HU, but its darkest 1 % of voxels lie at .* likely a CT written without "
            r"its rescale intercept \(RescaleIntercept / scl_inter, here about -10[0-9][0-9]\)")):
        load_pair(_pairs(sheet)[0], CT)


@pytest.mark.parametrize("case", ["intercept_in_header", "hu_int16", "intercept_1000",
                                  "cropped_inside_body"])
def test_a_ct_in_hounsfield_units_passes_the_air_check(sheet, case, caplog):
    ct = _ct()
    if case == "intercept_in_header":  # stored values, intercept applied by the reader
        _write_ct(sheet, np.clip(np.rint(ct + 1024), 0, None).astype(np.uint16), -1024)
    elif case == "hu_int16":
        _write_ct(sheet, np.rint(ct).astype(np.int16))
    elif case == "intercept_1000":
        _write_ct(sheet, np.clip(np.rint(ct + 1000), 0, None).astype(np.uint16), -1000)
    else:  # a field of view inside the body: fat is the darkest tissue; warned, not refused
        _write_ct(sheet, np.where(ct < -500, ct + 910, ct))
    with caplog.at_level(logging.WARNING):
        volume = load_pair(_pairs(sheet)[0], CT)
    assert np.percentile(volume.target, 1) < -50
    assert ("where air near -1000 HU is expected" in caplog.text) == (
        case == "cropped_inside_body")


def test_the_evaluation_scores_coverage_and_thin_subjects_and_records_why(sheet, tmp_path):
    import json

    from medgen.tasks.synthesis.evaluate import evaluate_synthesis

    t2, flair, seg = pair_volumes(2)  # validation subject s2: 3 slices
    for name, data in (("t2", t2), ("flair", flair), ("seg", seg)):
        save_nii(sheet.parent / f"s2_{name}.nii.gz", data[:, :, 15:18])
    _, flair, _ = pair_volumes(3)  # test subject s3: a target of part of the z range
    save_nii(sheet.parent / "s3_flair.nii.gz", *_middle_slab(flair))
    out = prepare_synthesis(_pairs(sheet, validation_subject="s2"), RESAMPLE, tmp_path / "p")
    excluded = read_manifest(out)["subjects"]["s3"]["grid"]["target"]["excluded_voxels"]
    table = evaluate_synthesis(out, {}, tmp_path / "eval", ["constant", "linear"], 0, {},
                               window=32).set_index(["subject", "method"])
    assert (table.loc["s3"]["n_excluded"] == excluded).all() and excluded > 0
    assert table.loc["s3"][["ssim", "mae"]].notna().all().all()
    assert table.loc["s2"]["ssim"].isna().all() and table.loc["s2"]["mae"].notna().all()
    notes = json.loads((tmp_path / "eval" / "metrics.json").read_text())["notes"]
    assert notes["s3"]["excluded_voxels"] == excluded
    assert set(notes["s2"]["nan_metrics"]) == {"ssim", "ssim_tumour", "ssim_non_tumour"}


# second round: break attempts on the fixes ----------------------------------------------

def test_a_coarser_target_with_the_same_extent_covers_every_voxel(sheet):
    # a source whose body fills its field of view (the mask is the whole grid) and a target
    # at twice the spacing whose voxel edges are the source's outer edges
    shape = (36, 36, 34)
    t2 = (100 + np.random.default_rng(0).normal(0, 5, shape)).astype(np.float32)
    save_nii(sheet.parent / "s0_t2.nii.gz", t2)
    coarse = (0.8 * t2 + 10).reshape(18, 2, 18, 2, 17, 2).mean(axis=(1, 3, 5))
    affine = AFFINE @ np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = np.diag(AFFINE)[:3] / 2  # centre of the first 2x2x2 block
    save_nii(sheet.parent / "s0_flair.nii.gz", coarse, affine)
    volume = load_pair(_pairs(sheet)[0], {**RESAMPLE, "min_target_coverage": 0.99})
    assert volume.mask.all()
    assert volume.coverage is None
    assert volume.grid["target"] == {"file": str(sheet.parent / "s0_flair.nii.gz"),
                                     "how": "resampled", "coverage": 1.0,
                                     "excluded_voxels": 0}
    # the outer half voxel takes the target's edge values, not a blend with zero padding
    np.testing.assert_allclose(volume.target[0, 0, 0], coarse[0, 0, 0], rtol=1e-5)
    np.testing.assert_allclose(volume.target[-1, -1, -1], coarse[-1, -1, -1], rtol=1e-5)
    # source (0, 17, 20) lies at target index (-0.25, 8.25, 9.75): x clamped to the edge
    y, z = np.array([0.75, 0.25]), np.array([0.25, 0.75])
    np.testing.assert_allclose(volume.target[0, 17, 20], y @ coarse[0, 8:10, 9:11] @ z,
                               rtol=1e-5)


def test_coverage_ends_at_the_targets_voxel_edges_and_is_zero_beyond(sheet):
    _, flair, _ = pair_volumes(0)
    slab, affine = _middle_slab(flair)  # centres at z = 8..24, x, y = 0..34 of the source
    save_nii(sheet.parent / "s0_flair.nii.gz", slab, affine)
    volume = load_pair(_pairs(sheet)[0], RESAMPLE)
    covered = volume.coverage != 0
    # half a target voxel (one source voxel) beyond the outer centres: z = 7..25, all x, y
    assert covered[:, :, 7:26].all() and not covered[:, :, :7].any()
    assert not covered[:, :, 26:].any()
    assert (volume.target[~covered] == 0).all()
    # the outermost covered slices repeat the edge slices of the target
    np.testing.assert_allclose(volume.target[::2, ::2, 7], slab[:, :, 0], atol=1e-4)
    np.testing.assert_allclose(volume.target[::2, ::2, 25], slab[:, :, -1], atol=1e-4)


@pytest.mark.parametrize("offset", [5e-3, 0.3])
def test_a_flip_with_an_origin_offset_says_which_axes_and_by_how_much(sheet, offset):
    _, flair, _ = pair_volumes(0)
    ornt = np.array([[2, 1], [0, -1], [1, -1]], float)  # permuted, two axes flipped
    affine = AFFINE @ orientations.inv_ornt_aff(ornt, flair.shape)
    affine[0, 3] += offset
    save_nii(sheet.parent / "s0_flair.nii.gz", orientations.apply_orientation(flair, ornt),
             affine)
    with pytest.raises(MedgenInputError) as error:
        load_pair(_pairs(sheet)[0], SETTINGS)
    message = str(error.value)
    assert "not a permutation or flip" not in message
    assert re.search(
        r"not on one voxel grid \(its axes are permuted \(stored axis 0 -> 1, 1 -> 2, "
        r"2 -> 0\) and flipped \(stored axes 0, 1\): stored PIR, the source grid RAS; once "
        rf"reoriented, affine: origin off by {offset:.3g} mm \({offset:.3g}, 0, 0 along x, "
        r"y, z\); tolerance 0.001 mm\); set synthesis.resample_target: true to resample it "
        r"onto the source grid .*also undoes the permutation/flip of its axes", message), message
    assert load_pair(_pairs(sheet)[0], RESAMPLE).grid["target"]["how"] == "resampled"


def test_grids_match_within_a_documented_tolerance_measured_at_every_voxel(sheet):
    from medgen.tasks.synthesis.pairs import grid_offset, grid_tolerance

    assert grid_tolerance(AFFINE) == 1e-3  # 1e-4 of a 1.5 mm voxel is less
    assert grid_tolerance(np.diag([20.0, 20.0, 20.0, 1.0])) == pytest.approx(2e-3)
    _, flair, _ = pair_volumes(0)
    ornt = np.array([[0, -1], [1, -1], [2, 1]], float)
    stored = orientations.apply_orientation(flair, ornt)
    # float32 rounding of a converter's affine: reoriented exactly
    affine = (AFFINE @ orientations.inv_ornt_aff(ornt, flair.shape)).astype(np.float32)
    affine[:3, 3] += np.float32(4e-4)
    save_nii(sheet.parent / "s0_flair.nii.gz", stored, affine.astype(float))
    assert load_pair(_pairs(sheet)[0], SETTINGS).grid["target"]["how"] == "reoriented"
    # a spacing off by 5e-4 mm per voxel (within 1e-3 entry by entry) adds up across the grid
    spacing = AFFINE + np.diag([0, 0, 5e-4, 0])
    assert grid_offset(spacing, AFFINE, flair.shape) == pytest.approx(33 * 5e-4)
    save_nii(sheet.parent / "s0_flair.nii.gz", flair, spacing)
    with pytest.raises(MedgenInputError, match=(
            r"not on one voxel grid \(affine: voxel axes \(spacing/direction\) off by up to "
            r"0.0005 mm per voxel: voxel centres up to 0.0165 mm apart; tolerance 0.001 mm")
            ) as error:
        load_pair(_pairs(sheet)[0], SETTINGS)
    assert "origin" not in str(error.value) and "flip" not in str(error.value)


def test_a_ct_in_hu_with_its_background_set_to_0_is_refused_as_such(sheet):
    ct = _ct()
    body = ct > -500
    _write_ct(sheet, np.where(body, ct, 0.0).astype(np.float32))  # masked to the body
    with pytest.raises(MedgenInputError) as error:
        load_pair(_pairs(sheet)[0], CT)
    message = str(error.value)
    assert "rescale intercept" not in message
    assert re.search(r"CT target .*s0_flair.nii.gz: background set to 0 instead of air\? .*"
                     r"7[0-9] % of its voxels are exactly 0 and the others reach -1[0-9][0-9]"
                     r"(\.[0-9]+)? HU .*Set those voxels to -1000 HU", message), message


def test_a_ct_with_lungs_and_its_background_set_to_0_is_warned(sheet, caplog):
    ct = _ct()
    ct[8:14, 10:26, 10:24] = -850  # lungs: air inside the body passes the air check
    _write_ct(sheet, np.where(ct > -950, ct, 0.0).astype(np.float32))
    with caplog.at_level(logging.WARNING):
        load_pair(_pairs(sheet)[0], CT)
    assert re.search(r"CT target .*s0_flair.nii.gz: background set to 0 instead of air\? "
                     r"[67][0-9] % of its voxels are exactly 0 .*set those voxels to -1000 HU",
                     caplog.text), caplog.text


def test_stored_ct_values_with_air_at_0_still_blame_the_intercept(sheet):
    ct = _ct()
    stored = np.where(ct > -500, np.rint(ct + 1024), 0).astype(np.uint16)  # air stored as 0
    _write_ct(sheet, stored)
    with pytest.raises(MedgenInputError, match=(
            r"likely a CT written without its rescale intercept .*7[0-9] % of its voxels are "
            r"exactly 0: if that is a background set to 0, set it to -1000 HU instead")):
        load_pair(_pairs(sheet)[0], CT)


@pytest.mark.parametrize("covered, total, minimum, shown", [
    (4998, 10000, 0.5, "49.98"), (49999, 100000, 0.5, "49.999"), (5000, 10000, 0.5, None),
    (3333, 10000, 1 / 3, "33.3")])
def test_a_coverage_near_the_minimum_is_shown_with_the_decimals_that_tell_them_apart(
        covered, total, minimum, shown):
    from medgen.tasks.synthesis.pairs import SynthesisPair, _check_coverage

    mask = np.ones(total, bool)
    coverage = np.arange(total) < covered
    pair = SynthesisPair("s0", "train", {"t2": "t2.nii.gz"}, "flair", "flair.nii.gz")
    if shown is None:  # exactly the minimum passes
        assert _check_coverage(pair, coverage, mask, {}, minimum) is not None
        return
    with pytest.raises(MedgenInputError, match=(
            rf"covers only {shown} % of the mask .*expected at least {100 * minimum:g} %")):
        _check_coverage(pair, coverage, mask, {}, minimum)
