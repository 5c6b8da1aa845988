"""Generation baselines (i.i.d., Markov chains) and generation metrics of sequence design
(medgen.tasks.sequence_design), on sequences the tests draw, plus a real-data check on a
slice of ce2 chrX: a Markov-5 chain is closer to held-out windows than i.i.d. bases."""

from __future__ import annotations

import numpy as np
import pytest
from Bio.Seq import Seq

from medgen.data.sequence import identity_split, read_fasta_windows, reverse_complement
from medgen.errors import MedgenInputError
from medgen.tasks.sequence_design.baselines import MarkovChain, fit_baselines
from medgen.tasks.sequence_design.generation_metrics import (
    best_motif_scores,
    compare_motif_hit_rates,
    dinucleotide_abundance,
    dinucleotide_distance,
    gc_content,
    gc_distance,
    homopolymer_runs,
    homopolymer_stats,
    kmer_counts,
    kmer_js_distance,
    kmer_js_distances,
    motif_hit_rates,
    motif_scorers,
    nearest_neighbour_hamming,
    read_jaspar,
)

# JASPAR MA0058.4 (MAX, CACGTG) and MA0004.1 (Arnt), as in JASPAR2024_CORE_pfms.jaspar
JASPAR_TEXT = """>MA0058.4\tMAX\tvertebrates
A [     39   6876      0    329     69      0 ]
C [   6876      0   6876     39    159     27 ]
G [      0     87      7   6876     20   6876 ]
T [      0     38    229     19   6876     36 ]
>MA0004.1\tArnt\tvertebrates
A [      4     19      0      0      0      0 ]
C [     16      0     20      0      0      0 ]
G [      0      1      0     20      0     20 ]
T [      0      0      0      0     20      0 ]
"""
# a first-order chain with strong preferences (rows: from A, C, G, T; columns: to A, C, G, T)
TRANSITIONS = np.array([[0.6, 0.2, 0.1, 0.1],
                        [0.1, 0.1, 0.7, 0.1],
                        [0.3, 0.3, 0.2, 0.2],
                        [0.05, 0.05, 0.1, 0.8]])


def random_sequences(n, length, seed, p=(0.25, 0.25, 0.25, 0.25)):
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACGT"))[rng.choice(4, size=(n, length), p=p)]
    return ["".join(row) for row in letters]


def first_order_chain(n, length, seed):
    """Sequences from TRANSITIONS, started from its stationary distribution."""
    rng = np.random.default_rng(seed)
    values, vectors = np.linalg.eig(TRANSITIONS.T)
    stationary = np.real(vectors[:, np.argmin(abs(values - 1))])
    stationary /= stationary.sum()
    out = np.empty((n, length), dtype=int)
    out[:, 0] = rng.choice(4, n, p=stationary)
    for j in range(1, length):
        u = rng.random(n)
        out[:, j] = (u[:, None] > np.cumsum(TRANSITIONS[out[:, j - 1]], axis=1)).sum(axis=1)
    return ["".join("ACGT"[b] for b in row) for row in out]


# --- baselines -------------------------------------------------------------------------

def test_a_first_order_chain_recovers_its_transition_matrix_and_spectrum():
    train = first_order_chain(2000, 60, seed=0)
    chain = MarkovChain(1).fit(train)
    np.testing.assert_allclose(chain.transitions, TRANSITIONS, atol=0.015)
    samples = chain.sample(2000, 60, np.random.default_rng(1))
    held_out = first_order_chain(2000, 60, seed=2)
    another_draw = first_order_chain(2000, 60, seed=3)  # the sampling noise of the distance
    iid = MarkovChain(0).fit(train).sample(2000, 60, np.random.default_rng(1))
    for k in (2, 3, 4):
        chain_distance = kmer_js_distance(samples, held_out, k)
        assert chain_distance < 2 * kmer_js_distance(another_draw, held_out, k) + 0.005
        assert chain_distance < kmer_js_distance(iid, held_out, k) / 10


