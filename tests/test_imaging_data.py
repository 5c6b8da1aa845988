"""Imaging readers, preprocessing, sample sheets: good input; one clear error per bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgen.config import fill_defaults, load_schema
from medgen.data.imaging import readers
from medgen.data.imaging.sheet import assign_splits, read_sample_sheet
from medgen.errors import MedgenInputError
from medgen.tasks.anomaly import slices
from medgen.tasks.anomaly.prepare import load_split, prepare_images


def anomaly_cfg(**overrides):
    cfg = fill_defaults(load_schema()["properties"]["anomaly"], {"kind": "volumes"})
    cfg.update(image_size=16, slice_size=24, patch_stride=8, max_patches_per_subject=50)
    cfg.update(overrides)
    return cfg


def blob_volume(shape=(20, 22, 12), seed=0, lesion=False):
    """A bright ellipsoid 'brain' on a zero background (synthetic, for unit tests only)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    inside = (grid**2).sum(0) < 0.7
    data = np.where(inside, 100 + 10 * rng.standard_normal(shape), 0).astype(np.float32)
    label = np.zeros(shape, np.float32)
    if lesion:
        label[8:12, 9:13, 5:8] = 2
        data[label > 0] += 80
    return data, label


def save_nii(path: Path, data, affine=None) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), path)
    return path


