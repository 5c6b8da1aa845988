"""Synthesis inputs: paired volumes, normalisation, the prepared folder and its patches;
one clear error per bad input, nothing half-written."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from medgen.data.imaging import intensity
from medgen.errors import MedgenInputError
from medgen.tasks.synthesis.loaders import training_data
from medgen.tasks.synthesis.pairs import load_pair, read_pairs
from medgen.tasks.synthesis.prepare import (
    load_subject,
    mask_box,
    prepare_synthesis,
    read_manifest,
    uncrop,
)
from tests.helpers.synthesis_data import (
    AFFINE,
    CT_SETTINGS,
    REAL_CT,
    SETTINGS,
    ct_pair_sheet,
    pair_volumes,
    save_nii,
    write_subjects,
)

HP = {"patch_size": 16, "samples_per_volume": 4, "batch_size": 4}


@pytest.fixture
def sheet(tmp_path):
    return write_subjects(tmp_path / "raw")


def _rewrite(sheet, subject_file, data, affine=AFFINE):
    save_nii(sheet.parent / subject_file, data, affine)


def _pairs(sheet, **kw):
    return read_pairs(sheet, ["t2"], "flair", **kw)


def test_pairs_load_on_one_grid_with_mask_and_label(sheet):
    pairs = _pairs(sheet, validation_subject="s2")
    assert [p.split for p in pairs] == ["train", "train", "val", "test"]
    volume = load_pair(pairs[0], SETTINGS)
    assert volume.source.shape == (1, 36, 36, 34) and volume.target.shape == (36, 36, 34)
    assert volume.mask.any() and (volume.label > 0).any()
    np.testing.assert_allclose(volume.affine, AFFINE)


BAD_PAIRS = {  # problem -> what the error says (subject s<i>)
    "shape": r"s{i}_flair.nii.gz and .*s{i}_t2.nii.gz are not on one voxel grid \(shape",
    "affine": r"s{i}_flair.nii.gz and .*s{i}_t2.nii.gz are not on one voxel grid \(affine",
    "4d": r"s{i}_flair.nii.gz: expected a 3D volume, got an image of shape \(36, 36, 34, 2\)",
    "4d_source": r"s{i}_t2.nii.gz: expected a 3D volume, got an image of shape \(36, 36, 34, 2\)",
    "nan": r"target 'flair' .*s{i}_flair.nii.gz has 3 NaN or infinite voxel",
    "nan_source": r"source 't2' .*s{i}_t2.nii.gz has 3 NaN or infinite voxel",
    "copy": r"subject 's{i}': source 't2' \(.*s{i}_t2.nii.gz\) and target 'flair' "
            r"\(.*s{i}_flair.nii.gz\) hold the same voxels",
    "ct_range": r"CT target .*s{i}_flair.nii.gz is outside the expected Hounsfield range "
                r"\[-1100, 4000\]: maximum 5000 > 4000",
}


def _break(sheet, problem, i=0):
    """Rewrite subject s<i>'s files to show ``problem``; returns the settings to load with."""
    t2, flair, _ = pair_volumes(i)
    if problem == "shape":
        _rewrite(sheet, f"s{i}_flair.nii.gz", flair[:, :, :30])
    elif problem == "affine":
        _rewrite(sheet, f"s{i}_flair.nii.gz", flair, AFFINE + np.diag([0, 0, 0.1, 0]))
    elif problem == "4d":
        _rewrite(sheet, f"s{i}_flair.nii.gz", np.stack([flair, flair], -1))
    elif problem == "4d_source":
        _rewrite(sheet, f"s{i}_t2.nii.gz", np.stack([t2, t2], -1))
    elif problem == "nan":
        flair[1, 2, 3:6] = np.nan
        _rewrite(sheet, f"s{i}_flair.nii.gz", flair)
    elif problem == "copy":  # the T2 file copied under the FLAIR's name
        _rewrite(sheet, f"s{i}_flair.nii.gz", t2)
    elif problem == "nan_source":
        t2[1, 2, 3:6] = np.nan
        _rewrite(sheet, f"s{i}_t2.nii.gz", t2)
    else:  # a 'CT' target with a voxel beyond dense bone (e.g. a missing rescale slope)
        flair = flair - 1000
        flair[4, 4, 4] = 5000
        _rewrite(sheet, f"s{i}_flair.nii.gz", flair)
        return {**SETTINGS, "target_is_ct": True, "target_normalisation": "ct_window"}
    return SETTINGS


