"""Sequence design (issue 30 step 4): objectives, activation maximisation, joint GAN +
predictor design, in-silico evolution, the design baselines, the evaluation oracle, the
design evaluation, the config checks and the workflow's plan."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from medgen import checkpoint, planning, registry
from medgen import config as medgen_config
from medgen.data.sequence import one_hot
from medgen.errors import MedgenInputError
from medgen.models.dna_gan.module import DNAGenerator, SequenceGenerator
from medgen.tasks.sequence_design import design as dz
from medgen.tasks.sequence_design import generation_metrics as gm
from medgen.tasks.sequence_design.config_checks import check_config
from medgen.tasks.sequence_design.design_evaluation import (
    design_objectives,
    design_sequences,
    evaluate_designs,
    mean_pairwise_hamming,
    method_metrics,
    write_designed_fasta,
)
from medgen.tasks.sequence_design.inference import load
from medgen.tasks.sequence_design.oracle import train_oracle
from medgen.train import train_model
from tests.conftest import REPO_ROOT, run_snakemake
from tests.helpers.sequence_data import MOTIF, prepared_measurements, random_sequences

pytestmark = pytest.mark.usefixtures("quiet_warnings")

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}
UNIFORM = dict.fromkeys("ACGT", 0.25)
# a motif file with one matrix: TATAAT, the planted motif of the measurement fixture
JASPAR_TATA = """>MA9999.1\tTATA
A  [  1 20  1 20 20  1 ]
C  [  1  1  1  1  1  1 ]
G  [  1  1  1  1  1  1 ]
T  [ 20  1 20  1  1 20 ]
"""


def gc_objective(target="max") -> dz.Objective:
    """G + C count of a (soft) sequence: a known optimum (all G/C) for the optimisers."""
    return dz.Objective("gc", lambda x: x[:, :, 1:3].sum(dim=(1, 2)), target)


def settings(**changes) -> dict:
    resolved = medgen_config.validate(medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH))
    return {**resolved["sequence_design"]["design"], **changes}


# objectives and optimisers -------------------------------------------------------------

def test_activation_maximisation_reaches_the_known_optimum_and_records_its_path():
    design = dz.activation_maximisation([gc_objective()], n=6, length=15, steps=150, seed=0,
                                        record_every=10)
    assert all(set(s) <= set("GC") for s in design.sequences), design.sequences
    assert design.soft.shape == (6, 15, 4)
    np.testing.assert_allclose(design.soft.sum(-1), 1, atol=1e-5)
    path = design.trajectory["gc"].to_numpy()
    assert path[-1] == 15 and path[0] < 11  # near-uniform starts: about half G/C
    assert len(design.initial) == 6 and design.initial != design.sequences


def test_a_min_target_and_a_value_target_move_the_other_way():
    low = dz.activation_maximisation([gc_objective("min")], 4, 12, steps=150, seed=0)
    assert all(set(s) <= set("AT") for s in low.sequences)
    middle = dz.activation_maximisation([gc_objective(6.0)], 4, 12, steps=300, seed=0)
    counts = [sum(c in "GC" for c in s) for s in middle.sequences]
    assert all(4 <= c <= 8 for c in counts), counts


def test_the_same_seed_designs_the_same_sequences_another_seed_others():
    a = dz.activation_maximisation([gc_objective(6.0)], 4, 12, steps=20, seed=3)
    b = dz.activation_maximisation([gc_objective(6.0)], 4, 12, steps=20, seed=3)
    c = dz.activation_maximisation([gc_objective(6.0)], 4, 12, steps=20, seed=4)
    assert a.sequences == b.sequences and a.sequences != c.sequences


def test_a_pwm_objective_scores_both_strands_and_designs_the_motif():
    pssm = np.log2((np.array([[1, 20, 1, 20, 20, 1], [1] * 6, [1] * 6,
                              [20, 1, 20, 1, 1, 20]]) + 0.0) / 23 / 0.25)
    score = dz.pwm_objective(pssm, "tata").score
    forward = torch.from_numpy(one_hot(["CCCTATAATCCC"]).astype(np.float32))
    reverse = torch.from_numpy(one_hot(["CCCATTATACCC"]).astype(np.float32))  # rev. comp.
    assert float(score(forward)) == pytest.approx(float(score(reverse)))
    assert float(score(forward)) == pytest.approx(float(pssm.max(axis=0).sum()), rel=1e-5)
    design = dz.activation_maximisation([dz.pwm_objective(pssm, "tata")], 8, 20, steps=200,
                                        seed=0)
    assert all(MOTIF in s or "ATTATA" in s for s in design.sequences), design.sequences


def test_joint_design_moves_latent_codes_and_keeps_the_generator_fixed():
    torch.manual_seed(0)
    generator = SequenceGenerator(DNAGenerator(latent_dim=8, channels=8, length=12,
                                               n_blocks=1))
    before = [p.clone() for p in generator.generator.parameters()]
    design = dz.joint_design(generator, [gc_objective()], n=5, steps=150, lr=0.1, seed=0)
    path = design.trajectory["gc"].to_numpy()
    assert path[-1] > path[0] + 2, path
    for old, new in zip(before, generator.generator.parameters(), strict=True):
        torch.testing.assert_close(old, new)


def test_evolution_never_worsens_and_stops_at_the_optimum():
    start = random_sequences(6, 10, np.random.default_rng(0))
    design = dz.in_silico_evolution([gc_objective()], start, rounds=60, mutants=30, seed=0)
    path = design.trajectory["gc"].to_numpy()
    assert (np.diff(path) >= 0).all() and path[-1] == 10
    assert design.initial == start and design.soft is None


def test_the_baselines_random_and_best_measured():
    r = dz.random_sequences(500, 10, {"A": 0.7, "C": 0.1, "G": 0.1, "T": 0.1}, seed=0)
    assert abs(np.mean([s.count("A") / 10 for s in r.sequences]) - 0.7) < 0.03
    values = np.array([3.0, 1.0, 2.0, 5.0])
    seqs = ["AAAA", "CCCC", "GGGG", "TTTT"]
    assert dz.best_measured(seqs, values, 2, "max").sequences == ["TTTT", "AAAA"]
    assert dz.best_measured(seqs, values, 1, "min").sequences == ["CCCC"]
    assert dz.best_measured(seqs, values, 1, 2.1).sequences == ["GGGG"]


def test_mean_pairwise_hamming_has_the_known_answer():
    assert mean_pairwise_hamming(["AAAA", "AAAA"]) == 0
    assert mean_pairwise_hamming(["AAAA", "AATT", "TTTT"]) == pytest.approx((2 + 4 + 2) / 3)
    assert np.isnan(mean_pairwise_hamming(["AAAA"]))


# a toy predictor: the best match of a CACGTG (MAX) PSSM, 2 bits per matching base
CACGTG_PSSM = np.where(one_hot(["CACGTG"])[0].T == 1, 2.0, -2.0).astype(np.float32)


class CacgtgPredictor:
    """Rewards CACGTG (either strand) as a trained sequence_predictor would its motif."""

    predict_tensor = staticmethod(dz.pwm_objective(CACGTG_PSSM, "cacgtg").score)


def has_tata(sequence: str) -> bool:
    return MOTIF in sequence or "ATTATA" in sequence  # either strand


def test_the_predictor_and_motif_objectives_combine_by_motif_weight(tmp_path):
    motifs = tmp_path / "motifs.jaspar"
    motifs.write_text(JASPAR_TATA)
    train = random_sequences(600, 20, np.random.default_rng(0))
    scorer = gm.motif_scorers(gm.read_jaspar(motifs, ["MA9999"]), train, seed=0)[0]
    both = one_hot(["CCCACGTGCCTATAATCCCC"]).astype(np.float32)
    carried = {}
    for weight in (0.0, 1.0, 3.0):
        objectives = design_objectives(CacgtgPredictor(), settings(
            target="max", motif="MA9999", motif_weight=weight), train, 0, motifs)
        assert [(o.name, o.target, o.weight) for o in objectives] == [
            ("predictor", "max", 1.0), ("motif MA9999.1", "max", weight)]
        # a perfect match scores its PSSM's column maxima: 12 bits for CACGTG
        loss = dz.total_loss(objectives, torch.from_numpy(both))
        assert float(loss) == pytest.approx(-(12 + weight * scorer.pssm.max(axis=0).sum()),
                                            rel=1e-5)
        designs = dz.activation_maximisation(objectives, 6, 20, steps=300, seed=0).sequences
        carried[weight] = (sum("CACGTG" in s for s in designs), sum(map(has_tata, designs)),
                           sum("CACGTG" in s and has_tata(s) for s in designs))
    # (designs with CACGTG, with TATAAT, with both) of 6: weight 0 designs the predictor's
    # motif alone; weight 1 adds the PWM's motif to half or more; weight 3 puts the PWM's
    # motif in every design, beside CACGTG in half or more (the max over windows lets the
    # two motifs compete for one window: not all designs carry both)
    assert carried[0.0] == (6, 0, 0), carried
    assert carried[1.0][0] == 6 and carried[1.0][2] >= 3, carried
    assert carried[3.0][1] == 6 and carried[3.0][2] >= 3, carried
    assert design_objectives(CacgtgPredictor(), settings(motif=""), train)[-1].name == \
        "predictor"


def test_the_per_method_design_metrics_have_their_known_answers():
    sequences = ["AAAA", "GGCC", "ACGA"]
    measured = ["TTTT", "GGCA"]
    train_oracle = np.arange(101.0)  # max 100, top-1% cut (0.99 quantile) 99
    got = method_metrics(sequences, np.array([101.5, 99.5, 53.0]),
                         np.array([100.5, 99.5, 50.0]), measured, train_oracle, "max")
    assert np.isnan(got.pop("oracle_abs_error"))  # a direction, not a value, is the target
    assert got == pytest.approx({
        "n": 3, "predictor_mean": 254 / 3, "oracle_mean": 250 / 3, "oracle_median": 99.5,
        "oracle_max": 100.5, "oracle_min": 50.0,
        "beyond_train_max": 1 / 3,  # 100.5 > 100
        "beyond_train_top1": 2 / 3,  # 100.5, 99.5 > 99
        "predictor_oracle_gap": (1 + 0 + 3) / 3,
        # pairs: AAAA-GGCC 4, AAAA-ACGA 2, GGCC-ACGA 4
        "diversity_hamming": 10 / 3,
        # AAAA is TTTT's reverse complement (0; 3 on one strand), GGCC 1 from GGCA, ACGA's
        # reverse complement TCGT 2 from TTTT (3 from GGCA on its own strand)
        "nn_measured_hamming": (0 + 1 + 2) / 3,
        "gc_mean": (0 + 1 + 0.5) / 3})
    low = method_metrics(sequences, np.zeros(3), np.array([-1.0, 0.5, 50.0]), measured,
                         train_oracle, "min")
    assert (low["beyond_train_max"], low["beyond_train_top1"]) == pytest.approx((1 / 3, 2 / 3))
    value = method_metrics(sequences, np.zeros(3), np.array([1.0, 2.0, 4.5]), measured,
                           train_oracle, 2.0)
    assert np.isnan(value["beyond_train_max"]) and np.isnan(value["beyond_train_top1"])
    assert value["oracle_abs_error"] == pytest.approx((1 + 0 + 2.5) / 3)


@pytest.mark.parametrize("target, names", [
    ("max", ["oracle_mean", "oracle_max"]),
    ("min", ["oracle_mean_to_minimise", "oracle_min"]),
    (0.5, ["oracle_abs_error"])])
def test_the_replicated_oracle_metrics_follow_the_targets_direction(target, names):
    from medgen.tasks.sequence_design import TASK
    from medgen.tasks.sequence_design.design_evaluation import target_metrics

    table = pd.DataFrame({"method": ["evolution"], "oracle_mean": [1.0], "oracle_max": [2.0],
                          "oracle_min": [0.0], "oracle_abs_error": [0.5],
                          "gc_mean": [0.4]})
    kept, aligned = target_metrics(table, target)
    assert aligned == names and list(kept.columns) == ["method", *names, "gc_mean"]
    directions = {m.name: m.higher_is_better for m in TASK.metrics}
    # lower is better for every name but a maximised mean and max
    assert [directions[n] for n in names] == [target == "max"] * len(names)


def test_designed_fasta_headers_carry_each_score(tmp_path):
    table = pd.DataFrame({"objective": ["predictor", "predictor", "motif M1 X"],
                          "method": ["evolution", "evolution", "evolution"],
                          "index": [0, 1, 0], "sequence": ["ACGT", "CCGG", "TTAA"],
                          "predictor": [1.5, 2.25, 0.125], "oracle": [1.0, -0.5, 3.0]})
    folder = tmp_path / "designed"
    write_designed_fasta(table, folder, ("predictor", "oracle"))
    assert (folder / "predictor_evolution.fa").read_text() == (
        ">evolution_0 objective=predictor predictor=1.5 oracle=1\nACGT\n"
        ">evolution_1 objective=predictor predictor=2.25 oracle=-0.5\nCCGG\n")
    assert (folder / "motif_M1_X_evolution.fa").read_text() == (
        ">evolution_0 objective=motif_M1_X predictor=0.125 oracle=3\nTTAA\n")


def test_the_evaluation_writes_the_designs_with_predictor_and_oracle_scores(tmp_path):
    # one epoch of tiny networks (about a second): the scores, not the models, are checked
    data = prepared_measurements(tmp_path / "data", seed=0, n=100, length=12)
    small = {"filters": 4, "hidden": [4], "batch_size": 32, "max_epochs": 1}
    predictor = train_model("sequence_predictor", data, {
        **registry.resolve_hparams("sequence_predictor", "default"), **small,
        "filter_width": 5}, TRAINING, 0, tmp_path / "pred")
    oracle = train_oracle(data, tmp_path / "oracle.pt", seed=0, overrides=small)
    design_sequences(data, predictor, tmp_path / "design", settings(
        n_sequences=3, steps=5, evolution_rounds=2, evolution_mutants=3), seed=0)
    evaluate_designs(data, tmp_path / "design", oracle, tmp_path / "eval", seed=0)
    lines = (tmp_path / "eval/designed/predictor_evolution.fa").read_text().splitlines()
    headers, sequences = lines[0::2], lines[1::2]
    expected_oracle = load(oracle).predict(one_hot(sequences))
    expected_predictor = load(predictor).predict(one_hot(sequences))
    for i, header in enumerate(headers):
        fields = dict(f.split("=") for f in header.split()[1:])
        assert header.startswith(f">evolution_{i} objective=predictor predictor=")
        assert float(fields["oracle"]) == pytest.approx(expected_oracle[i], rel=1e-5)
        assert float(fields["predictor"]) == pytest.approx(expected_predictor[i], rel=1e-5)
    assert {p.name for p in (tmp_path / "eval/designed").iterdir()} == {
        f"predictor_{m}.fa" for m in ("activation_maximisation", "evolution", "random",
                                      "best_measured")}


@pytest.mark.parametrize("call, message", [
    (lambda: dz.Objective("x", lambda x: x.sum(), "maximum"), "expected 'max', 'min'"),
    (lambda: dz.activation_maximisation([], 2, 5), "at least one objective"),
    (lambda: dz.activation_maximisation([gc_objective()], 2, 5, steps=0), "steps >= 1"),
    (lambda: dz.pwm_objective(np.zeros((3, 4))), "finite \\(4, width\\)"),
    (lambda: dz.in_silico_evolution([gc_objective()], [], rounds=2), "0 start sequences"),
    (lambda: dz.best_measured(["AA"], np.array([1.0, 2.0]), 1), "1 sequences and 2"),
])
def test_design_refuses_what_it_cannot_run(call, message):
    with pytest.raises(MedgenInputError, match=message):
        call()


# the design job and its evaluation -----------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A measurement table with a planted motif (effect 2), its design predictor and oracle."""
    folder = tmp_path_factory.mktemp("design")
    data = prepared_measurements(folder / "data", seed=0, n=800, length=20, effect=2.0)
    hp = {**registry.resolve_hparams("sequence_predictor", "default"),
          "filters": 16, "hidden": [16], "filter_width": 7, "batch_size": 32,
          "lr": 0.01, "max_epochs": 25}
    predictor = train_model("sequence_predictor", data, hp, TRAINING, 0, folder / "pred")
    oracle = train_oracle(data, folder / "oracle.pt", seed=0,
                          overrides={"max_epochs": 25, "filters": 16, "hidden": [16],
                                     "batch_size": 32, "lr": 0.01})
    motifs = folder / "motifs.jaspar"
    motifs.write_text(JASPAR_TATA)
    return {"data": data, "predictor": predictor, "oracle": oracle, "motifs": motifs,
            "folder": folder}


