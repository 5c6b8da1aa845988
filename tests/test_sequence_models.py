"""Sequence-design families and task plumbing (issue 30 step 2): the DNA GAN's and the
predictor's networks, the shared gradient penalty, the predictor learning a planted motif,
the prepared data and loaders, the config checks and the workflow's plan."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from medgen import checkpoint, planning, registry
from medgen import config as medgen_config
from medgen.atomic import save_npz
from medgen.data.sequence import one_hot
from medgen.errors import MedgenInputError
from medgen.models.adversarial import gradient_penalty
from medgen.models.dna_gan.module import DNACritic, DNAGenerator, ResBlock1d
from medgen.models.sequence_predictor.module import PredictorNet, SequencePredictor
from medgen.tasks.sequence_design.config_checks import check_config
from medgen.tasks.sequence_design.inference import load
from medgen.tasks.sequence_design.loaders import training_data
from medgen.tasks.sequence_design.prepare import load_prepared, prepare, prepare_windows
from medgen.train import train_model
from tests.conftest import run_snakemake
from tests.helpers import sequence_data
from tests.helpers.sequence_data import MOTIF, prepared_measurements, random_sequences

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}

pytestmark = pytest.mark.usefixtures("quiet_warnings")


def default_section(**changes) -> dict:
    resolved = medgen_config.validate(medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH))
    return {**resolved["sequence_design"], **changes}


# networks ------------------------------------------------------------------------------

def test_generator_writes_base_probabilities_per_position():
    torch.manual_seed(0)
    generator = DNAGenerator(latent_dim=7, channels=6, length=13, n_blocks=2)
    out = generator(torch.randn(5, 7))
    assert out.shape == (5, 13, 4)
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(5, 13))


def test_critic_scores_one_hot_and_soft_sequences():
    torch.manual_seed(0)
    critic = DNACritic(channels=6, length=13, n_blocks=2)
    x = torch.from_numpy(one_hot(random_sequences(5, 13, np.random.default_rng(0))))
    scores, features = critic(x)
    assert scores.shape == (5,) and features.shape == (5, 6 * 13)
    soft, _ = critic(torch.full((3, 13, 4), 0.25))
    assert soft.shape == (3,)
    # no normalisation across the batch: a sample's score does not depend on the others
    torch.testing.assert_close(critic(x[:2])[0], scores[:2])


def test_residual_block_adds_three_tenths_of_its_branch():
    block = ResBlock1d(3)
    x = torch.randn(2, 3, 9)
    torch.testing.assert_close(block(x), x + 0.3 * block.main(x))
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
    torch.testing.assert_close(block(x), x)


def test_gradient_penalty_of_a_linear_critic_is_its_slope_norm_minus_one_squared():
    # D(x) = w . x has gradient w everywhere: GP = (||w|| - 1)^2 whatever the interpolates
    w = torch.tensor([2.0, 0.0, 0.0, 2.0]).reshape(1, 4) * (3 / 8 ** 0.5)  # ||w|| = 3

    def critic(x):
        return (x.reshape(len(x), -1) * w.reshape(1, -1)).sum(1), x

    real, fake = torch.rand(6, 1, 4), torch.rand(6, 1, 4)
    torch.testing.assert_close(gradient_penalty(critic, real, fake), torch.tensor(4.0))


def test_predictor_is_differentiable_in_soft_inputs_and_returns_units():
    torch.manual_seed(0)
    net = PredictorNet(filters=4, filter_width=5, hidden=[6, 6], output="linear")
    model = SequencePredictor(net, {"length": 11, "target_mean": 10.0, "target_sd": 2.0})
    soft = torch.softmax(torch.randn(3, 11, 4), -1).requires_grad_(True)
    out = model.predict_tensor(soft)
    torch.testing.assert_close(out, net(soft) * 2.0 + 10.0)
    out.sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())  # the weights stay out of design
    assert model.predict(soft.detach().numpy()).shape == (3,)
    with pytest.raises(MedgenInputError, match=r"shape \(n, 11, 4\); got \(3, 12, 4\)"):
        model.predict(np.zeros((3, 12, 4)))
    sigmoid = PredictorNet(filters=4, filter_width=5, hidden=[], output="sigmoid")
    values = sigmoid(soft.detach())
    assert ((values > 0) & (values < 1)).all()


# the predictor learns; the GAN samples --------------------------------------------------

def test_predictor_learns_a_planted_motif(tmp_path):
    data = prepared_measurements(tmp_path / "data", seed=0, n=400, length=20, effect=2.0)
    hp = {**registry.resolve_hparams("sequence_predictor", "default"),
          "filters": 16, "hidden": [16], "filter_width": 7, "batch_size": 32,
          "lr": 0.01, "max_epochs": 25}
    model = load(train_model("sequence_predictor", data, hp, TRAINING, 0, tmp_path / "m"))
    arrays, _ = load_prepared(data)
    held_out = arrays["split"] != "train"
    sequences = ["".join("ACGT"[i] for i in row.argmax(-1)) for row in arrays["onehot"]]
    has = np.array([MOTIF in s for s in sequences])
    predicted = model.predict(arrays["onehot"][held_out].astype(np.float32))
    # in the measurement's units: about 2 with the motif, about 0 without
    gap = predicted[has[held_out]].mean() - predicted[~has[held_out]].mean()
    assert 1.2 < gap < 2.8, gap
    assert np.corrcoef(predicted, arrays["value"][held_out])[0, 1] > 0.8


def test_the_gan_learns_a_biased_base_composition(tmp_path):
    # 70% A at every position: an untrained generator writes about 25% A (one epoch: 27%,
    # measured); 30 epochs (64 generator steps) moved its mean probability of A to 0.59 and
    # the argmax sequences to 95% A
    rng = np.random.default_rng(0)
    codes = np.where(rng.random((512, 10)) < 0.7, 0, rng.integers(1, 4, (512, 10)))
    save_npz(tmp_path / "data.npz", {"onehot": np.eye(4, dtype=np.uint8)[codes],
                                     "split": np.array(["train"] * 512)})
    hp = {**registry.resolve_hparams("dna_gan", "default"), "channels": 16, "n_blocks": 1,
          "latent_dim": 8, "max_epochs": 30, "lr": 0.001}
    model = load(train_model("dna_gan", tmp_path / "data.npz", hp, TRAINING, 0, tmp_path / "m"))
    probabilities = model.sample(2000, seed=1)
    assert probabilities[..., 0].mean() > 0.45
    assert (probabilities.argmax(-1) == 0).mean() > 0.6


def test_generator_samples_reproducibly_and_refuses_other_lengths(tmp_path):
    data = prepared_measurements(tmp_path / "data", seed=0)
    hp = {**registry.resolve_hparams("dna_gan", "default"), "channels": 4, "n_blocks": 1,
          "latent_dim": 5, "batch_size": 16, "max_epochs": 1}
    path = train_model("dna_gan", data, hp, TRAINING, 0, tmp_path / "m")
    model = load(path)
    first, again = model.sample(6, seed=3), model.sample(6, seed=3)
    assert first.shape == (6, 20, 4) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, model.sample(6, seed=4))
    np.testing.assert_allclose(first.sum(-1), 1, rtol=1e-5)
    z = torch.zeros(2, 5, requires_grad=True)  # latent design: gradients reach z only
    model.generator(z)[..., 0].sum().backward()
    assert z.grad is not None and all(p.grad is None for p in model.generator.parameters())
    assert checkpoint.load(path).data == {"length": 20, "channels": 4, "alphabet": "ACGT"}
    with pytest.raises(MedgenInputError, match="length"):
        load(path, data={"length": 50})
    with pytest.raises(MedgenInputError, match="family 'dna_gan'"):
        load(path, family="sequence_predictor")


# prepared data and loaders --------------------------------------------------------------

def test_fasta_windows_are_prepared_with_their_split_and_record(tmp_path):
    rng = np.random.default_rng(0)
    fasta = sequence_data.write_fasta(tmp_path / "g.fa", {
        "chrA": "".join(random_sequences(1, 200, rng)),
        "chrB": "".join(random_sequences(1, 95, rng)) + "N" * 5 + "acgtacgtac"})
    section = default_section(path=str(fasta), window={"length": 10, "stride": None,
                                                       "n_policy": "drop",
                                                       "max_windows": None})
    out = prepare(section, tmp_path / "prep" / "data.npz", seed=1)
    arrays, record = load_prepared(out)
    # chrA: 20 windows; chrB: 11 windows, the one holding N dropped
    assert arrays["onehot"].shape == (30, 10, 4) and arrays["onehot"].dtype == np.uint8
    assert set(arrays["split"]) <= {"train", "val", "test"} and "value" not in arrays
    assert list(arrays["record"][:2]) == ["chrA", "chrA"] and arrays["start"][1] == 10
    assert record["source"] == "fasta" and record["reader"]["windows_dropped_n"] == 1
    assert record["reader"]["soft_masked_bases"] == 10 and record["length"] == 10
    assert record["split"]["seed"] == 1 and str(fasta) in record["provenance"]["inputs"]
    # the same seed splits the same way; json beside is valid
    again = prepare_windows(fasta, tmp_path / "again.npz", 10, seed=1)
    np.testing.assert_array_equal(load_prepared(again)[0]["split"], arrays["split"])
    json.loads((tmp_path / "prep" / "data.json").read_text())

    # dna_gan trains on them; sequence_predictor refuses, naming the config key to change
    hp = registry.resolve_hparams("dna_gan", "default")
    data = training_data(out, hp, 0, "dna_gan")
    assert data.dims == {"length": 10} and data.val is None
    assert next(iter(data.train))[0].shape[1:] == (10, 4)
    with pytest.raises(MedgenInputError, match="without measurements.*sequence_design.source"):
        training_data(out, registry.resolve_hparams("sequence_predictor", "default"), 0,
                      "sequence_predictor")


def test_predictor_targets_are_standardised_on_the_training_split(tmp_path):
    data = prepared_measurements(tmp_path / "data", seed=0)
    arrays, _ = load_prepared(data)
    train = arrays["split"] == "train"
    hp = registry.resolve_hparams("sequence_predictor", "default")
    loaded = training_data(data, hp, 0, "sequence_predictor")
    assert loaded.signature["target_mean"] == pytest.approx(arrays["value"][train].mean())
    assert loaded.signature["target_sd"] == pytest.approx(arrays["value"][train].std())
    assert loaded.signature["output"] == "linear" and loaded.val is not None
    targets = torch.cat([batch[1] for batch in loaded.train])
    assert abs(float(targets.mean())) < 0.2  # standardised (one batch of one dropped)
    with pytest.raises(MedgenInputError, match=r"outside \[0, 1\].*output: linear"):
        training_data(data, {**hp, "output": "sigmoid"}, 0, "sequence_predictor")


def test_a_sort_seq_table_is_prepared_with_its_own_split_and_mean_bins(tmp_path):
    table = tmp_path / "sortseq.csv"
    table.write_text("set,ct_0,ct_1,ct_2,x\n"
                     "training,1,0,1,ACGTAC\n"
                     "validation,0,2,0,TTTTAA\n"
                     "test,0,0,3,GGGCCC\n"
                     "training,0,0,0,CCCCCC\n")  # no reads: no measurement, dropped
    section = default_section(path=str(table), source="table", table={
        "sequence_column": "x", "value_column": None, "count_prefix": "ct_",
        "set_column": "set", "length": None})
    arrays, record = load_prepared(prepare(section, tmp_path / "data.npz", seed=5))
    assert list(arrays["split"]) == ["train", "val", "test"]
    np.testing.assert_allclose(arrays["value"], [1.0, 1.0, 2.0])
    np.testing.assert_array_equal(arrays["line"], [2, 3, 4])
    assert record["split"]["how"] == "the table's column 'set'"
    assert record["reader"]["dropped_missing"] == 1 and record["source"] == "table"


def test_a_missing_prepared_file_and_an_empty_path_are_refused(tmp_path):
    with pytest.raises(MedgenInputError, match="missing.npz does not exist"):
        load_prepared(tmp_path / "missing.npz")
    with pytest.raises(MedgenInputError, match="'sequence_design.path' is empty"):
        prepare(default_section(), tmp_path / "data.npz")
    assert not (tmp_path / "data.npz").exists()


# config and workflow --------------------------------------------------------------------

@pytest.mark.parametrize("section, message", [
    ({}, "'sequence_design.path' is empty"),
    ({"path": "g.fa", "families": ["dna_gan", "sequence_predictor"]},
     "lists sequence_predictor, but sequence_design.source is 'fasta'"),
    ({"path": "g.fa", "split_fractions": [0.5, 0.1, 0.1]}, "split_fractions"),
    ({"path": "t.csv", "source": "table",
      "table": {"value_column": "y", "count_prefix": "ct_"}}, "set exactly one"),
])
def test_config_checks_refuse_what_the_schema_cannot(section, message):
    raw = {"tasks": ["sequence_design"], "sequence_design": section}
    with pytest.raises(MedgenInputError, match=message):
        medgen_config.validate(raw)
    # nothing is checked while the task is off
    check_config({"tasks": [], "sequence_design": {}})


def test_a_table_with_bin_counts_validates_and_preparation_ignores_families():
    resolved = medgen_config.validate({
        "tasks": ["sequence_design"], "sequence_design": {
            "families": ["dna_gan", "sequence_predictor"], "source": "table",
            "path": "t.csv", "table": {"value_column": None, "count_prefix": "ct_"}}})
    assert "sequence_design" not in medgen_config.validate({})["tasks"]
    preparation = planning.sequence_design_preparation(resolved)
    assert "families" not in preparation and preparation["table"]["count_prefix"] == "ct_"
    assert planning.trained_models(resolved, "sequence_design") == [
        "dna_gan", "sequence_predictor"]


@pytest.mark.workflow
def test_the_workflow_prepares_the_data_and_trains_the_families(tmp_path):
    fasta = sequence_data.write_fasta(tmp_path / "g.fa", {"chr": "ACGT" * 100})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"), "run_name": "seq",
        "tasks": ["sequence_design"], "sequence_design": {
            "path": str(fasta), "evaluation": {"motifs": ""}}}))
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(config))
    out = result.stdout
    assert "prepare_sequence_design" in out and "seq/sequence_design/data.npz" in out
    assert "seq/models/dna_gan/model.pt" in out and "evaluate_sequence_generation" in out
    assert "seq/models/dna_gan/model_card.md" in out