@pytest.mark.parametrize("problem", sorted(BAD_PAIRS))
def test_bad_pairs_fail_naming_the_files(sheet, problem):
    settings = _break(sheet, problem)
    with pytest.raises(MedgenInputError, match=BAD_PAIRS[problem].format(i=0)):
        load_pair(_pairs(sheet)[0], settings)


@pytest.mark.parametrize("problem", sorted(BAD_PAIRS))
def test_a_bad_last_pair_leaves_no_prepared_folder(sheet, tmp_path, problem):
    # the first three subjects are fine and prepared before s3 fails
    settings = _break(sheet, problem, i=3)
    if problem == "ct_range":  # every target must then be a plausible CT
        for i in range(3):
            _rewrite(sheet, f"s{i}_flair.nii.gz", pair_volumes(i)[1] - 1000)
    with pytest.raises(MedgenInputError, match=BAD_PAIRS[problem].format(i=3)):
        prepare_synthesis(_pairs(sheet), settings, tmp_path / "p")
    assert list(tmp_path.iterdir()) == [sheet.parent]


def test_resample_target_puts_it_on_the_source_grid(sheet):
    _, flair, _ = pair_volumes(0)
    shifted = AFFINE.copy()
    shifted[0, 3] = 2.4  # two voxels along x
    _rewrite(sheet, "s0_flair.nii.gz", flair[:, :, :30], shifted)
    volume = load_pair(_pairs(sheet)[0], {**SETTINGS, "resample_target": True})
    assert volume.target.shape == volume.source.shape[1:]
    # voxel i of the source grid is voxel i - 2 of the moved target
    np.testing.assert_allclose(volume.target[20, 18, 15], flair[18, 18, 15], rtol=1e-4)
    assert flair[18, 18, 15] > 0


def test_missing_modality_same_file_and_bad_validation_subject(sheet):
    text = sheet.read_text().splitlines()
    cells = text[2].split("\t")
    cells[3] = ""  # s1 has no flair
    sheet.write_text("\n".join([*text[:2], "\t".join(cells), *text[3:]]) + "\n")
    with pytest.raises(MedgenInputError, match="line 3: column 'flair' is empty"):
        _pairs(sheet)
    cells[3] = cells[2]  # flair cell names the t2 file
    sheet.write_text("\n".join([*text[:2], "\t".join(cells), *text[3:]]) + "\n")
    with pytest.raises(MedgenInputError, match="source 't2' and target 'flair' are the same"):
        _pairs(sheet)
    with pytest.raises(MedgenInputError,
                       match="'synthesis.target' is 'flair', which is also in synthesis.sources"):
        read_pairs(sheet, ["t2", "flair"], "flair")
    cells[3] = "./" + cells[2]  # the same file spelt differently
    sheet.write_text("\n".join([*text[:2], "\t".join(cells), *text[3:]]) + "\n")
    with pytest.raises(MedgenInputError, match="source 't2' and target 'flair' are the same"):
        _pairs(sheet)
    (sheet.parent / "link_t2.nii.gz").symlink_to(sheet.parent / cells[2])
    cells[3] = "link_t2.nii.gz"  # or through a link
    sheet.write_text("\n".join([*text[:2], "\t".join(cells), *text[3:]]) + "\n")
    with pytest.raises(MedgenInputError, match="source 't2' and target 'flair' are the same"):
        _pairs(sheet)
    cells[3] = "s1_gone.nii.gz"  # the cell names a file that is not there
    sheet.write_text("\n".join([*text[:2], "\t".join(cells), *text[3:]]) + "\n")
    with pytest.raises(MedgenInputError, match=r"line 3: file in column 'flair' does not "
                                               r"exist: .*s1_gone.nii.gz"):
        _pairs(sheet)
    sheet.write_text("\n".join([*text[:2], *text[3:]]) + "\n")
    with pytest.raises(MedgenInputError, match="'s3', which is not a training subject"):
        _pairs(sheet, validation_subject="s3")