def test_the_oracle_is_another_network_trained_on_every_measured_sequence(trained):
    saved = checkpoint.load(trained["oracle"])
    assert saved.family == "sequence_predictor" and saved.hparams["filter_width"] == 9
    assert saved.provenance["oracle"]["n_sequences"] == 800
    assert saved.seed == 1000
    assert load(trained["oracle"]).predict(one_hot(["A" * 20])).shape == (1,)


def test_designs_carry_the_motif_and_the_oracle_scores_them_above_random(trained, tmp_path):
    chosen = settings(n_sequences=12, steps=200, evolution_rounds=30, evolution_mutants=20,
                      motif_experiment="MA9999")
    table = design_sequences(trained["data"], trained["predictor"], tmp_path / "design",
                             chosen, seed=0, motifs=trained["motifs"])
    assert set(table["objective"]) == {"predictor", "motif MA9999.1 TATA"}
    main = table[table["objective"] == "predictor"]
    assert list(dict.fromkeys(main["method"])) == ["activation_maximisation", "evolution",
                                                   "random", "best_measured"]
    assert (tmp_path / "design/designed/predictor_evolution.fa").read_text().startswith(
        ">evolution_0 objective=predictor predictor=")
    metrics = evaluate_designs(trained["data"], tmp_path / "design", trained["oracle"],
                               tmp_path / "eval", trained["predictor"], "max",
                               trained["motifs"], "MA9999", seed=0)
    oracle = metrics.set_index("method")["oracle_mean"]
    # the planted motif is worth 2: designs that learnt it beat random sequences by far
    assert oracle["activation_maximisation"] > oracle["random"] + 1
    assert oracle["evolution"] > oracle["random"] + 1
    experiment = pd.read_csv(tmp_path / "eval/motif_experiment.tsv", sep="\t")
    motif_rows = experiment[experiment["objective"] == "motif MA9999.1 TATA"]
    assert (motif_rows["match_rate_after"] == 1).all()
    assert (motif_rows["match_rate_before"] < 0.5).all()
    accuracy = pd.read_csv(tmp_path / "eval/predictor_metrics.tsv", sep="\t") \
        .set_index("method")
    assert accuracy.loc["sequence_predictor", "pearson_r"] > 0.8
    assert np.isnan(accuracy.loc["mean", "pearson_r"])
    tidy = pd.read_csv(tmp_path / "eval/metrics_tidy.tsv", sep="\t")
    assert set(tidy["method"]) == set(planning.DESIGN_BASELINES) | {
        "activation_maximisation", "evolution", "sequence_predictor", "additive_ridge", "mean"}
    for name in ("design_trajectories.png", "oracle_scores.png", "logos.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 1000


def test_joint_design_needs_a_generator_and_design_needs_measurements(trained, tmp_path):
    with pytest.raises(MedgenInputError, match="needs a trained dna_gan"):
        design_sequences(trained["data"], trained["predictor"], tmp_path / "d",
                         settings(methods=["joint"]), seed=0)
    assert not (tmp_path / "d").exists()
    windows = tmp_path / "w.npz"
    from medgen.atomic import save_npz
    save_npz(windows, {"onehot": one_hot(["ACGT" * 5]).astype(np.uint8),
                       "split": np.array(["train"])})
    with pytest.raises(MedgenInputError, match="without measurements"):
        train_oracle(windows, tmp_path / "o.pt")


# config and plan -------------------------------------------------------------------------

def resolved(**design):
    config = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    config["tasks"] = ["sequence_design"]
    config["sequence_design"] = {"families": ["sequence_predictor"], "source": "table",
                                 "path": "t.csv", "table": {"count_prefix": "ct_",
                                                            "value_column": None},
                                 "design": design}
    return medgen_config.validate(config)


@pytest.mark.parametrize("design, message", [
    ({"target": "highest"}, "expected 'max', 'min' or a finite number"),
    ({"target": float("nan")}, "'sequence_design.design.target' is nan; expected 'max', "
                               "'min' or a finite number"),
    ({"target": float("inf")}, "'sequence_design.design.target' is inf"),
    ({"methods": ["joint"]}, "needs a trained dna_gan"),
])
def test_config_checks_refuse_design_settings_that_cannot_run(design, message):
    with pytest.raises(MedgenInputError, match=message):
        check_config(resolved(**design))


def test_empty_family_and_method_lists_are_refused_at_validation():
    # an empty list would run nothing (families) or every optimiser (methods: the default)
    with pytest.raises(MedgenInputError, match="design.methods"):
        resolved(methods=[])
    raw = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    raw["tasks"] = ["sequence_design"]
    raw["sequence_design"] = {"families": []}
    with pytest.raises(MedgenInputError, match="sequence_design.families"):
        medgen_config.validate(raw)


def test_unknown_jaspar_ids_are_refused_at_validation_with_the_design_jobs_words(tmp_path):
    motifs = tmp_path / "m.jaspar"
    motifs.write_text(JASPAR_TATA)

    def config(**design):
        raw = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
        raw["tasks"] = ["sequence_design"]
        raw["sequence_design"] = {
            "families": ["sequence_predictor"], "source": "table", "path": "t.csv",
            "table": {"count_prefix": "ct_", "value_column": None}, "design": design,
            "evaluation": {"motifs": str(motifs)}}
        return raw

    for key, value in (("motif", "MA9999"), ("motif_experiment", "MA9999.1")):
        medgen_config.validate(config(**{key: value}))  # known, with or without its version
    for key, value in (("motif", "MA0001"), ("motif_experiment", "XYZ")):
        with pytest.raises(MedgenInputError, match=re.escape(
                f"config key 'sequence_design.design.{key}' is {value!r}: {motifs}: no "
                f"matrix {value}")):
            medgen_config.validate(config(**{key: value}))
        applied = config(**{key: value})
        applied["apply"] = {"activate": True, "model": "m.pt"}  # designs nothing: not read
        medgen_config.validate(applied)


def test_a_zero_val_or_test_share_is_refused_when_families_are_evaluated():
    for fractions, name in (([1.0, 0.0, 0.0], "test"), ([0.9, 0.0, 0.1], "val")):
        config = resolved()
        config["sequence_design"]["split_fractions"] = fractions
        with pytest.raises(MedgenInputError, match=re.escape(
                f"config key 'sequence_design.split_fractions' is {fractions}: the {name} "
                "share is 0")):
            check_config(config)
        config["sequence_design"]["families"] = []  # nothing trained, nothing evaluated
        check_config(config)


def test_a_split_left_empty_by_too_few_sequences_is_refused_in_preparation(tmp_path):
    from medgen.tasks.sequence_design.prepare import prepare_measurements, prepare_windows
    from tests.helpers.sequence_data import write_fasta, write_motif_table

    fasta = write_fasta(tmp_path / "g.fa", {"a": "".join(random_sequences(1, 100, np.random.
                                                                          default_rng(0)))})
    with pytest.raises(MedgenInputError, match=re.escape(
            "no 'val' sequences after the split (identity, fractions [0.8, 0.1, 0.1], seed "
            "0): train 2, val 0, test 1 of 3 sequences")):
        prepare_windows(fasta, tmp_path / "w.npz", 10, max_windows=3)
    assert not (tmp_path / "w.npz").exists()
    table = tmp_path / "set.csv"
    pd.read_csv(write_motif_table(tmp_path / "t.csv", n=6, length=10)).assign(
        set=["training"] * 5 + ["validation"]).to_csv(table, index=False)
    with pytest.raises(MedgenInputError, match="no 'test' sequences after the split \\(the "
                                               "table's column 'set'\\): train 5, val 1, test 0"
                                               ".*set_column: null"):
        prepare_measurements(table, tmp_path / "t.npz")


def test_a_table_split_with_reverse_complements_in_two_splits_is_refused(tmp_path):
    from medgen.tasks.sequence_design.prepare import load_prepared, prepare_measurements

    rows = [("AAACCC", "training"), ("GGGTTT", "test"),  # reverse complements
            ("ACGTAC", "training"), ("CCCAAA", "validation"),
            ("TTTGGG", "training"),  # the reverse complement of CCCAAA
            ("GATTAC", "test"), ("AATATT", "test")]  # AATATT is its own reverse complement
    table = tmp_path / "set.csv"
    pd.DataFrame({"x": [r[0] for r in rows], "y": 1.0, "set": [r[1] for r in rows]}) \
        .to_csv(table, index=False)
    with pytest.raises(MedgenInputError, match=re.escape(
            f"{table}, column 'set': 4 sequence(s) in another split than their reverse "
            "complement or a copy (first: line 2 (train), line 3 (test); line 5 (val), line "
            "6 (train)); no sequence nor its reverse complement may be in two splits")):
        prepare_measurements(table, tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()
    # one set per pair: prepared, the table's split kept
    pd.read_csv(table).assign(set=["training", "training", "training", "validation",
                                   "validation", "test", "test"]).to_csv(table, index=False)
    arrays, _ = load_prepared(prepare_measurements(table, tmp_path / "t.npz"))
    assert arrays["split"].tolist() == ["train", "train", "train", "val", "val", "test",
                                        "test"]


def test_the_design_methods_follow_the_families_and_the_predictor_is_carded():
    config = resolved()
    assert planning.evaluated_methods(config, "sequence_design") == [
        "sequence_predictor", "additive_ridge", "mean", "activation_maximisation",
        "evolution", "random", "best_measured"]
    assert planning.carded_models(config, "sequence_design") == ["sequence_predictor"]
    config["sequence_design"]["families"] = ["sequence_predictor", "dna_gan"]
    assert "joint" in planning.evaluated_methods(config, "sequence_design")


@pytest.mark.realdata  # the dataset config's table and JASPAR file are inputs of the plan
@pytest.mark.workflow
def test_the_sort_seq_config_plans_the_oracle_the_designs_and_their_evaluation(
        shared_data, tmp_path):
    config = yaml.safe_load((REPO_ROOT / "config/datasets/sortseq_design.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = run_snakemake("-n", "--cores", "1", "--configfile", str(path)).stdout
    for rule in ("train_design_oracle", "design_sequences", "evaluate_sequence_design"):
        assert f"rule {rule}:" in out
    assert "sortseq_design/models/sequence_predictor/model_card.md" in out
    assert "sortseq_design/models/dna_gan/model.pt" in out  # joint design's generator


# apply -----------------------------------------------------------------------------------

def apply_config(tmp_path, **section):
    from medgen.apply import apply_model  # noqa: F401 (imported where the test calls it)

    config = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    config["tasks"] = ["sequence_design"]
    config["apply"] = {"activate": True, "model": "m.pt"}
    config["sequence_design"] = section
    return medgen_config.validate(config)


def test_a_predictor_scores_a_fasta_and_a_measured_table(trained, tmp_path, caplog):
    from medgen.apply import apply_model

    fasta = tmp_path / "new.fa"
    fasta.write_text(">a\n" + "CCC" + MOTIF + "C" * 11 + "GGGG\n>b\n" + "C" * 20 + "\n")
    config = apply_config(tmp_path, source="fasta", path=str(fasta))
    with caplog.at_level(logging.WARNING, logger="medgen.tasks.sequence_design.apply"):
        out = apply_model(trained["predictor"], config, tmp_path / "apply")
    # the window length of the config (the default, 50) gives way to the model's, said so
    assert "'sequence_design.window.length' (50) is not used" in caplog.text
    table = pd.read_csv(out, sep="\t")
    assert list(table["id"]) == ["a:0", "b:0"]  # 24 bases: one window of 20, tail left out
    assert table.loc[0, "prediction"] > table.loc[1, "prediction"] + 1  # the motif's effect
    measured = tmp_path / "m.csv"
    pd.DataFrame({"x": ["A" * 20, "C" * 3 + MOTIF + "C" * 11], "y": [0.0, 2.0]}).to_csv(
        measured, index=False)
    config = apply_config(tmp_path, source="table", path=str(measured))
    out = apply_model(trained["predictor"], config, tmp_path / "apply2")
    assert out.name == "metrics.json"
    assert "pearson_r" in json_load(out)["metrics"]
    assert json_load(out)["n_seen_in_fitting"] == 0
    # the predictor's own table: its train/val sequences are flagged, the rest scored apart
    own = trained["folder"] / "data/table.csv"
    out = apply_model(trained["predictor"], apply_config(tmp_path, source="table",
                                                         path=str(own)), tmp_path / "own")
    summary = json_load(out)
    from medgen.tasks.sequence_design.prepare import load_prepared

    split = load_prepared(trained["data"])[0]["split"]
    fitted = int(np.isin(split, ["train", "val"]).sum())
    assert summary["overlap_checked"] and summary["n_seen_in_fitting"] == fitted
    assert summary["metrics_unseen"]["n_sequences"] == (split == "test").sum()
    flags = pd.read_csv(tmp_path / "own/predictions.tsv", sep="\t")["seen_in_fitting"]
    assert flags.tolist() == np.isin(split, ["train", "val"]).tolist()
    short = tmp_path / "short.csv"
    pd.DataFrame({"x": ["ACGT" * 4], "y": [1.0]}).to_csv(short, index=False)
    config = apply_config(tmp_path, source="table", path=str(short))
    with pytest.raises(MedgenInputError, match=re.escape(
            "short.csv, line 2: sequence of length 16; expected 20 (the predictor's input "
            "length)")):
        apply_model(trained["predictor"], config, tmp_path / "apply3")
    assert not (tmp_path / "apply3").exists()
    with pytest.raises(MedgenInputError, match="'sequence_design.path' is empty"):
        apply_model(trained["predictor"], apply_config(tmp_path, path=""), tmp_path / "a4")


@pytest.mark.workflow
def test_apply_with_a_predictor_plans_without_the_motif_file(trained, tmp_path):
    fasta = tmp_path / "new.fa"
    fasta.write_text(">a\n" + "C" * 20 + "\n")
    path = tmp_path / "apply.yaml"
    path.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"), "run_name": "applied",
        "tasks": ["sequence_design"],
        "apply": {"activate": True, "model": str(trained["predictor"])},
        "sequence_design": {"families": ["dna_gan"], "source": "fasta", "path": str(fasta),
                            "evaluation": {"motifs": str(tmp_path / "missing.jaspar")}}}))
    out = run_snakemake("-n", "--cores", "1", "--configfile", str(path)).stdout
    assert "rule apply_model:" in out and "missing.jaspar" not in out


@pytest.mark.workflow
def test_a_generator_samples_n_sequences_flagged_synthetic(trained, tmp_path, caplog):
    from medgen.apply import apply_model

    hp = {**registry.resolve_hparams("dna_gan", "default"), "channels": 4, "n_blocks": 1,
          "latent_dim": 5, "batch_size": 32, "max_epochs": 1}
    gan = train_model("dna_gan", trained["data"], hp, TRAINING, 0, tmp_path / "gan")
    config = apply_config(tmp_path, path="", sampling={"n_sequences": 7})
    config["seed"] = 3
    out = apply_model(gan, config, tmp_path / "apply")
    table = pd.read_csv(out, sep="\t")
    assert len(table) == 7 and (table["sequence"].str.len() == 20).all()
    assert (tmp_path / "apply/generated.fa").read_text().count(">") == 7
    assert json_load(tmp_path / "apply/apply.json")["synthetic"] is True
    # a FASTA named in the section is not read: said so; the log names the final file
    config["sequence_design"]["path"] = str(trained["folder"] / "data/table.csv")
    with caplog.at_level(logging.INFO, logger="medgen.tasks.sequence_design.apply"):
        again = apply_model(gan, config, tmp_path / "again")
    assert pd.read_csv(again, sep="\t")["sequence"].tolist() == table["sequence"].tolist()
    assert "'sequence_design.path' (" in caplog.text and "is not used" in caplog.text
    assert f"to {tmp_path / 'again/generated.fa'}, mean GC" in caplog.text, caplog.text
    assert ".part" not in caplog.text
    # the workflow plans the model alone: a path left in the section need not exist
    path = tmp_path / "apply.yaml"
    path.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"), "run_name": "sampled",
        "tasks": ["sequence_design"], "apply": {"activate": True, "model": str(gan)},
        "sequence_design": {"families": ["dna_gan"], "source": "fasta",
                            "path": str(tmp_path / "gone.fa"),
                            "sampling": {"n_sequences": 7}}}))
    out = run_snakemake("-n", "--cores", "1", "--configfile", str(path)).stdout
    assert "rule apply_model:" in out


