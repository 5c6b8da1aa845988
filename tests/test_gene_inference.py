"""Expression inference end to end on small synthetic tables: the prepared landmark/target
file, a trained model applied by gene name, GCTX/h5ad outputs with the input's metadata,
the evaluation against baselines, and one clear error for each kind of bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from medgen import registry
from medgen.data.io.gctx import read_gctx
from medgen.data.io.gctx_stream import GctxWriter
from medgen.errors import MedgenInputError
from medgen.models.expression_inference import load as load_inference_model
from medgen.tasks.expression_inference.evaluate import evaluate_expression_inference
from medgen.tasks.expression_inference.infer import infer_targets
from medgen.tasks.expression_inference.prepare import (
    prepare_expression_inference,
    read_expression_inference_data,
)
from medgen.train import train_model
from tests.conftest import inference_section, make_inference_table

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}


pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints


def tiny(family: str, epochs: int = 30) -> dict:
    hp = registry.resolve_hparams(family, "default")
    sizes = {"generator_hidden": [16], "discriminator_hidden": [8], "hidden": [16]}
    return {**hp, **{k: v for k, v in sizes.items() if k in hp}, "max_epochs": epochs,
            "batch_size": 16}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A prepared table (3 folds) and a D-GEX model trained on it."""
    root = tmp_path_factory.mktemp("inference")
    frame = make_inference_table(root / "table.csv")
    data = root / "data.h5ad"
    prepare_expression_inference(inference_section(root / "table.csv"), 0, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train_model("dgex", data, tiny("dgex"), TRAINING, 0, root / "dgex")
    return {"root": root, "frame": frame, "data": data, "model": model}


def write_profiles_gctx(path, frame: pd.DataFrame, symbols: list[str] | None = None):
    """Samples x genes ``frame`` as a GCTX with probe-like row ids and a symbol field."""
    genes = list(frame.columns)
    rows = pd.DataFrame({"pr_gene_symbol": symbols or genes, "pr_is_lmark": 1},
                        index=[f"{i}_at" for i in range(len(genes))])
    cols = pd.DataFrame({"cell_id": ["A375"] * len(frame), "pert_dose_unit": ["µM"] * len(frame)},
                        index=frame.index)
    with GctxWriter(path, rows, cols) as out:
        out.write(0, frame.to_numpy(np.float32))
    return path


def infer_cfg(path, **overrides) -> dict:
    cfg = {"path": str(path), "format": "auto", "orientation": "samples_as_rows",
           "gene_field": "pr_gene_symbol", "duplicate_genes": "refuse", "input_scale": "data",
           "clip_z": 10.0, "chunk_size": 7, "model": "", "max_clipped_fraction": 0.05,
           "gene_id_type": "symbol", "gene_id_map": "", "annotation": "",
           "annotation_symbol_column": "Gene Symbol"}
    return {**cfg, **overrides}


def test_prepared_file_matches_genes_by_name_and_assigns_folds(trained):
    x, y, obs, uns = read_expression_inference_data(trained["data"])
    frame = trained["frame"]
    assert list(x.columns) == [f"L{j}" for j in range(6)]
    assert np.allclose(x.to_numpy(), frame[x.columns].to_numpy(), atol=1e-5)
    assert np.allclose(y.to_numpy(), frame[y.columns].to_numpy(), atol=1e-5)
    assert sorted(obs["fold"].unique()) == [0, 1, 2] and (obs["split"] == "train").all()
    assert uns["gene_sets"]["landmarks_found"] == 6 and uns["gene_sets"]["targets_found"] == 10
    assert uns["provenance"]["inputs"]  # checksums of the table


def test_inferred_targets_in_data_units_with_the_inputs_metadata(trained, tmp_path):
    frame = trained["frame"]
    profiles = frame[[f"L{j}" for j in range(6)]].iloc[::-1]
    source = write_profiles_gctx(tmp_path / "new.gctx", profiles)
    summary = infer_targets(trained["model"], infer_cfg(source), tmp_path / "out.gctx",
                            tmp_path / "out.h5ad")
    assert summary["profiles"] == len(frame) and summary["targets"] == 10
    out = read_gctx(tmp_path / "out.gctx")
    import anndata as ad

    h5ad = ad.read_h5ad(tmp_path / "out.h5ad")
    assert np.array_equal(out.X, h5ad.X) and list(out.obs_names) == list(profiles.index)
    assert out.obs["pert_dose_unit"].iloc[0] == "µM"  # sample metadata carried over
    targets = out.var["inferred"].astype(int) == 1
    assert out.var.loc[targets, "pr_gene_symbol"].tolist() == [f"T{j}" for j in range(10)]
    assert out.var.loc[~targets].index.tolist() == [f"{i}_at" for i in range(6)]
    # the landmark rows hold the input values; the targets are close to the measured ones
    assert np.allclose(out.X[:, :6], profiles.to_numpy(), atol=1e-5)
    measured = frame.loc[profiles.index, [f"T{j}" for j in range(10)]].to_numpy()
    mean_error = np.abs(out.X[:, 6:] - measured).mean()
    assert mean_error < 0.5 * np.abs(measured - measured.mean(axis=0)).mean()
    # another gene order in the input gives the same predictions (matched by name)
    shuffled = profiles[profiles.columns[::-1]]
    write_profiles_gctx(tmp_path / "shuffled.gctx", shuffled)
    infer_targets(trained["model"], infer_cfg(tmp_path / "shuffled.gctx"),
                  tmp_path / "s.gctx", tmp_path / "s.h5ad")
    assert np.allclose(read_gctx(tmp_path / "s.gctx").X[:, 6:], out.X[:, 6:], atol=1e-5)


def test_bad_profiles_are_refused_and_nothing_is_written(trained, tmp_path):
    frame = trained["frame"][[f"L{j}" for j in range(6)]]
    outputs = (tmp_path / "out.gctx", tmp_path / "out.h5ad")
    # a model applied to profiles of another gene set
    other = write_profiles_gctx(tmp_path / "other.gctx", frame,
                                [f"G{j}" for j in range(6)])
    with pytest.raises(MedgenInputError, match=r"6 of the model's 6 landmark genes.*'L0'"):
        infer_targets(trained["model"], infer_cfg(other), *outputs)
    with pytest.raises(MedgenInputError, match="no row-metadata field 'symbol'"):
        infer_targets(trained["model"], infer_cfg(other, gene_field="symbol"), *outputs)
    # NaN in a late chunk: the error names the sample, and no output is left behind
    broken = frame.copy()
    broken.iloc[-1, 2] = np.nan
    source = write_profiles_gctx(tmp_path / "nan.gctx", broken)
    with pytest.raises(MedgenInputError, match=rf"NaN.*{broken.index[-1]}"):
        infer_targets(trained["model"], infer_cfg(source), *outputs)
    assert not any(p.exists() for p in outputs) and not list(tmp_path.glob(".*part"))
    # NaN in a row the model does not read: ignored
    extra = frame.assign(X9=np.nan)
    source = write_profiles_gctx(tmp_path / "unused.gctx", extra)
    infer_targets(trained["model"], infer_cfg(source), *outputs)
    out = read_gctx(outputs[0])
    assert out.var["model_landmark"].astype(int).tolist()[:7] == [1] * 6 + [0]
    assert np.isfinite(out.X[:, 7:]).all()
    for p in outputs:
        p.unlink()
    # profiles on another scale than declared (z-scores read as data units)
    z = write_profiles_gctx(tmp_path / "z.gctx", (frame - frame.mean()) * 40)
    with pytest.raises(MedgenInputError, match="input_scale: zscore"):
        infer_targets(trained["model"], infer_cfg(z), *outputs)
    assert not any(p.exists() for p in outputs)
    # a missing model file
    with pytest.raises(MedgenInputError, match="no such|does not exist"):
        infer_targets(tmp_path / "missing.pt", infer_cfg(source), *outputs)


def test_bad_tables_give_one_clear_error(tmp_path):
    frame = make_inference_table(tmp_path / "t.csv")
    out = tmp_path / "data.h5ad"
    # landmark genes missing from the data
    with pytest.raises(MedgenInputError, match=r"only 6 of 8 landmark genes.*'X1'"):
        prepare_expression_inference(inference_section(
            tmp_path / "t.csv", landmarks=[*[f"L{j}" for j in range(6)], "X1", "X2"]), 0, out)
    # NaN in target genes
    frame.iloc[3, 8] = np.nan
    frame.to_csv(tmp_path / "nan.csv")
    with pytest.raises(MedgenInputError, match=r"NaN or infinite values in 1 target genes.*T2"):
        prepare_expression_inference(inference_section(tmp_path / "nan.csv"), 0, out)
    # duplicate gene symbols
    dup = frame.fillna(0.0).rename(columns={"T1": "T0"})
    dup.to_csv(tmp_path / "dup.csv")
    with pytest.raises(MedgenInputError, match="T0"):
        prepare_expression_inference(inference_section(tmp_path / "dup.csv"), 0, out)
    # a probe/gene row twice: refused, never averaged as one
    # (GEO layout: probes as rows)
    rows = frame.fillna(0.0).T
    pd.concat([rows, rows.loc[["L1"]] + 1.0]).to_csv(tmp_path / "d.csv")
    section = inference_section(tmp_path / "t.csv")
    section["table"] = {**section["table"], "path": str(tmp_path / "d.csv"),
                        "orientation": "genes_as_rows"}
    with pytest.raises(MedgenInputError, match=r"appear more than once.*'L1'"):
        prepare_expression_inference(section, 0, out)
    # a gene both landmark and target
    with pytest.raises(MedgenInputError, match=r"both as landmarks and targets: \['L0'\]"):
        prepare_expression_inference(inference_section(
            tmp_path / "t.csv", targets=["L0", "T1"]), 0, out)
    # more folds than patients
    with pytest.raises(MedgenInputError, match="60 patients cannot make 80 folds"):
        prepare_expression_inference(inference_section(tmp_path / "t.csv", folds=80), 0, out)
    assert not out.exists()


def test_a_gct_whose_row_metadata_and_matrix_disagree_is_refused(trained, tmp_path):
    import h5py

    source = write_profiles_gctx(tmp_path / "p.gctx", trained["frame"][["L0", "L1"]])
    with h5py.File(source, "r+") as handle:
        del handle["/0/META/ROW/pr_gene_symbol"]
        handle["/0/META/ROW/pr_gene_symbol"] = np.array([b"L0", b"L1", b"L2"])
    with pytest.raises(MedgenInputError, match=r"p\.gctx.*pr_gene_symbol"):
        infer_targets(trained["model"], infer_cfg(source), tmp_path / "o.gctx",
                      tmp_path / "o.h5ad")


def test_zero_variance_genes_are_predicted_as_their_constant(tmp_path):
    frame = make_inference_table(tmp_path / "t.csv")
    frame["T3"] = 4.25  # a target constant in training
    frame["L2"] = 1.0  # and a constant landmark
    frame.to_csv(tmp_path / "const.csv")
    data = tmp_path / "data.h5ad"
    prepare_expression_inference(inference_section(tmp_path / "const.csv"), 0, data)
    path = train_model("ggan", data, tiny("ggan", 3), TRAINING, 0, tmp_path / "ggan")
    model = load_inference_model(path)
    x, y, _, _ = read_expression_inference_data(data)
    predicted = model.predict(model.align(x))
    assert np.isfinite(predicted).all()
    # sd 1 for constant genes: the output is the constant plus the network's (small) offset
    assert np.abs(predicted[:, list(y.columns).index("T3")] - 4.25).max() < 5.0


def test_evaluation_uses_the_trained_model_on_a_split_and_refits_on_folds(trained, tmp_path):
    hp = {"dgex": tiny("dgex")}
    evaluation = {"baselines": ["mean", "ridge", "knn"], "scatter_genes": 3}
    folds = evaluate_expression_inference(trained["data"], {"dgex": trained["model"]}, hp,
                                          evaluation, 0, tmp_path / "cv")
    table = pd.read_csv(tmp_path / "cv" / "metrics.tsv", sep="\t", index_col=0)
    assert folds["mode"].startswith("3-fold") and folds["n_evaluated"] == 60
    assert list(table.index) == ["dgex", "ridge", "mean", "knn"]
    assert table.loc["ridge", "mae"] < table.loc["mean", "mae"]
    for name in ("per_gene.png", "scatter.png", "per_gene.tsv", "metrics.json"):
        assert (tmp_path / "cv" / name).stat().st_size > 0
    # a fixed split: the model.pt itself predicts the test rows; a model trained on other
    # genes is refused by name
    import anndata as ad

    adata = ad.read_h5ad(trained["data"])
    adata.obs["fold"] = -1
    adata.obs["split"] = np.where(np.arange(adata.n_obs) % 5 == 0, "test", "train")
    adata.write_h5ad(tmp_path / "split.h5ad")
    split = evaluate_expression_inference(tmp_path / "split.h5ad", {"dgex": trained["model"]},
                                          hp, evaluation, 0, tmp_path / "split")
    assert split["mode"].startswith("trained on the train split") and split["n_evaluated"] == 12
    renamed = adata[:, :].copy()
    renamed.var_names = [f"X{j}" for j in range(renamed.n_vars)]
    renamed.write_h5ad(tmp_path / "renamed.h5ad")
    with pytest.raises(MedgenInputError, match="targets"):
        evaluate_expression_inference(tmp_path / "renamed.h5ad", {"dgex": trained["model"]},
                                      hp, evaluation, 0, tmp_path / "bad")


@pytest.mark.workflow
@pytest.mark.realdata
def test_workflow_gpl96_to_l1000_on_real_data(shared_data, tmp_path):
    """The shipped GPL96 config through Snakemake, 2 epochs: 5-fold evaluation beside the
    baselines, then the targets of the 377 real L1000 profiles as GCTX and h5ad."""
    import json

    import anndata as ad
    import yaml

    from conftest import REPO_ROOT, run_snakemake

    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"), "cache_dir": str(tmp_path / "cache"),
        "training": {"max_epochs": 2, "accelerator": "cpu", "progress_bar": False},
    }))
    config = REPO_ROOT / "config" / "datasets" / "gpl96_bladder_inference.yaml"
    run_snakemake("--cores", "2", "--configfile", str(config), str(override))
    run = tmp_path / "results" / "gpl96_bladder_inference"
    metrics = json.loads((run / "expression_inference/eval/metrics.json").read_text())
    assert metrics["mode"].startswith("5-fold") and metrics["n_evaluated"] == 57
    assert metrics["gene_sets"]["landmarks_found"] == 943
    # D-GEX's maps: 445 target genes are also landmarks (other probes), scored apart
    assert len(metrics["targets_also_landmarks"]["genes"]) == 445
    assert metrics["n_scored_targets"] == 9519 - 445
    table = {row["model"]: row for row in metrics["metrics"]}
    assert set(table) == {"ggan", "dgex", "ggan_l1_only", "ridge", "mean", "knn"}
    assert table["ridge"]["mae"] == pytest.approx(0.225, abs=0.002)  # the known number
    inferred = ad.read_h5ad(run / "expression_inference/inferred/ggan.h5ad")
    assert inferred.shape == (377, 978 + 9519)
    assert inferred.obs["pert_iname"].iloc[0] == "DMSO"  # the input's sample metadata
    assert "z-scores" in inferred.uns["units"]
    assert (inferred.var["inferred"].astype(int) == 1).sum() == 9519
    assert (inferred.var["pr_is_lmark"].astype(int) == 1).sum() == 978
    assert (inferred.var["also_landmark"].astype(int) == 1).sum() == 445
    gctx = read_gctx(run / "expression_inference/inferred/ggan.gctx")
    assert np.array_equal(gctx.X, inferred.X) and np.isfinite(gctx.X).all()
