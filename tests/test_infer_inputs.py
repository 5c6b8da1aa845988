"""New profiles as public data come (issue 32, items 5-7 and 9): GEO series matrices with
their platform annotation, linear / log2 / z-score scales, Entrez and Ensembl gene ids,
and several input rows of one landmark gene. Each is read right (and says so in the
outputs' metadata) or refused with one message naming the file, the field and what was
expected, leaving nothing written."""

from __future__ import annotations

import gzip
import json
import re
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from medgen.data.gene_ids import describe_ids, normalise_ids
from medgen.data.io.gctx import read_gctx
from medgen.data.io.geo import probes_to_genes, read_platform_annotation, read_series_matrix
from medgen.errors import MedgenInputError
from medgen.tasks.expression_inference.infer import infer_targets
from medgen.tasks.expression_inference.prepare import prepare_expression_inference
from medgen.train import train_model
from tests.conftest import inference_section, make_inference_table
from tests.test_gene_inference import TRAINING, infer_cfg, tiny, write_profiles_gctx

pytestmark = pytest.mark.usefixtures("quiet_warnings")
LANDMARKS = [f"L{j}" for j in range(6)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A D-GEX model on log2-like landmarks L0..L5 (means ~6, sd ~1) and the table."""
    root = tmp_path_factory.mktemp("infer_inputs")
    frame = make_inference_table(root / "table.csv")
    prepare_expression_inference(inference_section(root / "table.csv"), 0, root / "d.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = train_model("dgex", root / "d.h5ad", tiny("dgex", 5), TRAINING, 0,
                           root / "dgex")
    return {"path": path, "landmarks": frame[LANDMARKS].iloc[:12]}


def outputs(tmp_path):
    return tmp_path / "out.gctx", tmp_path / "out.h5ad"


def reference(model, tmp_path) -> np.ndarray:
    """Targets inferred from the landmarks as a plain CSV of symbols (samples as rows)."""
    model["landmarks"].to_csv(tmp_path / "ref.csv")
    out = (tmp_path / "ref.gctx", tmp_path / "ref.h5ad")
    infer_targets(model["path"], infer_cfg(tmp_path / "ref.csv", gene_field=""), *out)
    return read_gctx(out[0]).X[:, 6:]


# --- item 5: GEO series matrix + platform annotation ----------------------------------------

def write_series_matrix(path, probes: pd.DataFrame, end: bool = True, null=(),
                        missing: str = "null") -> None:
    """probes x samples ``probes`` as GEO writes them: metadata, quoted ids, ``missing``
    for the (probe, sample) cells in ``null``."""
    samples = list(probes.columns)
    lines = ['!Series_title\t"a test series"', '!Series_geo_accession\t"GSE1"',
             '!Series_platform_id\t"GPL96"',
             "!Sample_title\t" + "\t".join(f'"title {s}"' for s in samples),
             "!Sample_geo_accession\t" + "\t".join(f'"{s}"' for s in samples),
             "!Sample_characteristics_ch1\t" + "\t".join('"tissue: bladder"' for _ in samples),
             "!Sample_characteristics_ch1\t" + "\t".join('"grade: 2"' for _ in samples),
             "!series_matrix_table_begin",
             '"ID_REF"\t' + "\t".join(f'"{s}"' for s in samples)]
    for probe, row in probes.iterrows():
        cells = [missing if (probe, s) in null else f"{v:.6f}" for s, v in row.items()]
        lines.append(f'"{probe}"\t' + "\t".join(cells))
    if end:
        lines.append("!series_matrix_table_end")
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


def gpl_probes(landmarks: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Probe-level values (probes x samples) of ``landmarks`` (samples x genes) and the
    annotation's symbol per probe: one probe per landmark, L0 on two probes whose mean is
    L0, plus a multi-gene, two unannotated probes and one absent from the annotation."""
    values = {f"{1000 + j}_at": landmarks[g] for j, g in enumerate(LANDMARKS)}
    symbols = {f"{1000 + j}_at": g for j, g in enumerate(LANDMARKS)}
    values["1000_at"] = landmarks["L0"] + 0.5
    values["1100_s_at"] = landmarks["L0"] - 0.5
    symbols["1100_s_at"] = "L0"
    values["2000_at"] = landmarks["L1"] * 0 + 3.0
    symbols["2000_at"] = "L1 /// L2"
    values["2001_at"], symbols["2001_at"] = landmarks["L1"] * 0 + 4.0, "---"
    values["2002_at"], symbols["2002_at"] = landmarks["L1"] * 0 + 5.0, ""
    values["AFFX-BioB-5_at"] = landmarks["L1"] * 0 + 9.0  # not in the annotation
    return pd.DataFrame(values).T, symbols


def write_full_table(path, symbols: dict[str, str], column: str = "Gene Symbol") -> None:
    """GEO's 'full table' download: '#' comment lines, then ID, ..., Gene Symbol."""
    lines = ["#ID = Affymetrix probe set ID", f"#{column} = gene symbol",
             f"ID\tGB_ACC\t{column}\tENTREZ_GENE_ID"]
    lines += [f"{p}\tNM_{i}\t{s}\t{i}" for i, (p, s) in enumerate(symbols.items())]
    path.write_text("\n".join(lines) + "\n")


def geo_cfg(source, annotation, **overrides) -> dict:
    return infer_cfg(source, gene_field="", annotation=str(annotation), **overrides)


def test_series_matrix_is_mapped_through_the_platform_annotation(model, tmp_path):
    probes, symbols = gpl_probes(model["landmarks"])
    write_series_matrix(tmp_path / "GSE1_series_matrix.txt.gz", probes)
    write_full_table(tmp_path / "GPL96-1.txt", symbols)
    values, samples, series = read_series_matrix(tmp_path / "GSE1_series_matrix.txt.gz")
    assert values.shape == (len(probes), 12) and series["platform_id"] == "GPL96"
    assert samples["characteristics_ch1_2"].iloc[0] == "grade: 2"
    summary = infer_targets(model["path"], geo_cfg(tmp_path / "GSE1_series_matrix.txt.gz",
                                                   tmp_path / "GPL96-1.txt"),
                            *outputs(tmp_path))
    counts = summary["probe_mapping"]
    assert (counts["probes"], counts["mapped"], counts["multi_gene_dropped"],
            counts["unannotated_dropped"], counts["not_in_annotation_dropped"],
            counts["genes"], counts["genes_of_several_probes"]) == (11, 7, 1, 2, 1, 6, 1)
    out = read_gctx(tmp_path / "out.gctx")
    assert json.loads(ad.read_h5ad(tmp_path / "out.h5ad").uns["probe_mapping"])["mapped"] == 7
    assert "mean of the gene's probes" in counts["rule"]
    # the collapsed landmark rows are the genes' values; the targets those of the CSV
    assert out.var.index[:6].tolist() == LANDMARKS
    assert out.var.loc["L0", "probes"] == "1000_at,1100_s_at"
    assert np.allclose(out.X[:, :6], model["landmarks"].to_numpy(), atol=1e-4)
    assert np.allclose(out.X[:, 6:], reference(model, tmp_path), atol=1e-4)
    assert out.obs["title"].iloc[0] == "title S000"  # the samples' metadata


def test_an_annot_file_with_its_own_markers_and_lower_case_symbol_column(model, tmp_path):
    probes, symbols = gpl_probes(model["landmarks"])
    write_series_matrix(tmp_path / "GSE1-GPL96_series_matrix.txt.gz", probes)
    rows = "\n".join(f"{p}\ttitle\t{s}" for p, s in symbols.items())
    (tmp_path / "GPL96.annot").write_text(
        "^Annotation\n!Annotation_platform = GPL96\n!platform_table_begin\n"
        f"ID\tGene title\tGene symbol\n{rows}\n!platform_table_end\n")
    summary = infer_targets(model["path"], geo_cfg(tmp_path / "GSE1-GPL96_series_matrix.txt.gz",
                                                   tmp_path / "GPL96.annot"),
                            *outputs(tmp_path))
    assert summary["probe_mapping"]["genes"] == 6
    # Windows line ends and a trailing tab on every table line (an empty, unnamed column)
    source = tmp_path / "GSE7_series_matrix.txt"
    text = gzip.open(tmp_path / "GSE1-GPL96_series_matrix.txt.gz", "rt").read()
    table = text.split("!series_matrix_table_begin\n")[1].split("!series_matrix_table_end")[0]
    source.write_bytes(text.replace(table, table.replace("\n", "\t\n"))
                       .replace("\n", "\r\n").encode())
    values, _, _ = read_series_matrix(source)
    assert list(values.columns) == list(probes.columns)


def test_null_in_a_landmark_names_the_sample_and_the_gene(model, tmp_path):
    probes, symbols = gpl_probes(model["landmarks"])
    source = tmp_path / "GSE2_series_matrix.txt.gz"
    write_series_matrix(source, probes, null={("1003_at", "S005"), ("2001_at", "S001")})
    write_full_table(tmp_path / "gpl.txt", symbols)
    with pytest.raises(MedgenInputError) as err:
        infer_targets(model["path"], geo_cfg(source, tmp_path / "gpl.txt"), *outputs(tmp_path))
    # one value missing: one sample, one gene named (not every landmark of the profile)
    assert "1 missing (NaN, null)" in str(err.value)
    assert "sample 'S005' gene 'L3' (row 'L3: probes 1003_at')" in str(err.value)
    assert not any(p.exists() for p in outputs(tmp_path))
    # the same in a GCTX with probe ids as rows: the row is named too
    broken = model["landmarks"].copy()
    broken.loc["S003", "L2"] = np.nan
    gctx = write_profiles_gctx(tmp_path / "nan.gctx", broken)
    with pytest.raises(MedgenInputError, match=r"1 missing .*'S003' gene 'L2' \(row '2_at'\)"):
        infer_targets(model["path"], infer_cfg(gctx), *outputs(tmp_path))


def test_probe_ids_are_text_as_written_less_blanks(model, tmp_path):
    """Probe ids that look like numbers ('0010', '1.10', '1E5') were read as 10, 1.1 and
    100000.0 while the annotation kept its text, and ids with blanks around them (inside
    or outside the quotes, or unquoted) kept the blanks: nothing mapped."""
    ids = {"L0": "0010", "L1": "1.10", "L2": "1E5", "L3": "1003_at", "L4": "1004_at",
           "L5": "1005_at"}
    probes = model["landmarks"].rename(columns=ids).T
    source = tmp_path / "GSE9_series_matrix.txt.gz"
    write_series_matrix(source, probes)
    with gzip.open(source, "rt") as handle:
        text = handle.read()
    text = (text.replace('"1003_at"', '"1003_at "').replace('"1004_at"', " 1004_at")
            .replace('"1005_at"', '"1005_at" '))
    with gzip.open(source, "wt") as handle:
        handle.write(text)
    values, _, _ = read_series_matrix(source)
    assert list(values.index) == list(ids.values())
    write_full_table(tmp_path / "gpl.txt", {i: g for g, i in ids.items()})
    summary = infer_targets(model["path"], geo_cfg(source, tmp_path / "gpl.txt"),
                            *outputs(tmp_path))
    assert summary["probe_mapping"]["mapped"] == 6
    assert np.allclose(read_gctx(tmp_path / "out.gctx").X[:, 6:], reference(model, tmp_path),
                       atol=1e-4)


def test_a_short_row_in_a_series_matrix_is_refused_naming_it(model, tmp_path):
    """A row one cell short was read with NaN in its last sample, as if it were null."""
    probes, _ = gpl_probes(model["landmarks"])
    source = tmp_path / "GSE8_series_matrix.txt.gz"
    write_series_matrix(source, probes)
    with gzip.open(source, "rt") as handle:
        lines = handle.read().split("\n")
    row = next(i for i, line in enumerate(lines) if line.startswith('"1002_at"'))
    lines[row] = lines[row].rsplit("\t", 1)[0]
    with gzip.open(source, "wt") as handle:
        handle.write("\n".join(lines))
    with pytest.raises(MedgenInputError, match=rf"line {row + 1} \(probe '1002_at'\) of the "
                                               r"series matrix table has 11 values, the "
                                               r"header 12 samples"):
        read_series_matrix(source)


def test_broken_series_matrices_and_annotations_are_refused(model, tmp_path):
    probes, symbols = gpl_probes(model["landmarks"])
    truncated = tmp_path / "GSE3_series_matrix.txt.gz"
    write_series_matrix(truncated, probes, end=False)
    with pytest.raises(MedgenInputError, match="no '!series_matrix_table_end'.*truncated"):
        read_series_matrix(truncated)
    not_matrix = tmp_path / "GSE4_series_matrix.txt"
    not_matrix.write_text("ID_REF\tGSM1\n1_at\t3\n")
    with pytest.raises(MedgenInputError, match="no '!series_matrix_table_begin'"):
        read_series_matrix(not_matrix)
    words = tmp_path / "GSE5_series_matrix.txt.gz"
    write_series_matrix(words, probes, null={("1001_at", "S002")}, missing="n/a")
    with pytest.raises(MedgenInputError, match="non-numeric value 'n/a' of probe '1001_at'"):
        read_series_matrix(words)
    write_series_matrix(tmp_path / "GSE6_series_matrix.txt.gz", probes)
    write_full_table(tmp_path / "no_symbol.txt", symbols, column="Gene Title")
    with pytest.raises(MedgenInputError, match="no column 'Gene Symbol'.*Gene Title"):
        infer_targets(model["path"], geo_cfg(tmp_path / "GSE6_series_matrix.txt.gz",
                                             tmp_path / "no_symbol.txt"), *outputs(tmp_path))
    other = {f"ILMN_{i}": g for i, g in enumerate(LANDMARKS)}  # another platform's table
    write_full_table(tmp_path / "illumina.txt", other)
    with pytest.raises(MedgenInputError, match="none of its 11 probes maps to one gene"):
        probes_to_genes(probes, read_platform_annotation(tmp_path / "illumina.txt",
                                                         "Gene Symbol"))
    # without the annotation, the probe ids are named as such
    with pytest.raises(MedgenInputError, match="look like Affymetrix probe ids.*annotation"):
        infer_targets(model["path"], infer_cfg(tmp_path / "GSE6_series_matrix.txt.gz",
                                               gene_field=""), *outputs(tmp_path))
    # a GCTX carries its own gene metadata
    gctx = write_profiles_gctx(tmp_path / "p.gctx", model["landmarks"])
    with pytest.raises(MedgenInputError, match="annotation is for probe-level tables"):
        infer_targets(model["path"], infer_cfg(gctx, annotation="gpl.txt"), *outputs(tmp_path))
    assert not any(p.exists() for p in outputs(tmp_path))


# --- item 6: scales -----------------------------------------------------------------------

def test_linear_and_log2_scales(model, tmp_path):
    expected = reference(model, tmp_path)
    linear = 2.0 ** model["landmarks"] * 1000 - 1  # MAS5-like: 1,000s to 100,000s
    linear.to_csv(tmp_path / "mas5.csv")
    with pytest.raises(MedgenInputError, match="linear intensities.*input_scale: linear"):
        infer_targets(model["path"], infer_cfg(tmp_path / "mas5.csv", gene_field=""),
                      *outputs(tmp_path))
    (2.0 ** model["landmarks"] - 1).to_csv(tmp_path / "linear.csv")
    summary = infer_targets(model["path"], infer_cfg(tmp_path / "linear.csv", gene_field="",
                                                     input_scale="linear"), *outputs(tmp_path))
    out = read_gctx(tmp_path / "out.gctx")
    assert np.allclose(out.X[:, 6:], expected, atol=1e-4)  # log2(x + 1) undoes 2^x - 1
    assert np.allclose(out.X[:, :6], model["landmarks"].to_numpy(), atol=1e-4)
    assert "log2(x + 1)" in summary["units"]
    assert "log2(x + 1)" in ad.read_h5ad(tmp_path / "out.h5ad").uns["input_scale_rule"]
    negative = (2.0 ** model["landmarks"] - 1).assign(L4=-3.0)
    negative.to_csv(tmp_path / "negative.csv")
    with pytest.raises(MedgenInputError, match="'L4'.*of sample 'S000' is -3.*not negative"):
        infer_targets(model["path"], infer_cfg(tmp_path / "negative.csv", gene_field="",
                                               input_scale="linear"), *outputs(tmp_path))
    model["landmarks"].to_csv(tmp_path / "rma.csv")
    for p in outputs(tmp_path):
        p.unlink()
    infer_targets(model["path"], infer_cfg(tmp_path / "rma.csv", gene_field="",
                                           input_scale="log2"), *outputs(tmp_path))
    assert np.allclose(read_gctx(tmp_path / "out.gctx").X[:, 6:], expected, atol=1e-5)
    # log2 data declared as linear or as z-scores: refused, naming the scale they look like
    for declared in ("linear", "zscore"):
        with pytest.raises(MedgenInputError, match="log2 intensities.*input_scale: log2"):
            infer_targets(model["path"], infer_cfg(tmp_path / "rma.csv", gene_field="",
                                                   input_scale=declared), *outputs(tmp_path))


def test_z_scores_fed_as_log2_data_are_refused(model, tmp_path):
    """L1000 level 5 (z-scores, mostly within +-3) to a model of log2 data: few values
    pass clip_z, but every landmark lies ~6 training sds below its mean."""
    rng = np.random.default_rng(1)
    z = pd.DataFrame(rng.normal(0, 1.2, size=(12, 6)), index=model["landmarks"].index,
                     columns=LANDMARKS)
    z.to_csv(tmp_path / "level5.csv")
    with pytest.raises(MedgenInputError,
                       match=r"12 of 12 profiles do not fit.*training landmarks have means 5.*"
                             r"12 profile\(s\) lie below the training means: they look like "
                             r"values centred on 0.*"
                             r"'S000' \(median -[4-9]\.\d sd.*input_scale: zscore would fit"):
        infer_targets(model["path"], infer_cfg(tmp_path / "level5.csv", gene_field=""),
                      *outputs(tmp_path))
    assert not any(p.exists() for p in outputs(tmp_path))
    # log2 data with one wild landmark (1 of 6 = 17%) in 6 profiles: above
    # max_clipped_fraction per profile, though 8% of all values
    wild = model["landmarks"].copy()
    wild.iloc[:, 0] = wild.iloc[:, 0].where(np.arange(12) > 5, 60.0)
    wild.to_csv(tmp_path / "wild.csv")
    with pytest.raises(MedgenInputError,
                       match=r"6 of 12 profiles.*6 profile\(s\) have landmarks far out.*'S000' "
                             r"\(median .*17% beyond \+-10.*another footing.*raise clip_z"):
        infer_targets(model["path"], infer_cfg(tmp_path / "wild.csv", gene_field="",
                                               chunk_size=12), *outputs(tmp_path))
    summary = infer_targets(model["path"], infer_cfg(tmp_path / "wild.csv", gene_field="",
                                                     chunk_size=12, max_clipped_fraction=0.2),
                            *outputs(tmp_path))
    assert summary["clipped_fraction"] == pytest.approx(6 / 72)
    assert summary["profile_fit"]["max_clipped_fraction"] == pytest.approx(1 / 6)


def mixed_scales(model) -> pd.DataFrame:
    """40 log2 profiles like the training data, but P005 uploaded as linear (MAS5) values
    and P007, P008 as L1000 level-5 z-scores: one GEO series mixing scales."""
    rng = np.random.default_rng(1)
    x = rng.normal(6, 1, size=(40, 6))
    x[5] = 2 ** x[5]
    x[7], x[8] = rng.normal(0, 1.5, 6), rng.normal(0, 1.5, 6)
    return pd.DataFrame(x, index=[f"P{i:03d}" for i in range(40)], columns=LANDMARKS)


def test_the_scale_is_checked_per_profile_whatever_the_chunk_size(model, tmp_path):
    """A few misfit profiles among many that fit were accepted when the chunk was large
    (the chunk's median hid them) and refused unnamed when it was small."""
    mixed_scales(model).to_csv(tmp_path / "mixed.csv")
    messages = []
    for size in (1000, 7, 1):
        with pytest.raises(MedgenInputError) as err:
            infer_targets(model["path"], infer_cfg(tmp_path / "mixed.csv", gene_field="",
                                                   chunk_size=size), *outputs(tmp_path))
        messages.append(str(err.value))
        assert not any(p.exists() for p in outputs(tmp_path))
    assert messages[0] == messages[1] == messages[2]
    message = messages[0]
    assert "3 of 40 profiles do not fit the model with input_scale: data" in message
    assert re.search(r"2 profile\(s\) lie below the training means: they look like values "
                     r"centred on 0.*"
                     r"first: 'P007' \(median -\d\.\d sd.*'P008'.*input_scale: zscore would fit",
                     message)
    assert re.search(r"1 profile\(s\) lie above the training means: they look like linear "
                     r"intensities.*first: 'P005' "
                     r"\(median \+\d+\.\d sd.*100% beyond \+-10.*input_scale: linear would fit",
                     message)
    assert "the other 37 fit: the input mixes scales" in message
    assert "raise clip_z" not in message
    # the same profiles without the misfits pass, and say how far the worst one lay
    mixed_scales(model).drop(["P005", "P007", "P008"]).to_csv(tmp_path / "fit.csv")
    summary = infer_targets(model["path"], infer_cfg(tmp_path / "fit.csv", gene_field="",
                                                     chunk_size=1000), *outputs(tmp_path))
    assert summary["profiles"] == 37 and summary["profile_fit"]["max_abs_median_z"] < 3


@pytest.mark.realdata
def test_real_l1000_level4_profiles_fit_as_z_scores(shared_data):
    """The per-profile limits let the strongest of the 377 real level-4 profiles through
    (median |z| up to 3.2, 5.6% beyond +-10) with the default settings."""
    from types import SimpleNamespace

    from medgen import config as medgen_config
    from medgen.tasks.expression_inference.infer import ScaleCheck

    real = read_gctx(shared_data / "expression/lincs_l1000/test_l1000_highprecision.gctx")
    defaults = medgen_config.validate({"tasks": ["expression_inference"]}
                                      )["expression_inference"]["infer"]
    fit = ScaleCheck(SimpleNamespace(), {**defaults, "input_scale": "zscore"}, "l1000.gctx")
    values = np.asarray(real.X, dtype=np.float32)
    assert fit.add(real.obs_names.to_numpy(), values, values) == 0
    fit.verdict()
    assert 0.05 < fit.worst["clipped"] < defaults["max_clipped_fraction"]


# --- item 7: gene identifiers ---------------------------------------------------------------

ENTREZ = {f"L{j}": str(7157 + j) for j in range(6)}


def write_map(path, ids: dict[str, str], header=("entrez", "symbol")) -> None:
    lines = ["\t".join(header)] + [f"{i}\t{g}" for g, i in ids.items()] + ["999\tOTHER"]
    path.write_text("\n".join(lines) + "\n")


def test_entrez_ids_are_mapped_for_tables_and_gctx(model, tmp_path):
    expected = reference(model, tmp_path)
    entrez = model["landmarks"].rename(columns=ENTREZ)
    entrez.to_csv(tmp_path / "entrez.csv")
    cfg = infer_cfg(tmp_path / "entrez.csv", gene_field="")
    with pytest.raises(MedgenInputError,
                       match=r"not among the file's columns \(header\) \(orientation: "
                             r"samples_as_rows\).*look like numeric Entrez ids \(e\.g\. "
                             r"'7157'.*gene_id_type: entrez and gene_id_map"):
        infer_targets(model["path"], cfg, *outputs(tmp_path))
    with pytest.raises(MedgenInputError, match="gene_id_type is 'entrez' but gene_id_map is "
                                               "empty.*by symbol only"):
        infer_targets(model["path"], {**cfg, "gene_id_type": "entrez"}, *outputs(tmp_path))
    write_map(tmp_path / "map.tsv", ENTREZ)
    summary = infer_targets(model["path"], {**cfg, "gene_id_type": "entrez",
                                            "gene_id_map": str(tmp_path / "map.tsv")},
                            *outputs(tmp_path))
    assert summary["gene_ids"]["mapped"] == 6
    assert np.allclose(read_gctx(tmp_path / "out.gctx").X[:, 6:], expected, atol=1e-5)
    # a map without its header line, or with its columns swapped
    (tmp_path / "no_header.tsv").write_text("".join(f"{i}\t{g}\n" for g, i in ENTREZ.items()))
    (tmp_path / "swapped.tsv").write_text(
        "symbol\tentrez\n" + "".join(f"{g}\t{i}\n" for g, i in ENTREZ.items()))
    for name, message in (("no_header", "looks like a mapping, not a header"),
                          ("swapped", "in its second: the map's columns are the id first")):
        with pytest.raises(MedgenInputError, match=message):
            infer_targets(model["path"], {**cfg, "gene_id_type": "entrez",
                                          "gene_id_map": str(tmp_path / f"{name}.tsv")},
                          *outputs(tmp_path))
    # a GCTX whose Entrez field is numeric (L1000's pr_gene_id): read as '7157', not 7157.0
    for p in outputs(tmp_path):
        p.unlink()
    gctx = write_profiles_gctx(tmp_path / "e.gctx", model["landmarks"])
    rows = read_gctx(gctx).var.assign(pr_gene_id=[float(ENTREZ[g]) for g in LANDMARKS])
    from medgen.data.io.gctx_stream import GctxWriter
    with GctxWriter(tmp_path / "e2.gctx", rows, pd.DataFrame(index=model["landmarks"].index)
                    ) as out:
        out.write(0, model["landmarks"].to_numpy(np.float32))
    infer_targets(model["path"], infer_cfg(tmp_path / "e2.gctx", gene_field="pr_gene_id",
                                           gene_id_type="entrez",
                                           gene_id_map=str(tmp_path / "map.tsv")),
                  *outputs(tmp_path))
    assert np.allclose(read_gctx(tmp_path / "out.gctx").X[:, 6:], expected, atol=1e-5)


def test_missing_symbols_in_a_map_are_not_mapped_and_rows_carry_the_symbol(model, tmp_path):
    """A biomaRt / R export writes 'NA' or 'nan' for an id without a symbol: those counted
    as mapped (to a gene named 'NA'); the output's pr_gene_symbol held the Entrez ids."""
    frame = model["landmarks"].rename(columns=ENTREZ).assign(**{"555": 1.0, "556": 2.0,
                                                                "557": 3.0})
    frame.to_csv(tmp_path / "entrez.csv")
    write_map(tmp_path / "map.tsv", ENTREZ)
    with open(tmp_path / "map.tsv", "a") as handle:
        handle.write("555\tNA\n556\tnan\n557\t---\n")
    summary = infer_targets(model["path"], infer_cfg(tmp_path / "entrez.csv", gene_field="",
                                                     gene_id_type="entrez",
                                                     gene_id_map=str(tmp_path / "map.tsv")),
                            *outputs(tmp_path))
    assert summary["gene_ids"]["mapped"] == 6 and summary["gene_ids"]["ids"] == 9
    rows = read_gctx(tmp_path / "out.gctx").var
    assert list(rows["pr_gene_symbol"].iloc[:9]) == LANDMARKS + ["-666"] * 3
    assert list(rows.index[:7]) == [ENTREZ[g] for g in LANDMARKS] + ["555"]


def test_a_negative_linear_value_is_described_by_what_its_profile_looks_like(model, tmp_path):
    """One background-subtracted negative in MAS5-like intensities was answered with
    'log-scale data: input_scale: log2'; the hint now follows what the profile looks like."""
    linear = 2.0 ** model["landmarks"] * 10
    linear.iloc[3, 1] = -12.5
    linear.to_csv(tmp_path / "mas4.csv")
    with pytest.raises(MedgenInputError) as err:
        infer_targets(model["path"], infer_cfg(tmp_path / "mas4.csv", gene_field="",
                                               input_scale="linear"), *outputs(tmp_path))
    message = str(err.value)
    assert "gene 'L1' (row 'L1') of sample 'S003' is -12.5" in message
    assert re.search(r"1 of its 6 landmark values are negative, the others look like linear "
                     r"intensities.*floor them", message)
    assert "input_scale: log2" not in message
    # z-scores declared linear: their negatives point at input_scale: zscore
    rng = np.random.default_rng(2)
    pd.DataFrame(rng.normal(0, 1.5, size=(12, 6)), index=model["landmarks"].index,
                 columns=LANDMARKS).to_csv(tmp_path / "z.csv")
    with pytest.raises(MedgenInputError, match="look like values centred on 0.*input_scale: "
                                               "zscore"):
        infer_targets(model["path"], infer_cfg(tmp_path / "z.csv", gene_field="",
                                               input_scale="linear"), *outputs(tmp_path))
    assert not any(p.exists() for p in outputs(tmp_path))


def test_ensembl_ids_with_versions_in_an_h5ad(model, tmp_path):
    expected = reference(model, tmp_path)
    ensembl = [f"ENSG{j:011d}.{j + 3}" for j in range(6)]
    adata = ad.AnnData(model["landmarks"].to_numpy(), obs=pd.DataFrame(
        index=model["landmarks"].index), var=pd.DataFrame(index=ensembl))
    adata.write_h5ad(tmp_path / "e.h5ad")
    (tmp_path / "map.csv").write_text(
        "gene_id,gene_name\n" + "".join(f"ENSG{j:011d},L{j}\n" for j in range(6)))
    cfg = infer_cfg(tmp_path / "e.h5ad", gene_field="")
    with pytest.raises(MedgenInputError, match="the h5ad's var names.*look like Ensembl gene"):
        infer_targets(model["path"], cfg, *outputs(tmp_path))
    infer_targets(model["path"], {**cfg, "gene_id_type": "ensembl",
                                  "gene_id_map": str(tmp_path / "map.csv")}, *outputs(tmp_path))
    assert np.allclose(read_gctx(tmp_path / "out.gctx").X[:, 6:], expected, atol=1e-5)
    assert list(normalise_ids(["ENSG00000141510.16 "], "ensembl")) == ["ENSG00000141510"]
    # a map giving one id two symbols is refused
    (tmp_path / "bad.csv").write_text("id,symbol\nENSG00000000000,L0\nENSG00000000000.2,L1\n")
    with pytest.raises(MedgenInputError, match="map to several symbols.*'L0', 'L1'"):
        infer_targets(model["path"], {**cfg, "gene_id_type": "ensembl",
                                      "gene_id_map": str(tmp_path / "bad.csv")},
                      *outputs(tmp_path))


def test_the_missing_landmark_message_names_the_axes(model, tmp_path):
    model["landmarks"].T.to_csv(tmp_path / "genes_as_rows.csv")
    with pytest.raises(MedgenInputError,
                       match=r"not among the file's columns \(header\).*look like gene "
                             r"symbols or names.*the file's rows \(first column\) hold 6 of "
                             r"them: set orientation"):
        infer_targets(model["path"], infer_cfg(tmp_path / "genes_as_rows.csv", gene_field=""),
                      *outputs(tmp_path))
    # a GCTX read by its probe ids while a metadata field holds the symbols
    gctx = write_profiles_gctx(tmp_path / "p.gctx", model["landmarks"])
    with pytest.raises(MedgenInputError,
                       match=r"not among the GCTX row ids.*field 'pr_gene_symbol' holds 6 of "
                             r"them: set gene_field: pr_gene_symbol"):
        infer_targets(model["path"], infer_cfg(gctx, gene_field=""), *outputs(tmp_path))
    assert describe_ids(["ILMN_1", "ILMN_2"]).startswith("look like Illumina probe ids")


# --- item 9: several input rows of one landmark gene -------------------------------------------

def test_h5ad_rows_of_one_landmark_symbol_refused_naming_ids_or_averaged(model, tmp_path):
    values = model["landmarks"].to_numpy()
    x = np.hstack([values, values[:, :1] + 1.0])
    var = pd.DataFrame({"symbol": LANDMARKS + ["L0"]},
                       index=[f"ENSG{j:011d}" for j in range(7)])
    ad.AnnData(x, obs=pd.DataFrame(index=model["landmarks"].index), var=var
               ).write_h5ad(tmp_path / "dup.h5ad")
    cfg = infer_cfg(tmp_path / "dup.h5ad", gene_field="symbol")
    with pytest.raises(MedgenInputError,
                       match=r"'L0' \(ids 'ENSG00000000000', 'ENSG00000000006'\).*"
                             r"duplicate_genes: mean"):
        infer_targets(model["path"], cfg, *outputs(tmp_path))
    infer_targets(model["path"], {**cfg, "duplicate_genes": "mean"}, *outputs(tmp_path))
    shifted = model["landmarks"].assign(L0=model["landmarks"]["L0"] + 0.5)
    shifted.to_csv(tmp_path / "shifted.csv")
    expected = (tmp_path / "s.gctx", tmp_path / "s.h5ad")
    infer_targets(model["path"], infer_cfg(tmp_path / "shifted.csv", gene_field=""), *expected)
    assert np.allclose(read_gctx(tmp_path / "out.gctx").X[:, 7:],
                       read_gctx(expected[0]).X[:, 6:], atol=1e-5)
    # two Entrez ids mapped to one symbol: the same rule, naming the ids as read
    ids = model["landmarks"].rename(columns=ENTREZ).assign(**{"7999": values[:, 0]})
    ids.to_csv(tmp_path / "entrez.csv")
    write_map(tmp_path / "map.tsv", ENTREZ)
    with open(tmp_path / "map.tsv", "a") as handle:
        handle.write("7999\tL0\n")  # a second id of L0
    with pytest.raises(MedgenInputError, match=r"'L0' \(ids '7157', '7999'\)"):
        infer_targets(model["path"], infer_cfg(tmp_path / "entrez.csv", gene_field="",
                                               gene_id_type="entrez",
                                               gene_id_map=str(tmp_path / "map.tsv")),
                      *outputs(tmp_path))


def test_a_probe_level_table_goes_through_the_annotation_too(model, tmp_path):
    """GPL96 arrays as CSV (probes as rows, like the bladder training table)."""
    probes, symbols = gpl_probes(model["landmarks"])
    probes.to_csv(tmp_path / "probes.csv")
    write_full_table(tmp_path / "gpl.txt", symbols)
    summary = infer_targets(model["path"], geo_cfg(tmp_path / "probes.csv", tmp_path / "gpl.txt",
                                                   orientation="genes_as_rows"),
                            *outputs(tmp_path))
    assert summary["probe_mapping"]["mapped"] == 7
    assert np.allclose(read_gctx(tmp_path / "out.gctx").X[:, 6:], reference(model, tmp_path),
                       atol=1e-4)


@pytest.mark.parametrize(("values", "kind"), [
    (2.0 ** np.random.default_rng(0).normal(8, 2, 500), "linear"),  # MAS5
    (np.random.default_rng(0).normal(0, 1.5, 500), "zscore"),  # L1000 level 5
    (np.random.default_rng(0).normal(8, 2, 500), "log2"),  # RMA
])
def test_what_landmark_values_look_like(values, kind):
    from medgen.tasks.expression_inference.infer import describe_values

    assert describe_values(values)[1] == kind


def test_log2_or_linear_input_for_a_model_of_linear_data_is_refused():
    from types import SimpleNamespace

    from medgen.tasks.expression_inference.infer import check_model_scale

    linear_model = SimpleNamespace(x_scaler=SimpleNamespace(mean=np.array([300.0, 12000.0])))
    for scale in ("log2", "linear"):
        with pytest.raises(MedgenInputError, match="means 300 to 1.2e\\+04 \\(linear scale\\)"):
            check_model_scale(linear_model, scale, "p.csv")
    check_model_scale(linear_model, "data", "p.csv")