def test_the_sample_command_never_overwrites_the_fasta_the_model_was_trained_on(
        tmp_path, capsys):
    from medgen.cli import main
    from medgen.tasks.sequence_design.prepare import prepare_windows
    from tests.helpers.sequence_data import write_fasta

    rng = np.random.default_rng(0)
    fasta = write_fasta(tmp_path / "train.fa", {f"r{i}": s for i, s in enumerate(
        random_sequences(60, 20, rng))})
    data = prepare_windows(fasta, tmp_path / "data.npz", 20)
    hp = {**registry.resolve_hparams("dna_gan", "default"), "channels": 4, "n_blocks": 1,
          "latent_dim": 5, "batch_size": 16, "max_epochs": 1}
    gan = train_model("dna_gan", data, hp, TRAINING, 0, tmp_path / "gan")
    before = fasta.read_bytes()
    # the FASTA is an input of the model's provenance (what medgen info lists), not an
    # argument of this request
    assert main(["sample", str(gan), "--n", "3", "--out", str(fasta)]) == 2
    assert re.search("would overwrite .*train.fa, which this request reads or the model was "
                     "made from", capsys.readouterr().err)
    assert fasta.read_bytes() == before and not Path(f"{fasta}.json").exists()


def json_load(path):
    import json

    return json.loads(path.read_text())