def test_iid_baseline_draws_the_training_composition():
    train = random_sequences(500, 40, 0, p=(0.4, 0.1, 0.1, 0.4))
    chain = MarkovChain(0).fit(train)
    assert chain.name == "iid" and chain.transitions.shape == (1, 4)
    np.testing.assert_allclose(chain.transitions[0], [0.4, 0.1, 0.1, 0.4], atol=0.01)
    samples = chain.sample(1000, 40, np.random.default_rng(0))
    assert len(samples) == 1000 and {len(s) for s in samples} == {40}
    assert gc_content(samples).mean() == pytest.approx(0.2, abs=0.01)


def test_sampling_is_reproducible_with_the_callers_generator():
    chains = fit_baselines(first_order_chain(300, 30, 0))
    assert list(chains) == ["iid", "markov1", "markov2", "markov3", "markov4", "markov5"]
    for chain in chains.values():
        first = chain.sample(50, 30, np.random.default_rng(7))
        assert first == chain.sample(50, 30, np.random.default_rng(7))
        assert first != chain.sample(50, 30, np.random.default_rng(8))
    assert chains["markov5"].transitions.shape == (4 ** 5, 4)
    assert len(chains["markov3"].sample(5, 2, np.random.default_rng(0))[0]) == 2


def test_markov_chain_refuses_bad_orders_and_sampling_before_fitting():
    with pytest.raises(MedgenInputError, match="Markov order is 6; expected 0..5"):
        MarkovChain(6)
    with pytest.raises(RuntimeError, match="markov2 is not fitted"):
        MarkovChain(2).sample(1, 10, np.random.default_rng(0))
    with pytest.raises(MedgenInputError, match="windows longer than 3 bases"):
        MarkovChain(3).fit(["ACG"])


# --- k-mers, GC, dinucleotides, homopolymers -------------------------------------------

def test_kmer_counts_in_base4_order_on_one_or_both_strands():
    one = kmer_counts(["AACG"], 2, both_strands=False)
    assert one[0] == 1 and one[1] == 1 and one[6] == 1 and one.sum() == 3  # AA, AC, CG
    both = kmer_counts(["AACG"], 2)  # + CGTT: CG, GT, TT
    assert both[6] == 2 and both[11] == 1 and both[15] == 1 and both.sum() == 6
    assert kmer_counts(["ANCG"], 2, both_strands=False).sum() == 1  # N-holding k-mers out


def test_kmer_js_distance_is_zero_for_equal_sets_and_large_for_gc_rich_vs_at_rich():
    a = random_sequences(500, 50, 0)
    assert all(d == pytest.approx(0, abs=1e-7) for d in kmer_js_distances(a, a).values())
    gc_rich = random_sequences(500, 50, 1, p=(0.1, 0.4, 0.4, 0.1))
    at_rich = random_sequences(500, 50, 2, p=(0.4, 0.1, 0.1, 0.4))
    distances = kmer_js_distances(gc_rich, at_rich)
    assert list(distances) == [1, 2, 3, 4, 5, 6]
    assert all(d > 0.3 for d in distances.values())
    assert all(0 <= d <= 1 for d in distances.values())
    with pytest.raises(MedgenInputError, match="k is 7; expected 1 <= k <= sequence length 5"):
        kmer_js_distance(["ACGTA"], ["ACGTA"], 7)


def test_gc_content_and_its_distribution_distance():
    np.testing.assert_allclose(gc_content(["GGCC", "ACGT", "AATN"]), [1.0, 0.5, 0.0])
    same = random_sequences(300, 50, 0)
    result = gc_distance(same, same)
    assert result["gc_wasserstein"] == 0 and result["gc_mean_real"] == result["gc_mean_generated"]
    shifted = gc_distance(random_sequences(300, 50, 1, p=(0.1, 0.4, 0.4, 0.1)), same)
    assert shifted["gc_wasserstein"] == pytest.approx(0.3, abs=0.03)