def test_ct_target_outside_hounsfield_range_says_which_bound(sheet):
    ct_settings = {**SETTINGS, "target_is_ct": True}
    _, flair, _ = pair_volumes(0)
    _rewrite(sheet, "s0_flair.nii.gz", flair * 0 - 1000)  # plausible: air
    load_pair(_pairs(sheet)[0], ct_settings)
    bad = flair - 1000
    bad[0, 0, 0], bad[1, 1, 1] = -3024, 5000
    _rewrite(sheet, "s0_flair.nii.gz", bad)
    with pytest.raises(MedgenInputError,
                       match=r"minimum -3024 < -1100 and maximum 5000 > 4000"):
        load_pair(_pairs(sheet)[0], ct_settings)


@pytest.mark.parametrize("method", intensity.METHODS)
def test_normalisation_inverts_and_matches_its_definition(method):
    rng = np.random.default_rng(0)
    volume = (rng.gamma(2.0, 100.0, (20, 20, 20)) - (1000 if method == "ct_window" else 0))
    mask = np.zeros(volume.shape, bool)
    mask[3:17, 3:17, 3:17] = True
    params = intensity.fit(volume, mask, method)
    assert json.loads(json.dumps(params)) == params  # plain values, storable
    scaled = intensity.apply(volume, params, mask)
    inside = scaled[mask]
    assert (scaled[~mask] == 0).all()
    if method == "p99":
        assert np.isclose(np.quantile(inside, 0.99), 1.0, atol=1e-2) and inside.max() > 1
    elif method == "brasyn":
        assert inside.min() == 0 and inside.max() == 1
    elif method == "zscore":
        assert abs(inside.mean()) < 1e-4 and abs(inside.std() - 1) < 1e-2
    back = intensity.invert(scaled, params, mask)
    kept = mask if not params["clip"] else mask & (volume >= params["low"]) & (
        volume <= params["high"])
    np.testing.assert_allclose(back[kept], volume[kept], rtol=1e-4, atol=1e-2)
    assert (back[~mask] == params["background"]).all()


def test_normalisation_refuses_unknown_method_and_constant_volume():
    mask = np.ones((4, 4, 4), bool)
    with pytest.raises(MedgenInputError, match="'minmax' is unknown; one of: percentile, p99"):
        intensity.fit(np.ones((4, 4, 4)), mask, "minmax")
    with pytest.raises(MedgenInputError, match="constant inside the mask"):
        intensity.fit(np.ones((4, 4, 4)), mask, "brasyn")


def test_p99_of_a_volume_without_positive_intensities_says_so():
    mask = np.ones((4, 4, 4), bool)
    with pytest.raises(MedgenInputError, match=r"'p99' needs a positive 99th percentile "
                                               r"inside the mask, got -1"):
        intensity.fit(-np.arange(1.0, 65.0).reshape(4, 4, 4), mask, "p99")