def test_the_oracle_also_trains_on_a_replicate_table_averaging_repeats(trained, tmp_path):
    from medgen.tasks.sequence_design.prepare import load_prepared

    arrays, _ = load_prepared(trained["data"])
    first = "".join("ACGT"[i] for i in arrays["onehot"][0].argmax(-1))
    rng = np.random.default_rng(5)
    new = random_sequences(30, 20, rng)
    replicate = tmp_path / "replicate.csv"
    pd.DataFrame({"x": [first, *new], "y": [9.0] + [0.0] * 30}).to_csv(replicate, index=False)
    path = train_oracle(trained["data"], tmp_path / "o.pt", overrides={"max_epochs": 1},
                        extra_tables=[str(replicate)],
                        table={"sequence_column": "x", "value_column": "y",
                               "count_prefix": None})
    saved = checkpoint.load(path)
    assert saved.provenance["oracle"]["n_sequences"] == 800 + 30  # the repeat averaged
    assert str(replicate) in saved.provenance["training"]["inputs"]


def test_the_generator_trains_below_the_quantile_and_designs_are_checked_against_it(
        tmp_path):
    from medgen.tasks.sequence_design.loaders import training_data
    from medgen.tasks.sequence_design.prepare import load_prepared, prepare_measurements
    from tests.helpers.sequence_data import write_motif_table

    csv = write_motif_table(tmp_path / "t.csv", n=200, length=20)
    data = prepare_measurements(csv, tmp_path / "data.npz", set_column=None,
                                generator_below_quantile=0.4)
    arrays, record = load_prepared(data)
    train = arrays["split"] == "train"
    mask = arrays["generator_train"]
    assert mask.sum() == pytest.approx(0.4 * train.sum(), abs=2) and not (mask & ~train).any()
    assert arrays["value"][mask].max() < arrays["value"][train & ~mask].min()
    assert record["split"]["generator_train"]["quantile"] == 0.4
    hp = registry.resolve_hparams("dna_gan", "default")
    assert len(training_data(data, hp, 0, "dna_gan").train.dataset) == mask.sum()
    hp = registry.resolve_hparams("sequence_predictor", "default")
    assert len(training_data(data, hp, 0, "sequence_predictor").train.dataset) == train.sum()


