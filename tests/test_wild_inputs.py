"""Files users meet in the wild (issue 19): each is read right or refused with one clear
MedgenInputError naming the file and what was expected; inputs are never modified.

Every input is a small file built here, shaped like the public one it stands for.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from medgen.data.expression import load_table, preprocess_expression
from medgen.data.imaging.transforms import MASK, MakeMaskd  # MONAI: imported once
from medgen.data.io.gctx import COL_META_PATH, MATRIX_PATH, ROW_META_PATH
from medgen.errors import MedgenInputError


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _barcodes(n: int, code: str = "01", prefix: str = "TCGA-A1") -> list[str]:
    return [f"{prefix}-{i:04d}-{code}A-11R-A000-13" for i in range(n)]


def _counts(samples: list[str], n_genes: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.poisson(rng.gamma(2.0, 30.0, size=n_genes), size=(len(samples), n_genes))
    return pd.DataFrame(values, index=samples, columns=[f"g{j}" for j in range(n_genes)])


def _table(path: Path, **extra) -> dict:
    return {"path": str(path), "format": "auto", "orientation": "samples_as_rows",
            "group": "LIHC", **extra}


# -- 2. already-logged values declared as counts ---------------------------------------------
def test_logged_values_declared_as_counts_are_refused(tmp_path):
    counts = _counts(_barcodes(20))
    path = tmp_path / "xena_log2.tsv"
    np.log2(counts + 1).to_csv(path, sep="\t")  # Xena's log2(x + 1), values up to ~8
    before = _digest(path)
    with pytest.raises(MedgenInputError, match=r"xena_log2\.tsv: declared as counts .* "
                       r"log-transformed already .*data_type: log_expression"):
        load_table(_table(path), "counts", barcode_labels=True)
    adata = load_table(_table(path), "log_expression", barcode_labels=True)
    assert np.allclose(adata.X, np.log2(counts.to_numpy() + 1))
    assert _digest(path) == before
    # mostly zeros (a sparse Xena table): the non-zero values decide
    sparse = counts.where(np.random.default_rng(1).random(counts.shape) < 0.3, 0)
    np.log2(sparse + 1).to_csv(tmp_path / "sparse_log2.tsv", sep="\t")
    with pytest.raises(MedgenInputError, match=r"sparse_log2\.tsv: declared as counts"):
        load_table(_table(tmp_path / "sparse_log2.tsv"), "counts", barcode_labels=True)


# -- 3. h5ad with normalised X and counts in a layer or .raw ------------------------------------
@pytest.mark.parametrize("where", ["layers/counts", "raw"])
def test_h5ad_counts_in_layer_or_raw(tmp_path, where):
    counts = _counts(_barcodes(10)).astype(float)
    normalised = np.log1p(counts.to_numpy() / counts.to_numpy().sum(1, keepdims=True) * 1e4)
    adata = ad.AnnData(X=counts.to_numpy(), obs=pd.DataFrame(index=counts.index),
                       var=pd.DataFrame(index=counts.columns))
    if where == "raw":
        adata.raw = adata.copy()
    else:
        adata.layers["counts"] = counts.to_numpy()
    adata.X = normalised
    path = tmp_path / "public.h5ad"
    adata.write_h5ad(path)
    before = _digest(path)
    with pytest.raises(MedgenInputError, match=rf"public\.h5ad: X holds non-integer .* while "
                       rf"{where} hold integer counts; set the table's layer to '{where}'"):
        load_table(_table(path), "counts", barcode_labels=True)
    read = load_table(_table(path, layer=where), "counts", barcode_labels=True)
    assert np.array_equal(read.X, counts.to_numpy())
    with pytest.raises(MedgenInputError, match=r"public\.h5ad has no matrix 'layers/umi'"):
        load_table(_table(path, layer="layers/umi"), "counts", barcode_labels=True)
    assert _digest(path) == before


# -- 4. the file's own sample metadata has a column medgen derives ----------------------------
def test_file_metadata_columns_that_medgen_derives_are_kept(tmp_path, caplog):
    samples, genes = _barcodes(4), ["g0", "g1", "g2"]
    path = tmp_path / "cmap.gctx"
    with h5py.File(path, "w") as handle:
        handle[MATRIX_PATH] = np.arange(12, dtype=np.float32).reshape(4, 3)
        handle[f"{COL_META_PATH}/id"] = np.array(samples, dtype="S")
        handle[f"{COL_META_PATH}/source"] = np.array(["lab A", "lab B"] * 2, dtype="S")
        handle[f"{COL_META_PATH}/patient"] = np.array(["p1", "p1", "p2", "p3"], dtype="S")
        handle[f"{ROW_META_PATH}/id"] = np.array(genes, dtype="S")
    with caplog.at_level(logging.WARNING):
        adata = load_table(_table(path), "counts", barcode_labels=True)
    assert adata.obs["source"].tolist() == ["LIHC"] * 4  # derived
    assert adata.obs["source_in_file"].tolist() == ["lab A", "lab B"] * 2  # the file's
    assert adata.obs["patient"].tolist() == [s[:12] for s in samples]
    assert adata.obs["patient_in_file"].tolist() == ["p1", "p1", "p2", "p3"]
    assert "kept as 'source_in_file'" in caplog.text


# -- 6. TCGA sample type names; 12-character patient barcodes ---------------------------------
def test_tcga_sample_type_names_and_patient_barcodes(tmp_path, caplog):
    samples = _barcodes(3, "01") + _barcodes(3, "06", "TCGA-B2") + _barcodes(2, "11", "TCGA-C3")
    path = tmp_path / "skcm.csv"
    _counts(samples).to_csv(path)
    adata = load_table(_table(path), "counts", barcode_labels=True)
    assert adata.obs["sample_type"].tolist() == (
        ["Primary Tumor"] * 3 + ["Metastatic"] * 3 + ["Solid Tissue Normal"] * 2)
    assert adata.obs["sample_type_code"].tolist() == ["01"] * 3 + ["06"] * 3 + ["11"] * 2
    assert adata.obs["tumor_normal"].tolist() == ["tumor"] * 6 + ["normal"] * 2

    patients = tmp_path / "clinical_patients.csv"
    _counts([s[:12] for s in samples]).to_csv(patients)
    with caplog.at_level(logging.WARNING):
        adata = load_table(_table(patients), "counts", barcode_labels=True)
    assert adata.obs["patient"].tolist() == [s[:12] for s in samples]
    assert set(adata.obs["sample_type"]) == {"unknown"}
    assert set(adata.obs["tumor_normal"]) == {"unknown"}
    assert "8 of 8 sample IDs are patient barcodes without a sample part" in caplog.text


# -- 7. duplicate sample IDs (several aliquots of one sample) ---------------------------------
def test_duplicate_sample_ids_refused_kept_first_or_averaged(tmp_path, expr_cfg, caplog):
    samples = _barcodes(30)
    frame = _counts(samples + samples[:3])  # 3 barcodes twice, as in the TCGA liver table
    frame.index = [s.replace("-", ".") for s in frame.index]  # R export spelling
    path = tmp_path / "lihc.parquet"
    frame.to_parquet(path)
    before = _digest(path)
    with pytest.raises(MedgenInputError, match=r"lihc\.parquet: duplicate sample IDs "
                       r"'TCGA-A1-0000-01A.*\(3 IDs in 6 rows\); set "
                       r"expression.duplicate_samples: first or mean"):
        load_table(_table(path), "counts", barcode_labels=True)
    first = load_table(_table(path), "counts", True, duplicates="first")
    assert first.n_obs == 30
    assert np.array_equal(first.X[0], frame.iloc[0].to_numpy())
    with caplog.at_level(logging.WARNING):
        mean = load_table(_table(path), "counts", True, duplicates="mean")
    assert np.allclose(mean.X[0], (frame.iloc[0].to_numpy() + frame.iloc[30].to_numpy()) / 2)
    assert np.array_equal(mean.X[5], frame.iloc[5].to_numpy())
    assert "(3 IDs): 6 rows merged into 3 samples (rows averaged)" in caplog.text
    # the setting reaches the reader through the validated config
    cfg = expr_cfg(duplicate_samples="mean", top_k_genes=5, labels=["tumor_normal"],
                   split={"stratify_by": None})
    out = preprocess_expression([_table(path)], cfg, 0, tmp_path / "o.h5ad", tmp_path / "s.tsv")
    assert out.n_obs == 30 and not out.obs_names.has_duplicates
    assert _digest(path) == before


# -- 13. non-UTF-8 strings in GCTX --------------------------------------------------------
def test_gctx_latin1_strings_are_read_and_reported(tmp_path, caplog):
    path = tmp_path / "lincs.gctx"
    with h5py.File(path, "w") as handle:
        handle[MATRIX_PATH] = np.ones((2, 3), dtype=np.float32)
        handle[f"{COL_META_PATH}/id"] = np.array([b"s1", b"s2"])
        handle[f"{COL_META_PATH}/pert_dose_unit"] = np.array([b"\xb5M", b"uM"])  # Latin-1 mu
        handle[f"{ROW_META_PATH}/id"] = np.array([b"g1", b"g2", b"g3"])
    with caplog.at_level(logging.WARNING):
        adata = load_table(_table(path), "counts", barcode_labels=False)
    assert adata.obs["pert_dose_unit"].tolist() == ["\u00b5M", "uM"]
    assert f"GCTX file {path}: 1 values of /0/META/COL/pert_dose_unit are not UTF-8 " \
           "(first at position 0" in caplog.text


# -- 5. a label with one class in the evaluated split ------------------------------------
def test_metric_undefined_on_a_one_class_test_split_is_nan(caplog):
    from medgen.tasks.expression.latent import latent_metrics, undefined_label_notes

    rng = np.random.default_rng(0)
    # melanoma: tumours (primary and metastatic) everywhere, the two normals in train only
    labels = np.array(["tumor"] * 38 + ["normal"] * 2, dtype=object)
    z = rng.normal(size=(40, 3))
    test = np.arange(40) < 10
    with caplog.at_level(logging.WARNING):
        notes = undefined_label_notes({"tumor_normal": labels}, test)
    metrics = latent_metrics(z, {"tumor_normal": labels}, ~test, test, k=5)
    for name in ("knn_accuracy", "knn_balanced_accuracy", "silhouette"):
        assert np.isnan(metrics[f"{name}_tumor_normal"]), name  # never 1.000
    assert notes == ["label 'tumor_normal': the test split holds 1 class (tumor); k-NN "
                     "accuracy, balanced accuracy and silhouette are undefined (NaN)"]
    assert notes[0] in caplog.text
    # 'unknown' (patient barcodes without a sample part) is no class; a one-class training
    # split makes the k-NN scores undefined too
    mixed = np.array(["tumor"] * 6 + ["unknown"] * 4 + ["tumor"] * 28 + ["normal"] * 2,
                     dtype=object)
    metrics = latent_metrics(z, {"tumor_normal": mixed}, ~test, test, k=5)
    assert np.isnan(metrics["knn_accuracy_tumor_normal"])
    notes = undefined_label_notes({"tumor_normal": mixed}, test, ~test)
    assert "test split holds 1 class (tumor; unknown left out)" in notes[0]
    train_one = np.array(["tumor", "normal"] * 5 + ["tumor"] * 30, dtype=object)
    metrics = latent_metrics(z, {"tumor_normal": train_one}, ~test, test, k=5)
    assert np.isnan(metrics["knn_accuracy_tumor_normal"])
    assert "training split holds 1 class" in undefined_label_notes(
        {"tumor_normal": train_one}, test, ~test)[0]


# -- 15. YAML alias bombs -------------------------------------------------------------------
def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nexpression:\n  labels: *a{levels - 1}\n"


def test_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    import time

    from medgen import config

    path = tmp_path / "dataset.yaml"
    path.write_text(_alias_bomb())
    assert len(path.read_bytes()) < 600  # expands to 9**9 strings
    start = time.perf_counter()
    with pytest.raises(MedgenInputError, match=r"dataset\.yaml expands to more than 100000 "
                       r"values \(YAML aliases") as err:
        config.load(path)
    assert time.perf_counter() - start < 2
    assert len(str(err.value)) < 300
    # merge keys (<<) repeat anchors too: refused before they are expanded
    levels = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    for i in range(1, 9):
        levels.append(f"m{i}: &m{i}\n  <<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]\n"
                      + "".join(f"  k{j}: *m{i - 1}\n" for j in range(9)))
    merge = tmp_path / "merge.yaml"
    merge.write_text("\n".join(levels) + "\n")
    start = time.perf_counter()
    with pytest.raises(MedgenInputError, match="merge keys"):
        config.load(merge)
    assert time.perf_counter() - start < 2
    # the same config as Snakemake hands it over (already parsed)
    import yaml

    with pytest.raises(MedgenInputError, match="the config expands to more than"):
        config.validate(yaml.safe_load(path.read_text()))
    # a value quoted in an error message is truncated
    with pytest.raises(MedgenInputError) as err:
        config.load(overrides={"run_name": ["x" * 10_000] * 1000})
    assert "config key 'run_name'" in str(err.value) and len(str(err.value)) < 300


# -- 1. multi-label MedMNIST files -------------------------------------------------------
def test_multilabel_npz_normal_means_no_finding_in_any_column(tmp_path):
    from medgen.data.imaging.readers import read_npz2d

    labels = np.zeros((6, 14), np.uint8)  # ChestMNIST: one column per finding
    labels[1, 0] = 1  # a finding in the first column
    labels[2, 5] = 1  # ... and in others, which cutting to column 0 made "normal"
    labels[3, [2, 13]] = 1
    path = tmp_path / "chestmnist.npz"
    np.savez(path, train_images=np.zeros((6, 8, 8), np.uint8), train_labels=labels)
    before = _digest(path)
    images, y = read_npz2d(path, "train")
    assert images.shape == (6, 8, 8)
    assert y.tolist() == [0, 1, 1, 1, 0, 0]
    assert _digest(path) == before
    bad = tmp_path / "graded.npz"  # several columns of grades, not findings: refused
    np.savez(bad, train_images=np.zeros((6, 8, 8), np.uint8), train_labels=labels * 3)
    with pytest.raises(MedgenInputError, match=r"graded\.npz: 'train_labels' has 14 "
                       r"columns that are not 0/1 findings"):
        read_npz2d(bad, "train")
    short = tmp_path / "short.npz"  # 12 labels for 6 images: never reshaped into pairs
    np.savez(short, test_images=np.zeros((6, 8, 8), np.uint8), test_labels=np.zeros(12))
    with pytest.raises(MedgenInputError, match=r"short\.npz: 'test_labels' has 12 rows for "
                       r"6 images"):
        read_npz2d(short, "test")


# -- 8. volumes whose background is a non-zero constant ------------------------------------
def test_constant_nonzero_background_is_detected_and_masked(caplog):
    import torch

    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 20)] * 3, indexing="ij"))
    brain = (grid**2).sum(0) < 0.4  # ~16% of the box, as in BraTS
    rng = np.random.default_rng(0)
    volume = np.where(brain, rng.normal(1.0, 0.5, brain.shape), -0.83).astype(np.float32)
    data = {"subject": "BraTS-001", "image": torch.as_tensor(volume[None])}
    with pytest.raises(MedgenInputError, match=r"subject 'BraTS-001': the nonzero mask covers "
                       r"100% of the volume, and channel 0 holds the constant -0.83 .*"
                       r"anomaly.mask: background"):
        MakeMaskd("nonzero", 0)(dict(data))
    mask = MakeMaskd("background", 0)(dict(data))[MASK][0].numpy().astype(bool)
    assert np.array_equal(mask, brain)
    # zero-padded slabs (the mask covers 70%) and the constant in the second channel only
    padded = volume.copy()
    padded[:3], padded[-3:] = 0, 0
    two = {"subject": "BraTS-002",
           "image": torch.as_tensor(np.stack([np.where(brain, volume, 0), padded]))}
    with pytest.raises(MedgenInputError, match=r"BraTS-002.*channel 1 holds the constant -0.83"):
        MakeMaskd("nonzero", 0)(dict(two))
    mask = MakeMaskd("background", 0)(dict(two))[MASK][0].numpy().astype(bool)
    assert np.array_equal(mask, brain)
    # a full box without a constant background is kept, with a warning
    noise = {"subject": "ct", "image": torch.as_tensor(rng.normal(5, 1, (1, 10, 10, 10)))}
    with caplog.at_level(logging.WARNING):
        MakeMaskd("nonzero", 0)(noise)
    assert "the nonzero mask covers 100.0% of the volume" in caplog.text


# -- DICOM series (9-12, 14) -------------------------------------------------------------
SERIES_UID = "1.2.826.0.1.3680043.8.498.1"
CT_IMAGE, SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.7"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def _dataset(pixels: np.ndarray, sop_class: str = CT_IMAGE, **tags):
    """A minimal uncompressed DICOM image (greyscale int16, or RGB uint8 when 3-channel)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SeriesInstanceUID, ds.Modality = sop_class, SERIES_UID, "CT"
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    bits = 8 if colour else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0 if colour else 1
    ds.PixelData = pixels.astype(np.uint8 if colour else np.int16).tobytes()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return ds