def write_sheet(path: Path, rows: list[dict[str, str]]) -> Path:
    header = list(rows[0])
    lines = ["\t".join(header)] + ["\t".join(r[h] for h in header) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def subjects(tmp_path):
    """Three synthetic subjects with t1, t2 and a label map; one per split."""
    rows = []
    for i, split in enumerate(["train", "val", "test"]):
        data, label = blob_volume(seed=i, lesion=split != "train")
        rows.append({
            "subject": f"s{i}", "split": split,
            "t1": str(save_nii(tmp_path / f"s{i}_t1.nii.gz", data).name),
            "t2": str(save_nii(tmp_path / f"s{i}_t2.nii.gz", 0.5 * data).name),
            "label": str(save_nii(tmp_path / f"s{i}_seg.nii.gz", label).name),
        })
    return rows


def test_prepare_volumes_writes_splits_with_labels(tmp_path, subjects):
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    out = prepare_images(sheet, anomaly_cfg(modalities=["t1", "t2"], unit="patch"), 0,
                         tmp_path / "out")
    assert set(out) == {"train", "val", "test"}
    train, test = load_split(out["train"]), load_split(out["test"])
    assert train["images"].shape[1:] == (2, 16, 16) and (train["y"] == 0).all()
    assert test["images"].shape[1:] == (2, 24, 24)
    assert set(np.unique(test["y"])) == {0, 1}  # slices through the lesion and beside it
    assert 0 <= test["images"].min() and test["images"].max() <= 1
    anomalous = test["y"] == 1
    assert (test["labels_map"][anomalous].sum(axis=(1, 2)) > 0).all()
    assert (test["labels_map"][~anomalous].sum(axis=(1, 2)) == 0).all()
    assert (tmp_path / "out" / "provenance.json").exists()


def test_cached_rerun_does_not_read_files_again(tmp_path, subjects, monkeypatch):
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    cfg = anomaly_cfg(modalities=["t1"])
    first = load_split(prepare_images(sheet, cfg, 0, tmp_path / "a", tmp_path / "cache")["test"])

    def no_reading(*args, **kwargs):
        raise AssertionError("the cache should have served this volume")

    monkeypatch.setattr("medgen.data.imaging.transforms.read_volume", no_reading)
    second = load_split(prepare_images(sheet, cfg, 0, tmp_path / "b", tmp_path / "cache")["test"])
    np.testing.assert_array_equal(first["images"], second["images"])


def test_reorient_to_ras(tmp_path):
    data, _ = blob_volume()
    data[0, 0, 0] = 500  # marker voxel at the array origin
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    save_nii(tmp_path / "a.nii.gz", data, lps)
    write_sheet(tmp_path / "s.tsv", [{"subject": "a", "split": "train", "t1": "a.nii.gz"}])
    from medgen.tasks.anomaly.prepare import volume_dataset
    rows = read_sample_sheet(tmp_path / "s.tsv", ["t1"])
    vol = volume_dataset(rows, anomaly_cfg(modalities=["t1"], crop_to_mask=False, mask="threshold",
                                           mask_threshold=-1, normalisation="zscore"), None)[0]
    image = np.asarray(vol["image"])[0]
    assert image.shape == data.shape
    assert np.unravel_index(image.argmax(), image.shape) == (data.shape[0] - 1,
                                                              data.shape[1] - 1, 0)
    assert nib.aff2axcodes(np.asarray(vol["affine"])) == ("R", "A", "S")


def test_metaimage_reader(tmp_path):
    data = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
    header = ("ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n"
              "ElementSpacing = 0.5 1 2\nOffset = 10 20 30\nElementDataFile = LOCAL\n")
    path = tmp_path / "x.mha"
    path.write_bytes(header.encode() + data.T.tobytes())  # x varies fastest on disk
    volume, affine = readers.read_volume(path)
    np.testing.assert_array_equal(volume, data)
    np.testing.assert_allclose(affine[:3, 3], [-10, -20, 30])  # LPS -> RAS
    np.testing.assert_allclose(np.diag(affine)[:3], [-0.5, -1, 2])
    path.write_bytes(header.encode() + data.T.tobytes()[:10])
    with pytest.raises(MedgenInputError, match="truncated MetaImage"):
        readers.read_volume(path)


def test_truncated_nifti_is_one_clear_error(tmp_path, subjects):
    good = (tmp_path / subjects[0]["t1"]).read_bytes()
    (tmp_path / subjects[0]["t1"]).write_bytes(good[: len(good) // 2])
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match=r"s0_t1\.nii\.gz: cannot read image"):
        prepare_images(sheet, anomaly_cfg(modalities=["t1"]), 0, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.npz"))  # nothing half-written


@pytest.mark.parametrize("kind", ["nifti2d", "npz"])
def test_2d_file_where_3d_expected(tmp_path, subjects, kind):
    if kind == "nifti2d":
        save_nii(tmp_path / "flat.nii.gz", np.ones((20, 22), np.float32))
        subjects[0]["t1"] = "flat.nii.gz"
    else:
        np.savez(tmp_path / "flat.npz", train_images=np.ones((3, 8, 8), np.uint8))
        subjects[0]["t1"] = "flat.npz"
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match="3D volume"):
        prepare_images(sheet, anomaly_cfg(modalities=["t1"]), 0, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.npz"))


@pytest.mark.parametrize("mismatch", ["shape", "affine"])
def test_modalities_on_different_grids(tmp_path, subjects, mismatch):
    data, _ = blob_volume(shape=(18, 22, 12) if mismatch == "shape" else (20, 22, 12))
    affine = np.diag([1.0, 1.0, 1.5, 1.0]) if mismatch == "affine" else np.eye(4)
    save_nii(tmp_path / "s1_t2.nii.gz", data, affine)
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match="subject 's1': modality 't2' has shape"):
        prepare_images(sheet, anomaly_cfg(modalities=["t1", "t2"]), 0, tmp_path / "out")
    out = prepare_images(sheet, anomaly_cfg(modalities=["t1", "t2"], on_mismatch="resample"), 0,
                         tmp_path / "out")
    assert load_split(out["val"])["images"].shape[1] == 2


def test_empty_mask(tmp_path, subjects):
    save_nii(tmp_path / "s2_t1.nii.gz", np.zeros((20, 22, 12), np.float32))
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match="subject 's2': the nonzero mask is empty"):
        prepare_images(sheet, anomaly_cfg(modalities=["t1"]), 0, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.npz"))


def test_sheet_missing_file(tmp_path, subjects):
    subjects[1]["t1"] = "missing.nii.gz"
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match=r"line 3: file in column 't1' does not exist"):
        read_sample_sheet(sheet, ["t1"])


def test_sheet_duplicate_subject(tmp_path, subjects):
    subjects[2]["subject"] = "s0"
    subjects[2]["split"] = "train"
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match="duplicate subject ID 's0'"):
        read_sample_sheet(sheet, ["t1"])