def test_dinucleotide_abundance_sees_cpg_depletion():
    rng = np.random.default_rng(0)
    sequences = [s.replace("CG", "CA" if rng.random() < 0.5 else "TG")
                 for s in random_sequences(500, 60, 3)]
    rho = dinucleotide_abundance(sequences)
    # CpG lost to TpG and CpA (as methylated CpG decays); both strands: rho_CA = rho_TG
    assert len(rho) == 16 and rho["CG"] < 0.2 and rho["TG"] > 1.3
    assert rho["CA"] == pytest.approx(rho["TG"]) and rho["AC"] == pytest.approx(rho["GT"])
    assert rho.drop(["CG", "CA", "TG"]).between(0.7, 1.3).all()
    assert dinucleotide_distance(sequences, sequences) == 0
    assert dinucleotide_distance(sequences, random_sequences(500, 60, 4)) > 0.04


def test_homopolymer_runs_and_statistics():
    np.testing.assert_array_equal(homopolymer_runs(["AAACCT", "GGGGNA"]), [3, 2, 1, 4, 1])
    stats = homopolymer_stats(["AAAAAAAA"], ["ACACACAC"])
    assert stats["homopolymer_mean_generated"] == 8 and stats["homopolymer_mean_real"] == 1
    assert stats["longest_run_mean_generated"] == 8 and stats["longest_run_mean_real"] == 1
    assert stats["homopolymer_wasserstein"] == 7


# --- JASPAR motifs ---------------------------------------------------------------------

@pytest.fixture
def jaspar_file(tmp_path):
    path = tmp_path / "motifs.jaspar"
    path.write_text(JASPAR_TEXT)
    return path


def test_motif_scores_match_biopython_on_both_strands(jaspar_file):
    motifs = read_jaspar(jaspar_file)
    assert [m.matrix_id for m in motifs] == ["MA0058.4", "MA0004.1"]
    scorers = motif_scorers(motifs, random_sequences(500, 40, 10), fpr=1e-3)
    sequences = random_sequences(20, 30, 5)
    best = best_motif_scores(sequences, scorers)
    for j, motif in enumerate(motifs):
        pssm = motif.pssm  # background and pseudocounts set by motif_scorers
        for i, sequence in enumerate(sequences):
            forward = pssm.calculate(Seq(sequence)).max()
            reverse = pssm.reverse_complement().calculate(Seq(sequence)).max()
            assert best[i, j] == pytest.approx(max(forward, reverse), abs=1e-4)


def test_motif_hit_rate_is_higher_with_planted_max_sites(jaspar_file):
    background = random_sequences(2000, 50, 10)
    scorers = motif_scorers(read_jaspar(jaspar_file, ids=["MA0058"]), background, fpr=1e-3)
    assert scorers[0].name == "MAX" and scorers[0].null_rate <= 1e-3
    random_set = random_sequences(500, 50, 1)
    rng = np.random.default_rng(2)
    planted = []
    for sequence in random_sequences(500, 50, 3):
        at = rng.integers(0, 44)
        planted.append(sequence[:at] + "CACGTG" + sequence[at + 6:])  # a palindrome
    rate_random = motif_hit_rates(random_set, scorers)["hit_rate"].iloc[0]
    rate_planted = motif_hit_rates(planted, scorers)["hit_rate"].iloc[0]
    assert rate_random < 0.15 and rate_planted > 0.45 and rate_planted > 3 * rate_random
    table = compare_motif_hit_rates(planted, random_set, scorers, top=1)
    assert table.loc[0, "name"] == "MAX"
    assert table.loc[0, "difference"] == pytest.approx(rate_planted - rate_random)