def _slice(z: float, value: int = 0, **tags):
    pixels = (np.arange(12, dtype=np.int16).reshape(3, 4) + value)
    geometry = {"ImagePositionPatient": [0.0, 0.0, z], "PixelSpacing": [0.5, 0.5],
                "ImageOrientationPatient": [1, 0, 0, 0, 1, 0], "RescaleSlope": 1,
                "RescaleIntercept": -1024}
    return _dataset(pixels, **{**geometry, **tags})


def _write_series(folder: Path, zs, **tags) -> Path:
    folder.mkdir()
    for i, z in enumerate(zs):
        _slice(z, i, **tags).save_as(folder / f"{i:02d}.dcm", enforce_file_format=True)
    return folder


def test_dicom_objects_without_geometry_are_skipped_or_named(tmp_path, caplog):
    from medgen.data.imaging.readers import read_volume

    folder = _write_series(tmp_path / "ct", [0.0, 2.0, 4.0])
    dose = _dataset(np.zeros((3, 4)), SECONDARY_CAPTURE)  # a dose report: no geometry
    dose.save_as(folder / "dose.dcm", enforce_file_format=True)
    with caplog.at_level(logging.WARNING):
        volume, affine = read_volume(folder)
    assert volume.shape == (4, 3, 3) and np.allclose(np.diag(affine)[:3], [-0.5, -0.5, 2.0])
    assert "skipped 1 DICOM objects that are not slices of the volume (dose.dcm: no " \
           "ImagePositionPatient (0020,0032))" in caplog.text
    for tag, code in (("PixelSpacing", "0028,0030"), ("ImageOrientationPatient", "0020,0037")):
        bare = _write_series(tmp_path / tag, [0.0, 2.0])
        for file in bare.iterdir():
            ds = __import__("pydicom").dcmread(file)
            delattr(ds, tag)
            ds.save_as(file)
        with pytest.raises(MedgenInputError, match=rf"00\.dcm: DICOM image without {tag} "
                           rf"\({code}\)"):
            read_volume(bare)