def test_sheet_subject_in_two_splits(tmp_path, subjects):
    subjects[2]["subject"] = "s0"
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match="subject 's0' is in two splits"):
        read_sample_sheet(sheet, ["t1"])


def test_sheet_bad_split_and_missing_column(tmp_path, subjects):
    subjects[0]["split"] = "training"
    sheet = write_sheet(tmp_path / "samples.tsv", subjects)
    with pytest.raises(MedgenInputError, match="line 2, column 'split'"):
        read_sample_sheet(sheet, ["t1"])
    with pytest.raises(MedgenInputError, match="lacks column"):
        read_sample_sheet(sheet, ["flair"])



@pytest.mark.parametrize("text, message", [
    # a header separated by spaces: one column, while the rows have four cells
    ("subject split t1 label\ns0\ttrain\ts0_t1.nii.gz\ts0_seg.nii.gz\n",
     r"line 2: 4 tab-separated cells, but the header \(line 1\) names 1 column"),
    ("# my sheet\nsubject\tsplit\tt1\ns0\ttrain\ts0_t1.nii.gz\n",
     r"line 2: 3 tab-separated cells, but the header \(line 1\)"),
    # the label column was left out of the header, its cells were not
    ("subject\tsplit\tt1\ns0\ttrain\ts0_t1.nii.gz\ts0_seg.nii.gz\n",
     "line 2: 4 tab-separated cells, but the header"),
    ("subject\tsplit\tt1\tt1\ns0\ttrain\ts0_t1.nii.gz\ts1_t1.nii.gz\n",
     "line 1: column\\(s\\) 't1' named twice in the header"),
])
def test_malformed_sheets_are_refused_naming_the_line(tmp_path, subjects, text, message):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(text)
    with pytest.raises(MedgenInputError, match=message):
        read_sample_sheet(sheet, ["t1"])


def test_sheet_encoding_folder_bom_and_line_numbers(tmp_path, subjects):
    sheet = tmp_path / "samples.tsv"
    sheet.write_bytes(b"subject\tsplit\tt1\ns\xe9\ttrain\ts0_t1.nii.gz\n")
    with pytest.raises(MedgenInputError, match=r"is not UTF-8 text \(byte 0xe9"):
        read_sample_sheet(sheet, ["t1"])
    with pytest.raises(MedgenInputError, match="is a folder; expected a tab-separated"):
        read_sample_sheet(tmp_path, ["t1"])
    # Excel's byte-order mark and padded header names are read; a blank line is counted
    sheet.write_text("\ufeffsubject \tsplit\tt1\n\ns0\ttrain\ts0_t1.nii.gz\n"
                     "s1\ttest\tmissing.nii.gz\n", encoding="utf-8")
    with pytest.raises(MedgenInputError, match="line 4: file in column 't1' does not exist"):
        read_sample_sheet(sheet, ["t1"])


def test_subjects_of_one_group_share_a_split(tmp_path, subjects):
    rows = []
    for i in range(12):  # six patients, two scans each
        rows.append({"subject": f"scan{i}", "group": f"patient{i // 2}",
                     "t1": subjects[0]["t1"]})
    sheet = write_sheet(tmp_path / "samples.tsv", rows)
    split = {r.subject: r.split for r in read_sample_sheet(
        sheet, ["t1"], {"val_fraction": 0.2, "test_fraction": 0.3})}
    for i in range(0, 12, 2):
        assert split[f"scan{i}"] == split[f"scan{i + 1}"], split
    assert set(split.values()) == {"train", "val", "test"}