def test_normalisation_errors_name_subject_role_and_file(sheet, tmp_path):
    t2, flair, _ = pair_volumes(3)
    _rewrite(sheet, "s3_flair.nii.gz", np.where(t2 != 0, -flair - 1, 0))  # all negative
    with pytest.raises(MedgenInputError, match=r"^subject 's3', target 'flair' \(.*"
                       r"s3_flair.nii.gz\): intensity normalisation 'p99' needs a positive"):
        prepare_synthesis(_pairs(sheet), SETTINGS, tmp_path / "p")
    _rewrite(sheet, "s0_t2.nii.gz", np.where(t2 != 0, 50.0, 0))  # constant in the brain
    with pytest.raises(MedgenInputError, match=r"^subject 's0', source 't2' \(.*"
                       r"s0_t2.nii.gz\): intensity normalisation 'brasyn': the volume is "
                       r"constant inside the mask"):
        prepare_synthesis(_pairs(sheet), {**SETTINGS, "normalisation": "brasyn"},
                          tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_prepared_folder_is_cropped_normalised_and_invertible(sheet, tmp_path):
    out = prepare_synthesis(_pairs(sheet, validation_subject="s2"), SETTINGS, tmp_path / "p")
    manifest = read_manifest(out)
    info = manifest["subjects"]["s0"]
    arrays = load_subject(out, "s0")
    assert manifest["level"] == 1 and manifest["sources"] == ["t2"]
    assert arrays["source"].shape[1:] == arrays["target"].shape[1:] == arrays["mask"].shape[1:]
    target = uncrop(arrays["target"][0], info["box"], info["shape"])
    mask = uncrop(arrays["mask"][0], info["box"], info["shape"])
    # cropped to the brain's box plus a margin: the whole brain is kept
    assert info["box"] == mask_box(mask) and mask.sum() == arrays["mask"].sum()
    assert mask_box(mask, margin=0) != [[0, s] for s in info["shape"]]
    _, flair, _ = pair_volumes(0)
    back = intensity.invert(target, info["target_params"], mask)
    np.testing.assert_allclose(back[mask > 0], flair[mask > 0], rtol=1e-4)
    # a folder prepared when the auto-context level was called a stage: refused, not a KeyError
    old = {k: v for k, v in manifest.items() if k != "level"}
    (out / "pairs.json").write_text(json.dumps({**old, "stage": 1}))
    with pytest.raises(MedgenInputError, match=rf"^{out} was prepared by an earlier medgen "
                       r"\(pairs.json records no auto-context 'level'\): delete it and rerun "
                       "prepare_synthesis"):
        read_manifest(out)


def test_patches_lie_in_the_mask_and_depend_on_seed_and_epoch_only(sheet, tmp_path):
    out = prepare_synthesis(_pairs(sheet, validation_subject="s2"), SETTINGS, tmp_path / "p")
    data = training_data(out, HP, seed=3, family="context_gan")
    assert data.dims == {"channels": 1, "patch_size": 16}
    assert data.signature["modalities"] == ["t2"] and data.signature["target"] == "flair"
    assert data.val is not None and data.provenance["validation_subjects"] == ["s2"]
    source, target, coverage = next(iter(data.train))
    assert source.shape == target.shape == coverage.shape == (4, 1, 16, 16, 16)
    assert (coverage == 1).all()  # every target covers its grid
    assert (source[:, 0, 8, 8, 8] != 0).all()  # patches centred on brain voxels

    def epoch(e):
        data.train.sampler.set_epoch(e)
        return torch.cat([b[0] for b in data.train])

    again = training_data(out, HP, seed=3, family="context_gan")
    again.train.sampler.set_epoch(1)
    assert torch.equal(epoch(1), torch.cat([b[0] for b in again.train]))
    assert not torch.equal(epoch(0), epoch(1))


def test_patch_larger_than_the_volume_is_refused(sheet, tmp_path):
    out = prepare_synthesis(_pairs(sheet), SETTINGS, tmp_path / "p")
    with pytest.raises(MedgenInputError,
                       match=r"patch size 40 is larger than the volume \(36, 36, 34\)"):
        training_data(out, {**HP, "patch_size": 40}, 0, "context_gan")


# Real CT (../shared/data/imaging/ct): NIfTI trunk CT, Analyze head CT, a GE head DICOM
# series. No registered MR/CT pair exists there, so the pairs below take a synthetic 'MR'
# derived from the CT itself: they test Hounsfield handling, not synthesis quality.
@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REAL_CT))
def test_real_ct_is_in_hounsfield_units_and_the_window_round_trips(shared_data, name):
    from medgen.data.imaging.readers import read_volume
    from medgen.tasks.synthesis.pairs import CT_HU_RANGE, check_ct_range

    path = shared_data / REAL_CT[name]
    ct, _ = read_volume(path)
    check_ct_range(ct, path)  # within [-1100, 4000]
    # air about -1000 HU, soft tissue about 0-100, bone several hundred and more
    assert -1100 <= np.percentile(ct, 1) <= -950 and ct.max() > 1000
    body = ct > -500
    assert -150 < np.median(ct[body]) < 150
    assert CT_HU_RANGE[0] <= ct.min() and ct.max() <= CT_HU_RANGE[1]
    params = intensity.fit(ct, body, "ct_window")
    assert (params["low"], params["high"]) == intensity.CT_WINDOW == (-1024.0, 3071.0)
    scaled = intensity.apply(ct, params, body)
    assert scaled[body].min() >= 0 and scaled[body].max() <= 1
    back = intensity.invert(scaled, params, body)
    window = body & (ct >= -1024) & (ct <= 3071)
    np.testing.assert_allclose(back[window], ct[window], atol=0.05)  # HU
    assert (back[~body] == -1024).all()  # outside the body: air