def test_colour_dicom_is_refused_by_name(tmp_path):
    from medgen.data.imaging.readers import read_volume

    folder = tmp_path / "sc"
    folder.mkdir()
    for i in range(3):
        _dataset(np.zeros((3, 4, 3)), SECONDARY_CAPTURE, ImagePositionPatient=[0, 0, i],
                 ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[1, 1],
                 ).save_as(folder / f"{i}.dcm", enforce_file_format=True)
    with pytest.raises(MedgenInputError, match=r"0\.dcm: colour DICOM image \(3 samples per "
                       r"pixel, RGB\)"):
        read_volume(folder)
    palette = tmp_path / "palette"  # one sample per pixel, but colour-table indices
    palette.mkdir()
    for i in range(3):
        ds = _slice(float(i))
        ds.PhotometricInterpretation = "PALETTE COLOR"
        ds.save_as(palette / f"{i}.dcm", enforce_file_format=True)
    with pytest.raises(MedgenInputError, match=r"0\.dcm: colour DICOM image \(1 samples per "
                       r"pixel, PALETTE COLOR\)"):
        read_volume(palette)


def test_enhanced_multiframe_dicom_is_read_from_its_functional_groups(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from medgen.data.imaging.readers import read_volume

    frames = np.stack([np.full((3, 4), 10 * k, np.int16) for k in range(4)])
    ds = _dataset(frames, ENHANCED_CT, NumberOfFrames=4)

    def group(**sequences):
        item = Dataset()
        for name, tags in sequences.items():
            inner = Dataset()
            for keyword, value in tags.items():
                setattr(inner, keyword, value)
            setattr(item, name, Sequence([inner]))
        return item

    ds.SharedFunctionalGroupsSequence = Sequence([group(
        PlaneOrientationSequence={"ImageOrientationPatient": [1, 0, 0, 0, 1, 0]},
        PixelMeasuresSequence={"PixelSpacing": [0.5, 0.5], "SliceThickness": 3},
        PixelValueTransformationSequence={"RescaleSlope": 1, "RescaleIntercept": -1024},
    )])
    # frames stored out of order (scanners do): positions decide
    order = [2, 0, 3, 1]
    ds.PerFrameFunctionalGroupsSequence = Sequence([
        group(PlanePositionSequence={"ImagePositionPatient": [0, 0, 3.0 * k]}) for k in order])
    ds.PixelData = frames[order].tobytes()  # stored frame i lies at position order[i]
    folder = tmp_path / "enhanced"
    folder.mkdir()
    ds.save_as(folder / "IM0001", enforce_file_format=True)
    volume, affine = read_volume(folder)
    assert volume.shape == (4, 3, 4) and affine[2, 2] == pytest.approx(3.0)
    assert volume[0, 0, :].tolist() == [-1024.0, -1014.0, -1004.0, -994.0]
    # one frame per enhanced file: geometry in the functional groups all the same
    singles = tmp_path / "singles"
    singles.mkdir()
    for k in range(3):
        one = _dataset(frames[k:k + 1], ENHANCED_CT, NumberOfFrames=1)
        one.SharedFunctionalGroupsSequence = ds.SharedFunctionalGroupsSequence
        one.PerFrameFunctionalGroupsSequence = Sequence([
            group(PlanePositionSequence={"ImagePositionPatient": [0, 0, 3.0 * k]})])
        one.SOPInstanceUID = f"1.2.3.{k}"
        one.save_as(singles / f"IM{k}", enforce_file_format=True)
    volume, _ = read_volume(singles)
    assert volume.shape == (4, 3, 3)  # (columns, rows, slices), as above
    # fewer per-frame groups than frames: named, not an IndexError
    ds.PerFrameFunctionalGroupsSequence = Sequence(list(ds.PerFrameFunctionalGroupsSequence)[:2])
    ds.save_as(folder / "IM0001", enforce_file_format=True)
    with pytest.raises(MedgenInputError, match=r"IM0001: enhanced DICOM with 4 frames .* 2 "
                       r"per-frame functional groups"):
        read_volume(folder)


def test_dicom_without_preamble_is_read(tmp_path, caplog):
    from pydicom import dcmwrite

    from medgen.data.imaging.readers import read_volume

    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(6):
        ds = _slice(2.0 * i, i)
        del ds.file_meta  # old archives: bare dataset, no preamble, no 'DICM'
        dcmwrite(folder / f"{i}", ds, implicit_vr=True, little_endian=True)
        assert (folder / f"{i}").read_bytes()[128:132] != b"DICM"
    (folder / "README.txt").write_text("scanned 1998\n")
    before = {p.name: _digest(p) for p in folder.iterdir()}
    with caplog.at_level(logging.WARNING):
        volume, _ = read_volume(folder)
    assert volume.shape == (4, 3, 6)
    assert "6 DICOM files without the 128-byte preamble" in caplog.text
    assert {p.name: _digest(p) for p in folder.iterdir()} == before


def test_missing_dicom_slice_is_reported_as_irregular_spacing(tmp_path):
    from medgen.data.imaging.readers import read_volume

    folder = _write_series(tmp_path / "gap", [0.0, 2.0, 4.0, 8.0, 10.0])  # 6.0 is missing
    with pytest.raises(MedgenInputError, match=r"irregular slice spacing \(missing slice\?\): "
                       r"steps of 2.00-4.00 mm, the larger between slice positions 4.00 -> "
                       r"8.00 mm") as err:
        read_volume(folder)
    assert "tilt" not in str(err.value).split(";")[0]
    volume, _ = read_volume(folder, dicom_tilt="correct")
    assert volume.shape[2] == 6  # regridded at 2 mm


def test_npz_sheet_without_training_subjects_writes_nothing(tmp_path):
    from medgen.config import fill_defaults, load_schema
    from medgen.tasks.anomaly.prepare import prepare_images

    np.savez(tmp_path / "x.npz", val_images=np.zeros((4, 8, 8), np.uint8),
             val_labels=np.zeros((4, 1)), test_images=np.zeros((4, 8, 8), np.uint8),
             test_labels=np.ones((4, 1)))
    (tmp_path / "sheet.tsv").write_text("subject\tsplit\tnpz_split\timage\n"
                                        "v\tval\tval\tx.npz\nt\ttest\ttest\tx.npz\n")
    cfg = fill_defaults(load_schema()["properties"]["anomaly"],
                        {"kind": "npz2d", "modalities": ["image"], "image_size": 8})
    with pytest.raises(MedgenInputError, match="no subject in split 'train'"):
        prepare_images(tmp_path / "sheet.tsv", cfg, 0, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.npz"))