def test_group_split_keeps_subjects_apart():
    subjects = [f"p{i}" for i in range(20)]
    split = assign_splits(subjects, 0.2, 0.3, seed=1)
    assert sorted(split) == sorted(subjects)
    assert [list(split.values()).count(s) for s in ("train", "val", "test")] == [10, 4, 6]
    assert split == assign_splits(list(reversed(subjects)), 0.2, 0.3, seed=1)


def test_unit_labels_threshold():
    y = slices.unit_labels(np.array([0, 1, 10]), np.array([100, 100, 100]), threshold=0.05)
    assert y.tolist() == [0, -1, 1]


@pytest.mark.realdata
def test_dicom_series_tilt_refused_or_corrected(shared_data):
    folder = shared_data / "imaging" / "ct" / "dcmqa_GE_head"
    with pytest.raises(MedgenInputError, match="gantry tilt 18.5 degrees"):
        readers.read_volume(folder)
    volume, affine = readers.read_volume(folder, dicom_tilt="correct")
    assert volume.shape[:2] == (512, 512)
    # the stack runs along z while the slice plane is tilted: a sheared affine
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    cos = abs(normal @ affine[:3, 2]) / np.linalg.norm(normal) / np.linalg.norm(affine[:3, 2])
    assert np.degrees(np.arccos(cos)) == pytest.approx(18.5, abs=0.3)
    assert volume.min() >= -2000 and volume.max() > 1000  # Hounsfield units (GE pads -1500)
    assert volume.shape[2] == 37  # 152 mm of 4.22-7.38 mm steps regridded at the median 4.22


@pytest.mark.realdata
def test_dicom_folder_with_mixed_series(shared_data, tmp_path):
    import pydicom

    source = shared_data / "imaging" / "ct" / "dcmqa_GE_head"
    for name in ("01.dcm", "02.dcm", "03.dcm"):
        shutil.copy(source / name, tmp_path / name)
    other = pydicom.dcmread(tmp_path / "03.dcm")
    other.SeriesInstanceUID = other.SeriesInstanceUID + ".9"
    other.save_as(tmp_path / "03.dcm")
    with pytest.raises(MedgenInputError, match="holds 2 DICOM series"):
        readers.read_volume(tmp_path)


@pytest.mark.realdata
def test_analyze_ct_and_truncated_copy(shared_data, tmp_path):
    source = shared_data / "imaging" / "ct" / "cmtk_cad001"
    volume, affine = readers.read_volume(source / "cad001_ct.hdr")
    assert volume.shape == (128, 128, 23) and volume.min() < -900
    shutil.copy(source / "cad001_ct.hdr", tmp_path)
    payload = gzip.decompress((source / "cad001_ct.img.gz").read_bytes())
    (tmp_path / "cad001_ct.img.gz").write_bytes(gzip.compress(payload)[:5000])
    with pytest.raises(MedgenInputError, match="cannot read image"):
        readers.read_volume(tmp_path / "cad001_ct.hdr")