@pytest.mark.realdata
def test_real_dicom_ct_padding_is_refused_as_a_ct_target(shared_data):
    from medgen.data.imaging.readers import read_volume
    from medgen.tasks.synthesis.pairs import check_ct_range

    folder = shared_data / "imaging" / "ct" / "dcmqa_GE_head"
    ct, _ = read_volume(folder, dicom_tilt="correct")
    # GE writes -1500 outside the reconstructed field of view: not a Hounsfield value
    assert ct.min() == -1500 and ct.max() > 1000
    with pytest.raises(MedgenInputError, match=r"CT target .*dcmqa_GE_head is outside the "
                                               r"expected Hounsfield range .*minimum -1500 "
                                               r"< -1100"):
        check_ct_range(ct, folder)
    inside = ct > -1500
    check_ct_range(ct[inside], folder)  # the field of view itself is plausible


@pytest.mark.realdata
def test_real_ct_target_keeps_hounsfield_units_end_to_end(shared_data, tmp_path):
    from medgen.tasks.synthesis.inference import read_sidecar, write_subject

    ct_path = shared_data / REAL_CT["nifti_trunk"]
    sheet = ct_pair_sheet(tmp_path / "raw", ct_path)
    out = prepare_synthesis(read_pairs(sheet, ["mr"], "ct"), CT_SETTINGS, tmp_path / "p")
    manifest = read_manifest(out)
    info = manifest["subjects"]["ct1"]
    assert info["target_params"]["method"] == "ct_window"
    arrays = load_subject(out, "ct1")
    assert 0 <= arrays["target"].min() and arrays["target"].max() <= 1  # trained on [0, 1]
    # the prepared target itself as a 'prediction': written back in HU on the CT's grid
    path, = write_subject([arrays["target"][0]], manifest, "ct1", arrays["mask"][0],
                          tmp_path / "out", [{}])
    written = nib.load(path)
    ct = np.asarray(nib.load(ct_path).dataobj, dtype=np.float32)
    np.testing.assert_allclose(written.affine, nib.load(ct_path).affine, atol=1e-4)
    body = uncrop(arrays["mask"][0], info["box"], info["shape"]) > 0
    hu = np.asarray(written.dataobj)
    np.testing.assert_allclose(hu[body], np.clip(ct[body], -1024, 3071), atol=0.05)
    assert (hu[~body] == -1024).all() and read_sidecar(path)["units"] == "HU"


@pytest.mark.realdata
def test_real_ct_outside_the_hounsfield_range_is_refused_before_anything_is_written(
        shared_data, tmp_path):
    # the full TotalSegmentator example has one voxel at -1207 HU (below air)
    ct_path = shared_data / "imaging" / "ct" / "totalseg_example" / "example_ct.nii.gz"
    sheet = ct_pair_sheet(tmp_path / "raw", ct_path)
    with pytest.raises(MedgenInputError, match=r"CT target .*example_ct.nii.gz is outside the "
                                               r"expected Hounsfield range \[-1100, 4000\]"
                                               r": minimum -1207 < -1100"):
        prepare_synthesis(read_pairs(sheet, ["mr"], "ct"), CT_SETTINGS, tmp_path / "p")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