def test_a_motif_too_short_for_the_false_positive_rate_never_hits(tmp_path, caplog):
    path = tmp_path / "short.jaspar"
    path.write_text(">MA9000.1\tshort\ttest\nA [ 10 0 ]\nC [ 0 10 ]\nG [ 0 0 ]\nT [ 0 0 ]\n")
    with caplog.at_level("INFO", logger="medgen.tasks.sequence_design.generation_metrics"):
        scorers = motif_scorers(read_jaspar(path), random_sequences(500, 40, 10), fpr=1e-3)
    # 'AC' is at about 1 in 16 positions: no cut makes it rarer than 1 in 1,000
    assert scorers[0].threshold == np.inf and scorers[0].null_rate == 0
    assert motif_hit_rates(["ACACACAC"], scorers)["hit_rate"].iloc[0] == 0
    assert "1 of 1 motifs reach their best score in more than 0.001" in caplog.text


def test_read_jaspar_refuses_unknown_ids_and_non_jaspar_files(jaspar_file, tmp_path):
    with pytest.raises(MedgenInputError, match="no matrix MA9999"):
        read_jaspar(jaspar_file, ids=["MA9999"])
    other = tmp_path / "x.jaspar"
    other.write_text("")
    with pytest.raises(MedgenInputError, match="holds no JASPAR matrices"):
        read_jaspar(other)
    with pytest.raises(MedgenInputError, match="motif fpr is 2"):
        motif_scorers(read_jaspar(jaspar_file), ["ACGTACGT"], fpr=2)


# --- nearest neighbour -----------------------------------------------------------------

def test_nearest_neighbour_hamming_finds_planted_copies_on_both_strands():
    reference = random_sequences(3000, 50, 0)
    copy = reference[1234]
    one_off = ("T" if copy[10] != "T" else "G").join([copy[:10], copy[11:]])
    queries = [copy, reverse_complement(reference[17]), one_off] + random_sequences(5, 50, 9)
    distances = nearest_neighbour_hamming(queries, reference)
    assert distances.dtype == np.int64 and list(distances[:3]) == [0, 0, 1]
    assert (distances[3:] > 10).all()  # random 50-mers are far from 3,000 others
    assert nearest_neighbour_hamming(queries[1:2], reference, both_strands=False)[0] > 0
    # blocks of a few cells give the same answer as one block; a brute-force check
    small = nearest_neighbour_hamming(queries, reference[:200], max_block=64)
    codes = np.array([list(s) for s in reference[:200]])
    brute = [min((codes != np.array(list(q))).sum(axis=1).min(),
                 (codes != np.array(list(reverse_complement(q)))).sum(axis=1).min())
             for q in queries]
    np.testing.assert_array_equal(small, brute)
    with pytest.raises(MedgenInputError, match="queries of 50, references of 40"):
        nearest_neighbour_hamming(queries, random_sequences(2, 40, 0))


# --- real data -------------------------------------------------------------------------

@pytest.mark.realdata
def test_real_markov5_is_closer_to_held_out_chrx_windows_than_iid(shared_data):
    path = shared_data / "sequence" / "ce2_chrX" / "ce2chrX.fa.gz"
    windows, _ = read_fasta_windows(path, 50, max_windows=2000)
    sequences = windows["sequence"].tolist()
    labels = identity_split(sequences, (0.8, 0.1, 0.1), seed=0)
    train = [s for s, label in zip(sequences, labels, strict=True) if label == "train"]
    held_out = [s for s, label in zip(sequences, labels, strict=True) if label != "train"]
    chains = fit_baselines(train, orders=(5,))
    rng = np.random.default_rng(0)
    distance = {name: kmer_js_distance(chain.sample(2000, 50, rng), held_out, 6)
                for name, chain in chains.items()}
    assert distance["markov5"] < distance["iid"]
    memorised = nearest_neighbour_hamming(held_out[:100], train)
    assert memorised.min() >= 0 and memorised.max() <= 50


@pytest.mark.realdata
def test_real_jaspar_file_reads_with_biopython(shared_data):
    path = shared_data / "sequence" / "jaspar" / "JASPAR2024_CORE_pfms.jaspar"
    motifs = read_jaspar(path)
    assert len(motifs) == 2346
    (max_motif,) = read_jaspar(path, ids=["MA0058"])
    assert max_motif.matrix_id == "MA0058.4" and max_motif.name == "MAX"
    assert str(max_motif.consensus) == "CACGTG"