@pytest.mark.realdata
def test_brats_subject_preprocessing(shared_data, tmp_path):
    root = shared_data / "imaging" / "brats"
    rows = [{"subject": s, "split": sp, "flair": f"{s}/{s}_flair.nii.gz",
             "label": f"{s}/{s}_seg.nii.gz"}
            for s, sp in (("BraTS2021_00000", "train"), ("BraTS2021_00002", "test"))]
    sheet = write_sheet(tmp_path / "samples.tsv", rows)
    cfg = anomaly_cfg(modalities=["flair"], target_spacing=[3.0, 3.0, 3.0], slice_size=64,
                      unit="patch", image_size=32, data_root=str(root))
    out = prepare_images(sheet, cfg, 0, tmp_path / "out")
    test = load_split(out["test"])
    assert (test["y"] == 1).sum() > 5 and (test["y"] == 0).sum() > 5
    assert len(load_split(out["train"])["images"]) > 20
    # residual maps of slices go back into the input's grid, on the brain
    from medgen.tasks.anomaly.inference import score_anomalies
    from medgen.tasks.anomaly.scorers import fit_pca

    pca = fit_pca(out["train"], 5, tmp_path / "pca.npz")
    score_anomalies("pca", pca, out["test"], tmp_path / "scores", "test",
                    geometry_path=tmp_path / "out" / "volumes.json")
    source = nib.load(root / "BraTS2021_00002" / "BraTS2021_00002_flair.nii.gz")
    residual = nib.load(tmp_path / "scores" / "residuals_test" / "BraTS2021_00002_residual.nii.gz")
    assert residual.shape == source.shape
    np.testing.assert_allclose(residual.affine, source.affine)
    on = np.asarray(residual.dataobj) > 0.05
    assert on.sum() > 1000 and (np.asarray(source.dataobj)[on] > 0).mean() > 0.9
    # the same path applied to the preprocessed FLAIR slices recovers the input FLAIR
    from medgen.tasks.anomaly.outputs import write_niftis

    test = load_split(out["test"])
    geometry = __import__("json").loads((tmp_path / "out" / "volumes.json").read_text())
    write_niftis(tmp_path / "back", test, test["images"][:, 0], geometry)
    back = np.asarray(nib.load(tmp_path / "back" / "BraTS2021_00002_residual.nii.gz").dataobj)
    flair = np.asarray(source.dataobj, dtype=np.float32)
    brain = (back > 0) & (flair > 0)
    assert np.corrcoef(back[brain], flair[brain])[0, 1] > 0.9


def test_undo_pad_or_crop_inverts_slicing():
    from medgen.tasks.anomaly.outputs import undo_pad_or_crop

    for shape in ((21, 30), (40, 17), (24, 24)):
        arr = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        padded = slices.pad_or_crop(__import__("torch").as_tensor(arr)[None], 24)[0].numpy()
        back = undo_pad_or_crop(padded, list(shape))
        kept = back != 0
        np.testing.assert_array_equal(back[kept], arr[kept])
        assert kept.sum() >= min(shape[0], 24) * min(shape[1], 24) - 1


REAL_VOLUMES = {
    "brats_flair": "imaging/brats/BraTS2021_00000/BraTS2021_00000_flair.nii.gz",
    "ct_trunk": "imaging/ct/totalseg_example_sm/example_ct_sm.nii.gz",
}


@pytest.mark.realdata
@pytest.mark.parametrize("volume", sorted(REAL_VOLUMES))
@pytest.mark.parametrize("layout", ["mha_compressed", "mhd_raw", "mha_oblique"])
def test_metaimage_written_by_simpleitk_matches_nifti(shared_data, tmp_path, volume, layout):
    """Real volumes written as MetaImage by ITK (an independent implementation) read back to
    the same voxels and the same RAS affine as the NIfTI they came from."""
    import SimpleITK as sitk

    source = shared_data / REAL_VOLUMES[volume]
    image = sitk.ReadImage(str(source))
    expected = nib.load(source)
    affine = expected.affine.copy()
    if layout == "mha_oblique":  # a tilted acquisition: 20 degrees about the x axis (LPS)
        c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
        tilt = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
        image.SetDirection((tilt @ np.array(image.GetDirection()).reshape(3, 3)).ravel())
        image.SetOrigin(tilt @ np.array(image.GetOrigin()))
        lps = np.diag([-1, -1, 1])
        affine[:3] = lps @ tilt @ lps @ affine[:3]
    path = tmp_path / ("x.mhd" if layout == "mhd_raw" else "x.mha")
    sitk.WriteImage(image, str(path), useCompression=layout != "mhd_raw")
    data, got_affine = readers.read_volume(path)
    np.testing.assert_array_equal(data, np.asarray(expected.dataobj, dtype=np.float32))
    np.testing.assert_allclose(got_affine, affine, atol=1e-4)