@pytest.mark.realdata
@pytest.mark.workflow
def test_a_small_real_sort_seq_run_designs_scores_and_cards_the_predictor(shared_data,
                                                                          tmp_path):
    # the first 2,000 variants of MAVENN's sort-seq file (a slice written here, not shipped)
    table = pd.read_csv(shared_data / "sequence/mavenn/sortseq_data.csv.gz", nrows=2000)
    table.to_csv(tmp_path / "sortseq.csv", index=False)
    config = yaml.safe_load((REPO_ROOT / "config/datasets/sortseq_design.yaml").read_text())
    config["sequence_design"]["path"] = str(tmp_path / "sortseq.csv")
    # both families: joint design runs through the workflow on a GAN trained on the
    # lower 40% (a small GAN: 1 epoch, 8 channels; the plan is what is tested here)
    config["sequence_design"]["design"].update(
        n_sequences=10, steps=30, evolution_rounds=5, evolution_mutants=10, oracle_epochs=2,
        motif_experiment="")
    config["sequence_design"]["evaluation"] = {"n_samples": 100, "motifs": ""}
    config.update(results_dir=str(tmp_path / "results"),
                  training={"accelerator": "cpu", "progress_bar": False, "num_threads": 2},
                  models={"sequence_predictor": {"params": {"max_epochs": 2}},
                          "dna_gan": {"params": {"max_epochs": 1, "channels": 8,
                                                 "n_blocks": 1}}})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run_snakemake("--cores", "2", "--configfile", str(path))
    run = tmp_path / "results/sortseq_design/sequence_design"
    metrics = pd.read_csv(run / "design_eval/metrics.tsv", sep="\t").set_index("method")
    assert list(metrics.index) == ["measured (train)", "activation_maximisation", "joint",
                                   "evolution", "random", "best_measured"]
    assert metrics["beyond_generator_train_max"].iloc[1:].notna().all()
    # real promoters: the best measured variants score above random sequences
    assert metrics.loc["best_measured", "oracle_mean"] > metrics.loc["random", "oracle_mean"]
    card = (tmp_path / "results/sortseq_design/models/sequence_predictor/model_card.md")
    assert "pearson_r" in card.read_text() and "additive_ridge" in card.read_text()
    assert (run / "design/designed/predictor_evolution.fa").stat().st_size > 0
    # joint design: GAN samples moved by the predictor, scored like the other methods
    joint = (run / "design/designed/predictor_joint.fa").read_text()
    assert joint.count(">") == 10
    assert metrics.loc["joint", ["oracle_mean", "diversity_hamming"]].notna().all()


