"""Table readers: every format and orientation on tiny files, real files, and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from medgen.data.io.gctx import MATRIX_PATH, read_gctx
from medgen.data.io.tables import guess_format, read_table
from medgen.data.io.xena import read_xena, split_gene_ids
from medgen.data.tcga import (
    barcode_table,
    normalise_barcode,
    patient_id,
    sample_type_code,
    tumor_normal,
)
from medgen.errors import MedgenInputError

SAMPLES = ["s1", "s2", "s3"]
GENES = ["g1", "g2", "g3", "g4"]
VALUES = np.arange(12, dtype=float).reshape(3, 4) + 0.5  # samples x genes


def _frame(orientation: str) -> pd.DataFrame:
    frame = pd.DataFrame(VALUES, index=SAMPLES, columns=GENES)
    return frame if orientation == "samples_as_rows" else frame.T


def _assert_tiny(adata: ad.AnnData) -> None:
    assert list(adata.obs_names) == SAMPLES
    assert list(adata.var_names) == GENES
    np.testing.assert_allclose(adata.X, VALUES)
    assert adata.X.dtype == np.float64


@pytest.mark.parametrize("orientation", ["samples_as_rows", "genes_as_rows"])
@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.txt", "t.csv.gz", "t.tsv.gz"])
def test_delimited_formats_and_orientations(tmp_path, name, orientation):
    path = tmp_path / name
    sep = "," if ".csv" in name else "\t"
    _frame(orientation).to_csv(path, sep=sep)
    _assert_tiny(read_table(path, orientation=orientation))


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_declared_format_overrides_extension(tmp_path, fmt):
    path = tmp_path / "table.dat"
    _frame("samples_as_rows").to_csv(path, sep="," if fmt == "csv" else "\t")
    _assert_tiny(read_table(path, format=fmt))


@pytest.mark.parametrize("orientation", ["samples_as_rows", "genes_as_rows"])
def test_parquet(tmp_path, orientation):
    path = tmp_path / "t.parquet"
    _frame(orientation).to_parquet(path)
    _assert_tiny(read_table(path, orientation=orientation))


def test_parquet_ids_in_first_column(tmp_path):
    path = tmp_path / "t.parquet"
    _frame("samples_as_rows").rename_axis("sample").reset_index().to_parquet(path, index=False)
    _assert_tiny(read_table(path, format="parquet"))


def test_h5ad(tmp_path):
    path = tmp_path / "t.h5ad"
    ad.AnnData(
        X=VALUES.astype(np.float32), obs=pd.DataFrame(index=SAMPLES), var=pd.DataFrame(index=GENES)
    ).write_h5ad(path)
    _assert_tiny(read_table(path))


def _write_gctx(path: Path, matrix: np.ndarray | None, n_samples: int = 3, n_genes: int = 4):
    with h5py.File(path, "w") as handle:
        if matrix is not None:
            handle.create_dataset(MATRIX_PATH, data=matrix)
        handle.create_dataset("/0/META/ROW/id", data=np.array(GENES[:n_genes], dtype="S"))
        handle.create_dataset("/0/META/ROW/symbol", data=np.array(["A", "B", "C", "D"], dtype="S"))
        handle.create_dataset("/0/META/COL/id", data=np.array(SAMPLES[:n_samples], dtype="S"))
        handle.create_dataset("/0/META/COL/dose", data=np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("transpose", [False, True])
def test_gctx_both_layouts(tmp_path, transpose):
    path = tmp_path / "t.gctx"
    _write_gctx(path, VALUES.T if transpose else VALUES)
    adata = read_table(path)
    _assert_tiny(adata)
    assert list(adata.var["symbol"]) == ["A", "B", "C", "D"]
    assert list(adata.obs["dose"]) == [1.0, 2.0, 3.0]


def test_gctx_missing_matrix_names_file_and_dataset(tmp_path):
    path = tmp_path / "nomatrix.gctx"
    _write_gctx(path, None)
    with pytest.raises(MedgenInputError, match=r"nomatrix\.gctx.*/0/DATA/0/matrix"):
        read_gctx(path)


def test_gctx_shape_mismatch(tmp_path):
    path = tmp_path / "bad.gctx"
    _write_gctx(path, np.zeros((5, 5)))
    with pytest.raises(MedgenInputError, match=r"bad\.gctx.*shape \(5, 5\)"):
        read_gctx(path)


def test_xena_gene_ids(tmp_path):
    ids = ["?|100", "A1BG|1", "SLC35E2|728661", "SLC35E2|9906", "TP53|7157"]
    frame = pd.DataFrame(np.ones((5, 2)), index=ids, columns=["TCGA-A", "TCGA-B"])
    path = tmp_path / "x.tsv.gz"
    frame.to_csv(path, sep="\t")
    adata = read_table(path, format="xena", orientation="genes_as_rows")
    assert list(adata.var_names) == ["100", "A1BG", "SLC35E2|728661", "SLC35E2|9906", "TP53"]
    assert list(adata.var["symbol"]) == ["", "A1BG", "SLC35E2", "SLC35E2", "TP53"]
    assert list(adata.var["entrez_id"]) == ["100", "1", "728661", "9906", "7157"]
    assert list(adata.obs_names) == ["TCGA-A", "TCGA-B"]


def test_xena_wrong_orientation_is_explained(tmp_path):
    frame = pd.DataFrame(np.ones((2, 2)), index=["A|1", "B|2"], columns=["s1", "s2"])
    path = tmp_path / "x.csv"
    frame.to_csv(path)
    with pytest.raises(MedgenInputError, match=r"x\.csv.*'s1'.*SYMBOL\|EntrezID.*orientation"):
        read_xena(path, orientation="samples_as_rows")


def test_xena_duplicate_full_ids():
    with pytest.raises(MedgenInputError, match=r"duplicate gene IDs A\|1"):
        split_gene_ids(["A|1", "A|1", "B|2"], "t.csv")


@pytest.mark.parametrize(
    "content, pattern",
    [
        (  # too many fields
            ",a,b\ns1,1,2\ns2,1,2,3\n",
            r"bad\.csv is not a well-formed table: .*Expected 3 fields in line 3, saw 4",
        ),
        (",a,b\ns1,1,2\ns2,1\n", r"bad\.csv: line 3 has 2 fields, expected 3"),  # too few
        (
            ",a,b\ns1,1,2\ns2,1,oops\n",
            r"bad\.csv: non-numeric value 'oops' in row 's2', column 'b'",
        ),
    ],
)
def test_malformed_csv_names_file_and_place(tmp_path, content, pattern):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(MedgenInputError, match=pattern):
        read_table(path)


def test_malformed_gz_csv_short_row(tmp_path):
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(",a,b,c\ns1,1,2,3\ns2,1,2\n")
    with pytest.raises(MedgenInputError, match=r"bad\.csv\.gz: line 3 has 3 fields, expected 4"):
        read_table(path)


def test_auto_format_unknown_suffix(tmp_path):
    path = tmp_path / "table.xyz"
    path.write_text("x")
    pattern = r"cannot guess the format of .*table\.xyz.*'format'"
    with pytest.raises(MedgenInputError, match=pattern):
        read_table(path)


def test_guess_format():
    assert guess_format("a/b.csv.gz") == "csv"
    assert guess_format("b.TSV") == "tsv"
    assert guess_format("b.parquet") == "parquet"
    assert guess_format("b.gctx") == "gctx"


def test_bad_format_and_orientation(tmp_path):
    with pytest.raises(MedgenInputError, match="format 'excel'"):
        read_table(tmp_path / "x.csv", format="excel")
    with pytest.raises(MedgenInputError, match="orientation is 'rows'"):
        read_table(tmp_path / "x.csv", orientation="rows")


def test_missing_file(tmp_path):
    with pytest.raises(MedgenInputError, match=r"nothere\.parquet does not exist"):
        read_table(tmp_path / "nothere.parquet")


# --- TCGA barcodes -------------------------------------------------------------------------


def test_barcode_helpers():
    dotted = "TCGA.E2.A1L7.11A.33R.A143.13"
    assert normalise_barcode(dotted) == "TCGA-E2-A1L7-11A-33R-A143-13"
    assert patient_id(dotted) == "TCGA-E2-A1L7"
    assert sample_type_code(dotted) == "11"
    assert [tumor_normal(c) for c in ("01", "06", "11", "20")] == [
        "tumor", "tumor", "normal", "control",
    ]
    table = barcode_table([dotted, "TCGA-E2-A1L7-01A"])
    assert list(table.index) == ["TCGA-E2-A1L7-11A-33R-A143-13", "TCGA-E2-A1L7-01A"]
    assert list(table["tumor_normal"]) == ["normal", "tumor"]


def test_unparseable_barcode_names_sample():
    with pytest.raises(MedgenInputError, match="sample 'GSM71019.CEL' is not a TCGA barcode"):
        barcode_table(["TCGA-E2-A1L7-01A", "GSM71019.CEL"])
    with pytest.raises(MedgenInputError, match="sample 'TCGA-E2-A1L7-50A'.*code 50"):
        barcode_table(["TCGA-E2-A1L7-50A"])


# --- real files ----------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_tcga_mirna_parquet(shared_data):
    adata = read_table(shared_data / "expression/tcga_mirna/BRCA.parquet")
    assert adata.shape == (1207, 1881)
    assert adata.obs_names[0] == "TCGA.E2.A1L7.01A.11R.A143.13"
    assert adata.var_names[0] == "hsa.let.7a.1"
    assert (adata.X >= 0).all() and np.array_equal(adata.X, np.round(adata.X))


@pytest.mark.realdata
def test_real_gctx(shared_data):
    path = shared_data / "expression/lincs_l1000/test_l1000_highprecision.gctx"
    adata = read_table(path)
    assert adata.shape == (377, 978)  # samples x landmark probes
    assert adata.obs_names[0] == "LJP005_A375_24H_X1_B19:A03"
    assert adata.var_names[0] == "200814_at"
    assert adata.var.loc["200814_at", "pr_gene_symbol"] == "PSME1"
    assert adata.obs["cell_id"].iloc[0] == "A375"
    with h5py.File(path) as handle:  # the matrix as stored: samples x genes
        np.testing.assert_allclose(adata.X[:, 0], handle[MATRIX_PATH][:, 0])


@pytest.mark.realdata
def test_real_xena_csv_gz(shared_data):
    adata = read_table(
        shared_data / "expression/tcga_brca_mrna/dataBRCA.csv.gz", "xena", "genes_as_rows"
    )
    assert adata.shape == (10, 20530)
    assert adata.obs_names[0] == "TCGA-A7-A13D-01A-13R-A12P-07"
    assert adata.var_names.is_unique
    assert adata.var.loc["A1BG", "entrez_id"] == "1"
    assert adata.var.loc["100133144", "symbol"] == ""  # '?|100133144'
    assert {"SLC35E2|728661", "SLC35E2|9906"} <= set(adata.var_names)


@pytest.mark.realdata
def test_real_geo_csv_gz(shared_data):
    path = shared_data / "expression/geo_gpl96_bladder/bladder_exprs_hgu133a.csv.gz"
    adata = read_table(path, orientation="genes_as_rows")
    assert adata.shape == (57, 22283)
    assert adata.obs_names[0] == "GSM71019.CEL"


@pytest.mark.parametrize("header", ["", "ID_REF"])
def test_numeric_looking_row_ids_stay_as_written(tmp_path, header):
    # probe ids such as '0010', '1.10' or '1E5' (some platforms number their probes) must
    # not become 10, 1.1 and 100000.0: the annotation that maps them holds them as text
    path = tmp_path / "probes.csv"
    path.write_text(f"{header},S1,S2\n0010,1,2\n1.10,3,4\n1E5,5,6\n")
    data = read_table(path, "csv", "genes_as_rows")
    assert list(data.var_names) == ["0010", "1.10", "1E5"]
    assert data.X.tolist() == [[1, 3, 5], [2, 4, 6]]
