"""The sequence-generation evaluation (issue 30 item 2): trained DNA GANs beside the i.i.d.
and Markov baselines against held-out windows, the classifier two-sample test, the tables,
FASTA and figures, and the workflow's plan and a small real-data run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from medgen import config as medgen_config
from medgen import planning, registry
from medgen.atomic import save_npz
from medgen.data.sequence import one_hot
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.tasks.sequence_design.evaluate import (
    REFERENCE_METHOD,
    classifier_two_sample_auroc,
    evaluate_generation,
    split_sequences,
)
from medgen.tasks.sequence_design.generation_metrics import gc_content, nearest_neighbour_hamming
from medgen.train import train_model
from tests.conftest import REPO_ROOT, run_snakemake
from tests.helpers.sequence_data import prepared_measurements, random_sequences
from tests.test_sequence_generation_metrics import JASPAR_TEXT

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}
BASELINES = ["iid", "markov1", "markov2", "markov3", "markov4", "markov5"]

pytestmark = pytest.mark.usefixtures("quiet_warnings")


@pytest.fixture
def jaspar_file(tmp_path):
    path = tmp_path / "motifs.jaspar"
    path.write_text(JASPAR_TEXT)
    return path


def structured(n: int, length: int, rng: np.random.Generator) -> list[str]:
    """A GC-rich first half (80% G/C) and an AT-rich second half (80% A/T) per window."""
    half = length // 2
    gc = np.where(rng.random((n, half)) < 0.8, rng.integers(1, 3, (n, half)),
                  rng.choice([0, 3], (n, half)))
    at = np.where(rng.random((n, length - half)) < 0.8, rng.choice([0, 3], (n, length - half)),
                  rng.integers(1, 3, (n, length - half)))
    codes = np.concatenate([gc, at], axis=1)
    return ["".join("ACGT"[c] for c in row) for row in codes]


def write_prepared(path, splits: dict[str, list[str]]):
    sequences = [s for name in splits for s in splits[name]]
    labels = [name for name in splits for _ in splits[name]]
    save_npz(path, {"onehot": one_hot(sequences).astype(np.uint8), "split": np.array(labels)})
    return path


def tiny_gan(data, folder):
    hp = {**registry.resolve_hparams("dna_gan", "default"), "channels": 4, "n_blocks": 1,
          "latent_dim": 5, "batch_size": 32, "max_epochs": 1}
    return train_model("dna_gan", data, hp, TRAINING, 0, folder)


def test_the_two_sample_test_tells_iid_bases_from_structured_windows_not_real_from_real():
    rng = np.random.default_rng(0)
    real = structured(1200, 30, rng)
    composition = "".join(real)
    iid = ["".join(rng.choice(list(composition), 30)) for _ in range(600)]  # same GC, no order
    assert classifier_two_sample_auroc(real[:600], iid, seed=0) > 0.8
    real_vs_real = classifier_two_sample_auroc(real[:600], real[600:], seed=0)
    assert 0.38 < real_vs_real < 0.62
    assert real_vs_real == classifier_two_sample_auroc(real[:600], real[600:], seed=0)
    with pytest.raises(MedgenInputError, match="at least 4"):
        classifier_two_sample_auroc(real[:3], iid, seed=0)


def test_the_evaluation_scores_a_gan_and_the_baselines_against_the_test_windows(tmp_path):
    rng = np.random.default_rng(1)
    data = write_prepared(tmp_path / "data.npz", {
        "train": structured(600, 24, rng), "val": structured(150, 24, rng),
        "test": structured(200, 24, rng)})
    model = tiny_gan(data, tmp_path / "m")
    out = tmp_path / "eval"
    summary = evaluate_generation(data, {"dna_gan": model}, out, n_samples=150, seed=0)

    table = pd.read_csv(out / "metrics.tsv", sep="\t").set_index("method")
    assert list(table.index) == ["dna_gan", *BASELINES, REFERENCE_METHOD]
    assert set(table["split"]) == {"test"} and table["n_sequences"].eq(150).all()
    for metric in ["kmer1_js", "kmer6_js", "gc_wasserstein", "gc_mean", "dinucleotide_delta",
                   "homopolymer_wasserstein", "nn_hamming_mean", "nn_exact_fraction",
                   "c2st_auroc", "motif_hit_gap"]:
        assert metric in table.columns
    assert table["motif_hit_gap"].isna().all()  # no motif file
    # the order-0 chain loses the windows' halves: the CNN sees it, the floor does not
    assert table.loc["iid", "c2st_auroc"] > 0.75
    assert table.loc[REFERENCE_METHOD, "c2st_auroc"] < 0.7
    assert table.loc["iid", "kmer1_js"] < 0.03  # the composition kept
    assert table["kmer2_js"].idxmin() == REFERENCE_METHOD  # real held-out: the floor
    long = tidy.read(out / tidy.FILE)
    assert list(dict.fromkeys(long["method"])) == ["dna_gan", *BASELINES]  # no floor row
    assert set(long["split"]) == {"test"} and set(long["unit"]) == {"all"}
    assert {"kmer6_js", "gc_wasserstein", "dinucleotide_delta"} <= set(long["metric"])
    assert "motif_hit_gap" not in set(long["metric"]) and long["value"].notna().all()
    fasta = (out / "generated" / "dna_gan.fa").read_text().splitlines()
    assert len(fasta) == 300 and len(fasta[1]) == 24
    # the header carries the sequence's GC and its distance to the nearest training window
    name, synthetic, seed, gc, nearest = fasta[0].split(" ")
    assert (name, synthetic, seed) == (">dna_gan_0", "synthetic=true", "seed=0")
    assert gc == f"gc={gc_content([fasta[1]])[0]:.3f}"
    train = split_sequences(data)["train"]
    assert nearest == f"nn_train_hamming={nearest_neighbour_hamming([fasta[1]], train)[0]}"
    assert (out / "generated" / "markov3.fa").is_file()
    assert (out / "kmer_js.png").stat().st_size > 0 and (out / "gc_content.png").is_file()
    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["reference"] == {"split": "test", "n_sequences": 200,
                                    "gc_mean": pytest.approx(written["reference"]["gc_mean"])}
    assert "argmax" in written["sampling"] and written["provenance"]["seed"] == 0


def test_the_reference_is_the_test_split_not_the_training_windows(tmp_path, jaspar_file):
    # train: uniform bases; test: 85% A. Scored against train, an i.i.d. chain fitted on
    # train would sit at ~0; against test it is far off, and the memorisation distance
    # still goes to train (markov5 copies no 40-bp window)
    rng = np.random.default_rng(2)
    train = random_sequences(400, 40, rng)
    test = ["".join(np.where(rng.random(40) < 0.85, "A", rng.choice(list("CGT"), 40)))
            for _ in range(120)]
    data = write_prepared(tmp_path / "data.npz", {"train": train, "test": test})
    out = tmp_path / "eval"
    summary = evaluate_generation(data, {}, out, n_samples=100, seed=3, motifs=jaspar_file,
                                  n_motifs=3)
    table = pd.read_csv(out / "metrics.tsv", sep="\t").set_index("method")
    assert REFERENCE_METHOD not in table.index  # no validation windows: no floor row
    assert (table["kmer1_js"] > 0.3).all()
    assert summary["reference"]["gc_mean"] == pytest.approx(gc_content(test).mean())
    gc = pd.read_csv(out / "gc_content.tsv", sep="\t")
    np.testing.assert_allclose(gc.loc[gc["method"] == "test", "gc"], gc_content(test),
                               atol=1e-6)
    assert (table["nn_exact_fraction"] == 0).all() and (table["nn_hamming_mean"] > 5).all()
    assert table["motif_hit_gap"].notna().all()
    motifs = pd.read_csv(out / "motif_hit_rates.tsv", sep="\t")
    compared = summary["motifs"]["compared"]
    assert 0 < len(compared) <= 3 and len(motifs) == len(compared) * len(table)


def test_a_model_of_another_family_and_too_few_samples_are_refused(tmp_path):
    data = prepared_measurements(tmp_path / "data", seed=0)
    hp = {**registry.resolve_hparams("sequence_predictor", "default"), "max_epochs": 1}
    predictor = train_model("sequence_predictor", data, hp, TRAINING, 0, tmp_path / "p")
    with pytest.raises(MedgenInputError, match="sequence_predictor"):
        evaluate_generation(data, {"sequence_predictor": predictor}, tmp_path / "e",
                            n_samples=10)
    with pytest.raises(MedgenInputError, match="family"):
        evaluate_generation(data, {"dna_gan": predictor}, tmp_path / "e", n_samples=10)
    with pytest.raises(MedgenInputError, match="n_samples"):
        evaluate_generation(data, {}, tmp_path / "e", n_samples=2)
    assert not (tmp_path / "e").exists()


# planning and workflow ------------------------------------------------------------------

def resolved(**section):
    config = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    config["sequence_design"] = {**config.get("sequence_design", {}), **section}
    return medgen_config.validate(config)


def test_the_evaluated_methods_are_the_gan_the_baselines_and_the_design_methods():
    config = resolved(families=["dna_gan", "sequence_predictor"], source="table")
    design = ["sequence_predictor", "additive_ridge", "mean", "activation_maximisation",
              "joint", "evolution", "random", "best_measured"]
    assert planning.evaluated_methods(config, "sequence_design") == [
        "dna_gan", *BASELINES, *design]
    assert planning.carded_models(config, "sequence_design") == ["dna_gan",
                                                                 "sequence_predictor"]
    config = resolved(families=["sequence_predictor"], source="table")
    assert "dna_gan" not in planning.evaluated_methods(config, "sequence_design")
    config = resolved(evaluation={"markov_orders": [2]})
    assert planning.evaluated_methods(config, "sequence_design") == ["dna_gan", "iid",
                                                                     "markov2"]
    assert config["sequence_design"]["evaluation"]["n_samples"] == 2000


@pytest.mark.realdata  # the config's FASTA and JASPAR file are inputs of the plan
@pytest.mark.workflow
def test_the_dataset_config_plans_preparation_training_evaluation_and_the_model_card(
        shared_data, tmp_path):
    result = run_snakemake("-n", "--cores", "1", "--configfile",
                           str(REPO_ROOT / "config/datasets/ce2_dna_gan.yaml"),
                           "--config", f"results_dir={tmp_path / 'results'}")
    out = result.stdout
    for rule in ["prepare_sequence_design", "train_model", "evaluate_sequence_generation",
                 "model_card"]:
        assert rule in out
    assert "ce2_dna_gan/sequence_design/eval/metrics.json" in out
    assert "ce2_dna_gan/models/dna_gan/model_card.md" in out


@pytest.mark.realdata
@pytest.mark.workflow
def test_a_small_real_run_evaluates_the_gan_and_cards_it(shared_data, tmp_path):
    config = yaml.safe_load((REPO_ROOT / "config/datasets/ce2_dna_gan.yaml").read_text())
    config["sequence_design"]["path"] = str(shared_data / "sequence/ce2_chrX/ce2chrX.fa.gz")
    config["sequence_design"]["window"]["max_windows"] = 2000
    config["sequence_design"]["evaluation"] = {"n_samples": 300, "motifs": ""}
    config.update(results_dir=str(tmp_path / "results"),
                  training={"accelerator": "cpu", "progress_bar": False, "num_threads": 2},
                  # a small generator for one epoch: the run's plumbing, not the GAN's quality
                  models={"dna_gan": {"params": {"max_epochs": 1, "channels": 8,
                                                 "n_blocks": 1}}})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run_snakemake("--cores", "2", "--configfile", str(path))
    run_dir = tmp_path / "results" / "ce2_dna_gan"
    table = pd.read_csv(run_dir / "sequence_design/eval/metrics.tsv", sep="\t")
    assert list(table["method"]) == ["dna_gan", *BASELINES, REFERENCE_METHOD]
    assert table["kmer6_js"].notna().all()
    # a real genome: Markov chains sit far closer to its 6-mers than i.i.d. bases
    js = table.set_index("method")["kmer6_js"]
    assert js["markov5"] < js["iid"]
    card = (run_dir / "models/dna_gan/model_card.md").read_text()
    assert "kmer6_js" in card
    again = run_snakemake("-n", "--cores", "2", "--configfile", str(path))
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.realdata
@pytest.mark.workflow
def test_replicates_evaluate_each_seed_and_compare_the_gan_with_the_baselines(
        shared_data, tmp_path):
    settings = yaml.safe_load((REPO_ROOT / "config/datasets/ce2_dna_gan.yaml").read_text())
    settings.update(results_dir=str(tmp_path / "results"), replicates={"seeds": [0, 1]})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(config))
    out = result.stdout
    for seed in (0, 1):
        assert f"ce2_dna_gan/seed{seed}/sequence_design/eval/metrics_tidy.tsv" in out
        assert f"ce2_dna_gan/seed{seed}/models/dna_gan/model_card.md" in out
    assert "ce2_dna_gan/replicates/sequence_design/comparisons.tsv" in out
    assert "aggregate_replicates" in out


def test_replicate_tables_aggregate_into_comparisons_of_the_gan_with_each_baseline(tmp_path):
    from medgen.evaluate.replicates import aggregate

    rng = np.random.default_rng(4)
    data = write_prepared(tmp_path / "data.npz", {
        "train": structured(300, 16, rng), "test": structured(80, 16, rng)})
    model = tiny_gan(data, tmp_path / "m")
    tables = {}
    for seed in (0, 1, 2):
        evaluate_generation(data, {"dna_gan": model}, tmp_path / f"seed{seed}", n_samples=60,
                            seed=seed, markov_orders=[1, 2])
        tables[seed] = [tmp_path / f"seed{seed}" / tidy.FILE]
    comparisons = aggregate(tables, "sequence_design", tmp_path / "replicates")
    headline = comparisons[comparisons["metric"] == "kmer6_js"]
    assert set(headline["model"]) == {"dna_gan"}
    assert list(headline["baseline"]) == ["iid", "markov1", "markov2"]
    assert (headline["n_replicates"] == 3).all() and set(headline["split"]) == {"test"}
