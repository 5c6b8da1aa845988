"""preprocess_expression: outputs on synthetic and real tables, and every bad-input path."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from medgen.data.expression import gene_deviation, preprocess_expression
from medgen.data.io.gctx import MATRIX_PATH
from medgen.errors import MedgenInputError


def _barcodes(prefix: str, n_patients: int, normal_every: int = 5) -> list[str]:
    """Dotted TCGA barcodes: a tumour per patient, plus a normal for every n-th patient."""
    out = []
    for p in range(n_patients):
        patient = f"TCGA.{prefix}.{p:04d}"
        out.append(f"{patient}.01A.11R.A000.13")
        if p % normal_every == 0:
            out.append(f"{patient}.11A.11R.A000.13")
    return out


def _counts(samples: list[str], n_genes: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    scale = rng.gamma(2.0, 20.0, size=n_genes)  # genes differ in level and spread
    values = rng.poisson(scale * rng.lognormal(0, 0.5, size=(len(samples), 1)))
    genes = [f"mir{g}" for g in range(n_genes)]
    return pd.DataFrame(values, index=samples, columns=genes).astype("int64")


@pytest.fixture
def two_tables(tmp_path):
    """Two parquet count tables (samples as rows) like the syng-bts ones."""
    tables = []
    for i, group in enumerate(("AAA", "BBB")):
        frame = _counts(_barcodes(f"A{i}", 40), seed=i)
        path = tmp_path / f"{group}.parquet"
        frame.to_parquet(path)
        tables.append(
            {"path": str(path), "format": "auto", "orientation": "samples_as_rows",
             "group": group}
        )
    return tables


@pytest.fixture
def outs(tmp_path):
    out_dir = tmp_path / "out"
    return out_dir, out_dir / "expr.h5ad", out_dir / "split.tsv"


def _no_outputs(out_dir: Path) -> bool:
    """Neither output nor any temporary (.part) file was left behind."""
    return not out_dir.exists() or not any(out_dir.iterdir())


def test_synthetic_outputs(two_tables, outs, expr_cfg):
    out_dir, h5ad, tsv = outs
    cfg = expr_cfg(top_k_genes=10)
    result = preprocess_expression(two_tables, cfg, seed=0, out_h5ad=h5ad, out_split_tsv=tsv)
    written = ad.read_h5ad(h5ad)
    n_samples = 2 * (40 + 8)
    assert written.shape == (n_samples, 10) == result.shape
    assert written.X.dtype == np.float32
    assert written.X.min() >= 0 and written.X.max() <= 1
    assert {"split", "patient", "tumor_normal", "cancer_type", "source", "sample_type"} <= set(
        written.obs.columns
    )
    assert written.obs_names[0] == "TCGA-A0-0000-01A-11R-A000-13"  # dashes
    assert set(written.obs["cancer_type"]) == {"AAA", "BBB"}
    assert {"mad", "scale_min", "scale_max"} <= set(written.var.columns)
    assert "log_expression" in written.layers
    # Scaling and ranking are fitted on the training split only.
    train = (written.obs["split"] == "train").to_numpy()
    log = np.asarray(written.layers["log_expression"], dtype=np.float64)
    np.testing.assert_allclose(written.var["scale_min"], log[train].min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(written.var["scale_max"], log[train].max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(written.X[train].min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(written.X[train].max(axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(
        written.var["mad"], gene_deviation(log[train], "mean_abs_dev"), rtol=1e-5
    )
    assert list(written.var["mad"]) == sorted(written.var["mad"], reverse=True)
    provenance = json.loads(written.uns["provenance_json"])
    assert provenance["seed"] == 0 and provenance["config"]["top_k_genes"] == 10
    assert set(provenance["inputs"]) == {t["path"] for t in two_tables}
    manifest = pd.read_csv(tsv, sep="\t")
    assert list(manifest.columns) == ["sample", "patient", "split", "tumor_normal", "cancer_type"]
    assert list(manifest["sample"]) == sorted(written.obs_names)
    assert manifest.groupby("patient")["split"].nunique().max() == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["expr.h5ad", "split.tsv"]


def test_counts_are_cpm_log1p(two_tables, outs, expr_cfg):
    _, h5ad, tsv = outs
    cfg = expr_cfg(top_k_genes=30, target_sum=1000)
    result = preprocess_expression(two_tables[:1], cfg, 0, h5ad, tsv)
    raw = pd.read_parquet(two_tables[0]["path"])
    expected = np.log1p(raw.div(raw.sum(axis=1), axis=0) * 1000)
    expected.index = result.obs_names
    expected = expected.loc[:, result.var_names]
    np.testing.assert_allclose(result.layers["log_expression"], expected, rtol=1e-5)


def test_top_k_uses_train_split_only(two_tables, outs, expr_cfg):
    """A gene that varies only in val/test samples must not be picked."""
    _, h5ad, tsv = outs
    cfg = expr_cfg(top_k_genes=5, barcode_labels=True)
    first = preprocess_expression(two_tables, cfg, 0, h5ad, tsv)
    held_out = first.obs_names[first.obs["split"] != "train"]
    for table in two_tables:
        frame = pd.read_parquet(table["path"])
        dashed = frame.index.str.replace(".", "-")
        frame["spiky"] = np.where(dashed.isin(held_out), 10**6, 50)
        frame.to_parquet(table["path"])
    second = preprocess_expression(two_tables, cfg, 0, h5ad, tsv)
    assert second.obs["split"].equals(first.obs["split"])
    assert "spiky" not in second.var_names
    assert second.uns["preprocessing"]["clipped_values"] > 0  # the spikes were clipped


def test_median_abs_dev_and_log_expression(tmp_path, outs, expr_cfg):
    _, h5ad, tsv = outs
    frame = np.log2(_counts(_barcodes("C1", 30)) + 1.0) - 3.0  # log scale, some negatives
    path = tmp_path / "log.tsv"
    frame.T.to_csv(path, sep="\t")
    cfg = expr_cfg(data_type="log_expression", gene_ranking="median_abs_dev", top_k_genes=8)
    table = {"path": str(path), "format": "tsv", "orientation": "genes_as_rows", "group": "C"}
    result = preprocess_expression([table], cfg, 1, h5ad, tsv)
    train = (result.obs["split"] == "train").to_numpy()
    expected = frame.loc[:, result.var_names].to_numpy()
    np.testing.assert_allclose(result.layers["log_expression"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        result.var["mad"], gene_deviation(expected[train], "median_abs_dev"), rtol=1e-5
    )


def test_metadata_join_without_barcodes(tmp_path, outs, expr_cfg):
    _, h5ad, tsv = outs
    samples = [f"GSM{i}.CEL" for i in range(40)]
    frame = _counts(samples)
    data = tmp_path / "geo.csv.gz"
    frame.T.to_csv(data)
    meta = pd.DataFrame(
        {"geo_id": samples[::-1], "outcome": ["Normal", "Cancer"] * 20, "batch": range(40)}
    )
    meta_path = tmp_path / "pheno.csv"
    meta.to_csv(meta_path, index=False)
    cfg = expr_cfg(
        barcode_labels=False, labels=["outcome"], top_k_genes=5,
        metadata={"sample_column": "geo_id"},
        split={"group_by": None, "stratify_by": "outcome", "val_fraction": 0.2,
               "test_fraction": 0.2},
    )
    table = {"path": str(data), "format": "auto", "orientation": "genes_as_rows", "group": None}
    result = preprocess_expression([table], cfg, 0, h5ad, tsv, metadata_path=meta_path)
    expected = meta.set_index("geo_id")["outcome"]
    assert (result.obs["outcome"] == expected.loc[result.obs_names]).all()
    assert set(result.obs["source"]) == {"geo"}
    assert "patient" not in result.obs.columns
    manifest = pd.read_csv(tsv, sep="\t")
    assert list(manifest.columns) == ["sample", "patient", "split", "outcome"]
    assert (manifest["patient"] == manifest["sample"]).all()
    assert pd.crosstab(manifest["split"], manifest["outcome"]).loc["test"].tolist() == [4, 4]


# --- bad input: one clear error, no output left behind ---------------------------------------


def _table(path: Path, fmt: str = "auto", orientation: str = "samples_as_rows") -> dict:
    return {"path": str(path), "format": fmt, "orientation": orientation, "group": "X"}


def _run_fails(tables, cfg, outs, pattern, **kwargs):
    out_dir, h5ad, tsv = outs
    with pytest.raises(MedgenInputError, match=pattern):
        preprocess_expression(tables, cfg, 0, h5ad, tsv, **kwargs)
    assert _no_outputs(out_dir)


def test_malformed_csv(tmp_path, outs, expr_cfg):
    path = tmp_path / "ragged.csv"
    path.write_text(",a,b\nTCGA-A1-0001-01A,1,2\nTCGA-A1-0002-01A,3\n")
    _run_fails([_table(path)], expr_cfg(), outs, r"ragged\.csv: line 3 has 2 fields, expected 3")


def test_gctx_without_matrix(tmp_path, outs, expr_cfg):
    path = tmp_path / "empty.gctx"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("/0/META/ROW/id", data=np.array([b"g1"]))
        handle.create_dataset("/0/META/COL/id", data=np.array([b"s1"]))
    _run_fails([_table(path)], expr_cfg(), outs, rf"empty\.gctx has no matrix .*{MATRIX_PATH}")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf(tmp_path, outs, expr_cfg, bad):
    frame = _counts(_barcodes("A1", 10)).astype(float)
    frame.iloc[3, 4] = bad
    frame.iloc[5, 6] = bad
    path = tmp_path / "holes.parquet"
    frame.to_parquet(path)
    pattern = (
        r"holes\.parquet: 2 NaN/Inf values "
        r"\(first at sample 'TCGA\.A1\.0002\.01A\.11R\.A000\.13', "
        r"gene 'mir4'\)"
    )
    _run_fails([_table(path)], expr_cfg(), outs, pattern)


def test_negative_counts(tmp_path, outs, expr_cfg):
    frame = _counts(_barcodes("A1", 10))
    frame.iloc[2, 1] = -5
    path = tmp_path / "neg.parquet"
    frame.to_parquet(path)
    _run_fails([_table(path)], expr_cfg(), outs, r"neg\.parquet: 1 negative values in count data "
               r"\(first -5 at sample '.*', gene 'mir1'\)")


def test_duplicate_sample_ids(tmp_path, outs, expr_cfg):
    samples = _barcodes("A1", 5)
    samples[2] = samples[0].replace("-", ".")  # same barcode, other spelling
    path = tmp_path / "dup.parquet"
    _counts(samples).to_parquet(path)
    _run_fails([_table(path)], expr_cfg(), outs,
               r"dup\.parquet: duplicate sample IDs 'TCGA-A1-0000-01A-11R-A000-13'")


def test_duplicate_samples_across_tables(tmp_path, outs, expr_cfg):
    frame = _counts(_barcodes("A1", 5))
    paths = [tmp_path / "one.parquet", tmp_path / "two.parquet"]
    for path in paths:
        frame.to_parquet(path)
    _run_fails([_table(p) for p in paths], expr_cfg(), outs,
               r"duplicate sample IDs across the tables .*one\.parquet.*two\.parquet")


def test_duplicate_gene_ids(tmp_path, outs, expr_cfg):
    frame = _counts(_barcodes("A1", 5))
    path = tmp_path / "dupgenes.csv"
    # pandas would rename repeated CSV header cells; genes as rows keep them in the index.
    frame.rename(columns={"mir3": "mir1"}).T.to_csv(path)
    _run_fails([_table(path, orientation="genes_as_rows")], expr_cfg(), outs,
               r"dupgenes\.csv: duplicate gene IDs 'mir1'")


def test_duplicate_gene_ids_in_csv_header(tmp_path, outs, expr_cfg):
    frame = _counts(_barcodes("A1", 5))
    path = tmp_path / "dupheader.csv"
    frame.rename(columns={"mir3": "mir1"}).to_csv(path)
    _run_fails([_table(path)], expr_cfg(), outs,
               r"dupheader\.csv: duplicate gene IDs in the header: 'mir1'")


def test_unknown_label(two_tables, outs, expr_cfg):
    cfg = expr_cfg(labels=["tumor_normal", "subtype"])
    _run_fails(two_tables, cfg, outs,
               r"expression\.labels names 'subtype'.*available columns: .*tumor_normal")


def test_metadata_without_sample_column(two_tables, tmp_path, outs, expr_cfg):
    meta = tmp_path / "meta.tsv"
    meta.write_text("barcode\tsubtype\nTCGA-A0-0000-01A\tLumA\n")
    _run_fails(two_tables, expr_cfg(), outs,
               r"meta\.tsv has no column 'sample' .*its columns: barcode, subtype",
               metadata_path=meta)


def test_metadata_missing_samples(two_tables, tmp_path, outs, expr_cfg):
    meta = tmp_path / "meta.tsv"
    meta.write_text("sample\tsubtype\nTCGA.A0.0000.01A.11R.A000.13\tLumA\n")
    _run_fails(two_tables, expr_cfg(), outs, r"meta\.tsv has no row for 95 of 96 samples",
               metadata_path=meta)


def test_empty_after_filtering(tmp_path, outs, expr_cfg):
    frame = _counts(_barcodes("A1", 5)) * 0
    path = tmp_path / "zeros.parquet"
    frame.to_parquet(path)
    _run_fails([_table(path)], expr_cfg(), outs,
               r"zeros\.parquet: no data left after dropping all-zero samples and genes")


def test_all_zero_gene_without_drop_empty(tmp_path, outs, expr_cfg):
    frame = _counts(_barcodes("A1", 5))
    frame["mir7"] = 0
    path = tmp_path / "z.parquet"
    frame.to_parquet(path)
    _run_fails([_table(path)], expr_cfg(drop_empty=False), outs,
               r"z\.parquet: 0 all-zero samples .* 1 all-zero genes \('mir7'\).*drop_empty")


def test_top_k_larger_than_gene_count(two_tables, outs, expr_cfg):
    _run_fails(two_tables, expr_cfg(top_k_genes=31), outs,
               r"expression\.top_k_genes is 31, but only 30 genes")


def test_no_common_genes(tmp_path, outs, expr_cfg):
    a, b = _counts(_barcodes("A1", 5)), _counts(_barcodes("A2", 5))
    b.columns = [f"other{i}" for i in range(b.shape[1])]
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    a.to_parquet(paths[0])
    b.to_parquet(paths[1])
    _run_fails([_table(p) for p in paths], expr_cfg(), outs, r"a\.parquet, .*b\.parquet share no")


def test_non_barcode_samples_with_barcode_labels(tmp_path, outs, expr_cfg):
    path = tmp_path / "geo.parquet"
    _counts([f"GSM{i}" for i in range(5)]).to_parquet(path)
    _run_fails([_table(path)], expr_cfg(), outs, r"sample 'GSM0' is not a TCGA barcode")


# --- real data --------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_tcga_brca_prad(shared_data, outs, expr_cfg):
    out_dir, h5ad, tsv = outs
    tables = [
        {"path": str(shared_data / f"expression/tcga_mirna/{t}.parquet"), "format": "parquet",
         "orientation": "samples_as_rows", "group": t}
        for t in ("BRCA", "PRAD")
    ]
    cfg = expr_cfg()
    preprocess_expression(tables, cfg, 0, h5ad, tsv)
    adata = ad.read_h5ad(h5ad)
    assert adata.shape == (1207 + 551, 1000)
    assert adata.layers["log_expression"].shape == adata.shape
    assert 0.0 <= adata.X.min() and adata.X.max() <= 1.0
    obs = adata.obs
    counts = obs["split"].value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == (1409, 176, 173)
    patients = obs.groupby("patient", observed=True)["split"].nunique()
    assert (patients == 1).all()  # no patient in two splits
    normal = (obs["tumor_normal"] == "normal").groupby(obs["split"], observed=True).mean()
    assert normal.between(0.07, 0.11).all(), normal
    assert set(obs["cancer_type"]) == {"BRCA", "PRAD"}
    assert set(obs["sample_type_code"]) == {"01", "06", "11"}
    assert set(obs["sample_type"]) == {"Primary Tumor", "Metastatic", "Solid Tissue Normal"}
    provenance = json.loads(adata.uns["provenance_json"])
    assert provenance["seed"] == 0
    assert len(provenance["inputs"]) == 2
    manifest = pd.read_csv(tsv, sep="\t")
    assert len(manifest) == 1758 and manifest["sample"].is_monotonic_increasing
    assert sorted(p.name for p in out_dir.iterdir()) == ["expr.h5ad", "split.tsv"]