def test_synthetic_anomalies_in_half_the_healthy_evaluation_slices(tmp_path, subjects):
    from medgen.tasks.anomaly.synthetic_anomalies import insert_anomalies

    healthy = [{k: v for k, v in row.items() if k != "label"} for row in subjects]
    sheet = write_sheet(tmp_path / "samples.tsv", healthy)
    settings = {"activate": True, "fraction": 0.5, "kinds": ["intensity", "noise",
                                                             "deformation"],
                "radii": [3.0, 4.0], "intensity_shift": 0.4}
    cfg = anomaly_cfg(modalities=["t1"], unit="patch", synthetic_anomalies=settings)
    out = prepare_images(sheet, cfg, 0, tmp_path / "out")
    clean = prepare_images(sheet, anomaly_cfg(modalities=["t1"], unit="patch"), 0,
                           tmp_path / "clean")
    for split in ("val", "test"):
        data, before = load_split(out[split]), load_split(clean[split])
        n = len(data["y"])
        assert data["y"].sum() == round(0.5 * n)  # half hold one anomaly, half none
        anomalous = data["y"] == 1
        # each anomalous slice changed where its mask says, and only inside the brain mask
        assert (data["labels_map"][anomalous].sum(axis=(1, 2)) > 0).all()
        assert not (data["labels_map"] & (1 - data["masks"])).any()
        assert np.array_equal(data["images"][~anomalous], before["images"][~anomalous])
        assert set(data["anomaly_kind"][anomalous]) <= set(settings["kinds"])
    # seeded: the same anomalies again; training data untouched
    again = load_split(prepare_images(sheet, cfg, 0, tmp_path / "again")["test"])
    assert np.array_equal(again["images"], load_split(out["test"])["images"])
    assert np.array_equal(load_split(out["train"])["images"],
                          load_split(clean["train"])["images"])
    # every kind changes the image where its label says
    table = load_split(clean["test"])
    for kind in settings["kinds"]:
        one = insert_anomalies(table, {**settings, "kinds": [kind], "fraction": 1.0}, 3)
        for i in range(len(one["y"])):
            region = one["labels_map"][i].astype(bool)
            assert np.abs(one["images"][i, 0] - table["images"][i, 0])[region].mean() > 0.01
    # a subject none of whose slices passed the mask filter: nothing to insert, no crash
    empty = {key: value[:0] for key, value in table.items()}
    none = insert_anomalies(empty, settings, 3)
    assert len(none["y"]) == 0 and none["anomaly_fraction"].shape == (0,)
    # refused where real lesion labels exist
    with pytest.raises(MedgenInputError, match="synthetic anomalies are for healthy data"):
        prepare_images(write_sheet(tmp_path / "labelled.tsv", subjects), cfg, 0,
                       tmp_path / "bad")


def test_mni152_demo_val_and_test_are_slabs_apart(tmp_path):
    from medgen.tasks.anomaly.demo import GAP_SLICES, SLAB_SLICES, mni152_demo_sheet

    sheet = mni152_demo_sheet(tmp_path, slice_axis=2)
    rows = {r.subject: r for r in read_sample_sheet(sheet, ["t1"], None, 0, None)}
    assert {r.split for r in rows.values()} == {"train", "val", "test"}
    # world z of every slice of each split (2-mm voxels): slabs of 8, 2 slices left out
    z = {"val": [], "test": []}
    for row in rows.values():
        if row.split == "train":
            continue
        image = nib.load(row.images["t1"])
        assert image.shape[2] <= SLAB_SLICES
        z[row.split] += [(image.affine @ [0, 0, k, 1])[2] for k in range(image.shape[2])]
    assert len(z["val"]) > 20 and len(z["test"]) > 20
    nearest = min(abs(a - b) for a in z["val"] for b in z["test"])
    assert nearest == pytest.approx(2.0 * (GAP_SLICES + 1))  # never neighbours
    # both splits span the brain: each has slabs below and above the middle
    middle = np.median(z["val"] + z["test"])
    for values in z.values():
        assert min(values) < middle < max(values)