def test_the_sample_command_writes_a_fasta_of_a_dna_gan_and_refuses_a_predictor(
        trained, tmp_path, capsys, caplog):
    from medgen.cli import main

    hp = {**registry.resolve_hparams("dna_gan", "default"), "channels": 4, "n_blocks": 1,
          "latent_dim": 5, "batch_size": 32, "max_epochs": 1}
    gan = train_model("dna_gan", trained["data"], hp, TRAINING, 0, tmp_path / "gan")
    out = tmp_path / "gen.fa"
    assert main(["sample", str(gan), "--n", "9", "--out", str(out)]) == 0
    assert out.read_text().count(">") == 9 and "synthetic=true" in out.read_text()
    assert json_load(tmp_path / "gen.fa.json")["synthetic"] is True
    assert main(["sample", str(trained["predictor"]), "--n", "3", "--out",
                 str(tmp_path / "p.fa")]) == 2
    assert "does not generate" in capsys.readouterr().err
    # a folder (a trailing '/') is not written as a file
    assert main(["sample", str(gan), "--n", "3", "--out", f"{tmp_path / 'dir.fa'}/"]) == 2
    assert "ends in a path separator (a folder)" in capsys.readouterr().err
    assert not (tmp_path / "dir.fa").exists()
    # an earlier sample is replaced, with a warning naming it
    with caplog.at_level(logging.WARNING, logger="medgen.synthetic_output"):
        assert main(["sample", str(gan), "--n", "2", "--out", str(out)]) == 0
    assert f"{out} exists and will be replaced" in caplog.text
    assert out.read_text().count(">") == 2
