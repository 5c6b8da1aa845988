"""Streaming GCTX I/O: metadata alone, sample chunks in, block-by-block atomic writing."""

from __future__ import annotations

import contextlib

import h5py
import numpy as np
import pandas as pd
import pytest

from medgen.data.io.gctx import MATRIX_PATH, read_gctx
from medgen.data.io.gctx_stream import GctxWriter, iter_gctx_columns, read_gctx_meta
from medgen.errors import MedgenInputError

N_SAMPLES, N_GENES = 11, 5


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(row_meta, col_meta, values samples x genes) with non-ASCII text and numbers."""
    rng = np.random.default_rng(0)
    row_meta = pd.DataFrame(
        {"pr_gene_symbol": ["PSME1", "CISD1", "β-actin", "Ünïcødé", ""],
         "pr_gene_id": np.array([5720, 55847, 60, 1, 2], dtype=np.int64),
         "pr_is_lmark": [True, False, True, True, False]},
        index=[f"{i}_at" for i in range(N_GENES)])
    col_meta = pd.DataFrame(
        {"cell_id": ["A375", "MCF7", "HépG2", "PC3", "細胞", "A549", "HA1E", "VCAP", "HT29",
                     "A375", "MCF7"],
         "pert_dose": np.linspace(0.0, 10.0, N_SAMPLES),
         "pert_time": np.arange(N_SAMPLES, dtype=np.int64)},
        index=[f"plate:{chr(65 + i)}0{i}" for i in range(N_SAMPLES)])
    values = rng.normal(size=(N_SAMPLES, N_GENES)).astype(np.float32)
    return row_meta, col_meta, values


def _write(path, row_meta, col_meta, values, chunk: int, **kwargs) -> None:
    with GctxWriter(path, row_meta, col_meta, **kwargs) as out:
        for start in range(0, len(values), chunk):
            out.write(start, values[start:start + chunk])


def test_round_trip_through_read_gctx(tmp_path, frames):
    row_meta, col_meta, values = frames
    path = tmp_path / "out.gctx"
    _write(path, row_meta, col_meta, values, chunk=4,
           attrs={"provenance": {"model": "ggan", "seed": 0}, "units": "log2, µ-scaled"})
    adata = read_gctx(path)
    np.testing.assert_array_equal(adata.X, values.astype(np.float64))
    assert list(adata.obs_names) == list(col_meta.index)
    assert list(adata.var_names) == list(row_meta.index)
    assert list(adata.var["pr_gene_symbol"]) == list(row_meta["pr_gene_symbol"])
    assert list(adata.obs["cell_id"]) == list(col_meta["cell_id"])
    np.testing.assert_array_equal(adata.obs["pert_dose"], col_meta["pert_dose"])
    np.testing.assert_array_equal(adata.obs["pert_time"], col_meta["pert_time"])
    np.testing.assert_array_equal(adata.var["pr_is_lmark"], [1, 0, 1, 1, 0])
    with h5py.File(path) as handle:
        assert handle[MATRIX_PATH].shape == (N_SAMPLES, N_GENES)  # cmapPy: samples x genes
        assert handle[MATRIX_PATH].dtype == np.float32
        assert handle.attrs["version"] == b"GCTX1.0"
        assert handle.attrs["units"] == "log2, µ-scaled"
        assert '"model": "ggan"' in handle.attrs["provenance"]
    assert not list(tmp_path.glob(".*.part"))  # the temporary sibling is gone


def test_meta_and_chunks_equal_whole_read(tmp_path, frames):
    row_meta, col_meta, values = frames
    path = tmp_path / "out.gctx"
    _write(path, row_meta, col_meta, values, chunk=N_SAMPLES)
    rows, cols = read_gctx_meta(path)
    adata = read_gctx(path)
    pd.testing.assert_frame_equal(rows, adata.var)
    pd.testing.assert_frame_equal(cols, adata.obs)
    chunks = list(iter_gctx_columns(path, chunk_size=3))
    assert [len(ids) for ids, _ in chunks] == [3, 3, 3, 2]
    assert all(block.dtype == np.float32 and block.shape[1] == N_GENES for _, block in chunks)
    np.testing.assert_array_equal(np.concatenate([ids for ids, _ in chunks]), adata.obs_names)
    np.testing.assert_array_equal(np.concatenate([b for _, b in chunks]), values)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_chunked_writing_equals_whole_writing(tmp_path, frames, compression):
    row_meta, col_meta, values = frames
    whole, chunked = tmp_path / "whole.gctx", tmp_path / "chunked.gctx"
    _write(whole, row_meta, col_meta, values, chunk=N_SAMPLES)
    _write(chunked, row_meta, col_meta, values, chunk=2, chunk_samples=3,
           compression=compression)
    a, b = read_gctx(whole), read_gctx(chunked)
    np.testing.assert_array_equal(a.X, b.X)
    pd.testing.assert_frame_equal(a.obs, b.obs)
    pd.testing.assert_frame_equal(a.var, b.var)


def test_transposed_matrix_is_iterated_as_samples_x_genes(tmp_path, frames):
    row_meta, col_meta, values = frames
    path = tmp_path / "t.gctx"
    _write(path, row_meta, col_meta, values, chunk=N_SAMPLES)
    with h5py.File(path, "r+") as handle:  # genes x samples, which read_gctx also accepts
        del handle[MATRIX_PATH]
        handle.create_dataset(MATRIX_PATH, data=values.T)
    np.testing.assert_array_equal(
        np.concatenate([b for _, b in iter_gctx_columns(path, 4)]), read_gctx(path).X)


def test_exception_inside_block_leaves_no_file(tmp_path, frames):
    row_meta, col_meta, values = frames
    path = tmp_path / "out.gctx"
    with pytest.raises(RuntimeError, match="model crashed"):
        with GctxWriter(path, row_meta, col_meta) as out:
            out.write(0, values[:4])
            raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []


def test_unwritten_samples_leave_no_file(tmp_path, frames):
    row_meta, col_meta, values = frames
    path = tmp_path / "out.gctx"
    with pytest.raises(MedgenInputError, match=r"out\.gctx: 7 of 11 samples were never written"):
        with GctxWriter(path, row_meta, col_meta) as out:
            out.write(0, values[:4])
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_a_failed_rewrite(tmp_path, frames):
    row_meta, col_meta, values = frames
    path = tmp_path / "out.gctx"
    _write(path, row_meta, col_meta, values, chunk=N_SAMPLES)
    with pytest.raises(MedgenInputError):
        with GctxWriter(path, row_meta, col_meta) as out:
            out.write(0, np.zeros((N_SAMPLES, N_GENES + 1)))
    np.testing.assert_array_equal(read_gctx(path).X, values)


@pytest.mark.parametrize("shape", [(2, N_GENES + 1), (2, N_GENES - 1), (N_GENES,)])
def test_block_of_wrong_width_names_file(tmp_path, frames, shape):
    row_meta, col_meta, _ = frames
    path = tmp_path / "wide.gctx"
    with pytest.raises(MedgenInputError, match=r"wide\.gctx.*block of shape"):
        with GctxWriter(path, row_meta, col_meta) as out:
            out.write(0, np.zeros(shape))
    assert list(tmp_path.iterdir()) == []


def test_block_past_the_last_sample_names_file(tmp_path, frames):
    row_meta, col_meta, values = frames
    with pytest.raises(MedgenInputError, match=r"long\.gctx: samples 8:12 are outside 0:11"):
        with GctxWriter(tmp_path / "long.gctx", row_meta, col_meta) as out:
            out.write(8, values[:4])


def test_bad_metadata_is_refused_before_writing(tmp_path, frames):
    row_meta, col_meta, _ = frames
    path = tmp_path / "bad.gctx"
    duplicated = col_meta.set_axis(["x"] * N_SAMPLES)
    with pytest.raises(MedgenInputError, match=r"bad\.gctx: duplicate column ids \['x'\]"):
        GctxWriter(path, row_meta, duplicated).__enter__()
    missing = col_meta.assign(cell_id=col_meta["cell_id"].where(col_meta.index != "plate:A00"))
    with pytest.raises(MedgenInputError, match=r"'cell_id' has missing values"):
        with GctxWriter(path, row_meta, missing):
            pass
    assert list(tmp_path.iterdir()) == []


def test_reading_a_bad_file_names_it(tmp_path, frames):
    row_meta, col_meta, values = frames
    path = tmp_path / "mismatch.gctx"
    _write(path, row_meta, col_meta, values, chunk=N_SAMPLES)
    with h5py.File(path, "r+") as handle:  # row metadata that disagree with the matrix
        del handle["/0/META/ROW/id"]
        handle["/0/META/ROW/id"] = np.array([b"a", b"b"])
    with pytest.raises(MedgenInputError, match=r"mismatch\.gctx.*fits neither"):
        read_gctx_meta(path)
    with pytest.raises(MedgenInputError, match=r"mismatch\.gctx.*fits neither"):
        next(iter_gctx_columns(path, 4))
    with pytest.raises(MedgenInputError, match="chunk_size"):
        next(iter_gctx_columns(path, 0))


@pytest.mark.realdata
def test_real_l1000_in_chunks_equals_read_gctx(shared_data, tmp_path):
    path = shared_data / "expression/lincs_l1000/test_l1000_highprecision.gctx"
    adata = read_gctx(path)
    rows, cols = read_gctx_meta(path)
    pd.testing.assert_frame_equal(rows, adata.var)
    pd.testing.assert_frame_equal(cols, adata.obs)
    with contextlib.closing(iter_gctx_columns(path, chunk_size=100)) as chunks:
        parts = list(chunks)
    assert [len(ids) for ids, _ in parts] == [100, 100, 100, 77]
    np.testing.assert_array_equal(np.concatenate([ids for ids, _ in parts]), adata.obs_names)
    np.testing.assert_array_equal(np.concatenate([b for _, b in parts]), adata.X)
    # and its metadata carried over to a written copy read back the same
    copy = tmp_path / "copy.gctx"
    with GctxWriter(copy, rows, cols) as out:
        for start, (_, block) in zip(range(0, len(cols), 100), parts, strict=True):
            out.write(start, block)
    again = read_gctx(copy)
    np.testing.assert_array_equal(again.X, adata.X)
    pd.testing.assert_frame_equal(again.obs, adata.obs)
    pd.testing.assert_frame_equal(again.var, adata.var)
