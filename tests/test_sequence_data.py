"""DNA sequence data (medgen.data.sequence): FASTA windows, measurement tables, one-hot
encoding and the identity split, on small FASTA and CSV files the tests write, plus a slice
of the real ce2 chrX FASTA and MAVENN's sort-seq table (../shared/data/sequence)."""

from __future__ import annotations

import gzip
import logging
import re

import numpy as np
import pandas as pd
import pytest

from medgen.data.sequence import (
    decode,
    identity_split,
    mean_bin,
    one_hot,
    read_fasta_windows,
    read_measurements,
    reverse_complement,
)
from medgen.errors import MedgenInputError


def write_fasta(tmp_path, text: str, name: str = "x.fa"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- FASTA windows ---------------------------------------------------------------------

def test_fasta_is_cut_into_windows_with_record_and_start(tmp_path):
    path = write_fasta(tmp_path, ">r1 first\nACGTA\nCGTAC\nGG\n>r2\nTTTTTGGGGG\n")
    windows, report = read_fasta_windows(path, 5)
    assert windows["sequence"].tolist() == ["ACGTA", "CGTAC", "TTTTT", "GGGGG"]
    assert windows["record"].tolist() == ["r1", "r1", "r2", "r2"]
    assert windows["start"].tolist() == [0, 5, 0, 5]
    assert report["records"] == 2 and report["windows"] == 4
    overlapping, _ = read_fasta_windows(path, 5, stride=2)
    assert overlapping["sequence"].tolist()[:3] == ["ACGTA", "GTACG", "ACGTA"]
    assert overlapping["start"].tolist()[:3] == [0, 2, 4]


def test_gzipped_fasta_reads_as_plain(tmp_path):
    text = ">r1\nACGTACGTAC\n"
    plain = write_fasta(tmp_path, text)
    packed = tmp_path / "x.fa.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    assert read_fasta_windows(packed, 5)[0].equals(read_fasta_windows(plain, 5)[0])


def test_soft_masked_lower_case_is_read_as_upper_case_and_counted(tmp_path, caplog):
    path = write_fasta(tmp_path, ">r1\nACGTacgtAC\n")
    with caplog.at_level(logging.INFO, logger="medgen.data.sequence"):
        windows, report = read_fasta_windows(path, 5)
    assert windows["sequence"].tolist() == ["ACGTA", "CGTAC"]
    assert report["soft_masked_bases"] == 4
    assert "4 soft-masked (lower-case) bases read as upper case" in caplog.text


def test_rna_u_is_refused_naming_file_record_and_position(tmp_path):
    path = write_fasta(tmp_path, ">r1\nACGTA\n>rna_rec\nACGUACGTAC\n")
    with pytest.raises(MedgenInputError) as err:
        read_fasta_windows(path, 5)
    message = str(err.value)
    assert str(path) in message and "record 'rna_rec'" in message
    assert "position 4 (1-based)" in message and "RNA (U)" in message


def test_rna_u_is_converted_when_asked_and_counted(tmp_path, caplog):
    path = write_fasta(tmp_path, ">r1\nACGUACGUAC\n")
    with caplog.at_level(logging.WARNING, logger="medgen.data.sequence"):
        windows, report = read_fasta_windows(path, 5, u_policy="convert")
    assert windows["sequence"].tolist() == ["ACGTA", "CGTAC"]
    assert report["u_converted"] == 2 and "2 RNA U read as T" in caplog.text


@pytest.mark.parametrize("code", list("RYKMSWBDHV"))
def test_iupac_ambiguity_codes_are_refused_naming_file_record_and_position(tmp_path, code):
    path = write_fasta(tmp_path, f">chrA\nACGTACGTAC\n>chrB desc\nACGTA\nCG{code.lower()}TA\n")
    with pytest.raises(MedgenInputError) as err:
        read_fasta_windows(path, 5)
    message = str(err.value)
    assert str(path) in message and "record 'chrB'" in message
    assert "position 8 (1-based)" in message and "IUPAC ambiguity code" in message


@pytest.mark.parametrize("char", ["7", "-", "*", "."])
def test_characters_outside_the_alphabet_are_refused_naming_file_record_position(
        tmp_path, char):
    path = write_fasta(tmp_path, f">r1\nACGTACGTAC\n>r2\nAC{char}TACGTAC\n")
    with pytest.raises(MedgenInputError) as err:
        read_fasta_windows(path, 5)
    message = str(err.value)
    assert str(path) in message and "record 'r2'" in message
    assert "position 3 (1-based)" in message and f"holds {char!r}, not a DNA letter" in message


def test_windows_with_n_are_dropped_and_counted(tmp_path, caplog):
    path = write_fasta(tmp_path, ">r1\nACGTAACNTACGTACG\n")
    with caplog.at_level(logging.INFO, logger="medgen.data.sequence"):
        windows, report = read_fasta_windows(path, 4)
    assert windows["sequence"].tolist() == ["ACGT", "TACG", "TACG"]
    assert windows["start"].tolist() == [0, 8, 12]
    assert report["windows_dropped_n"] == 1 and report["windows_total"] == 4
    assert "1 of 4 windows hold N and were dropped" in caplog.text


def test_windows_with_n_are_kept_when_the_policy_says_so(tmp_path):
    path = write_fasta(tmp_path, ">r1\nACGTAACNTACGTACG\n")
    windows, report = read_fasta_windows(path, 4, n_policy="keep")
    assert windows["sequence"].tolist()[1] == "AACN"
    assert report["windows_with_n"] == 1 and report["windows_dropped_n"] == 0
    assert one_hot(["AACN"])[0, 3].sum() == 0


def test_records_shorter_than_the_window_are_skipped_and_counted(tmp_path, caplog):
    path = write_fasta(tmp_path, ">short\nACG\n>long\nACGTACGTAC\n")
    with caplog.at_level(logging.WARNING, logger="medgen.data.sequence"):
        windows, report = read_fasta_windows(path, 5)
    assert set(windows["record"]) == {"long"} and report["records_too_short"] == 1
    assert "1 records shorter than 5 bp skipped" in caplog.text


def test_a_fasta_with_no_window_left_is_refused(tmp_path):
    path = write_fasta(tmp_path, ">a\nACG\n>b\nACGT\n")
    with pytest.raises(MedgenInputError, match=re.escape(
            f"FASTA file {path}: no window of 5 bases is left (2 records, 2 shorter than 5")):
        read_fasta_windows(path, 5)
    only_n = write_fasta(tmp_path, ">a\nNNNNNNNNNN\n", "n.fa")
    with pytest.raises(MedgenInputError, match="2 windows dropped for N"):
        read_fasta_windows(only_n, 5)


def test_an_empty_fasta_is_refused_naming_the_file(tmp_path):
    path = write_fasta(tmp_path, "")
    with pytest.raises(MedgenInputError, match=re.escape(f"FASTA file {path} holds no records")):
        read_fasta_windows(path, 5)


def test_a_file_that_is_not_fasta_is_refused_naming_the_file(tmp_path):
    path = write_fasta(tmp_path, "sample,value\nA,1\n", "table.csv")
    with pytest.raises(MedgenInputError, match=re.escape(f"{path} is not a FASTA file")):
        read_fasta_windows(path, 5)
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(MedgenInputError, match=re.escape(f"{binary} is not a FASTA file")):
        read_fasta_windows(binary, 5)
    with pytest.raises(MedgenInputError, match="does not exist"):
        read_fasta_windows(tmp_path / "missing.fa", 5)


def test_a_table_a_folder_or_spaces_given_as_fasta_get_our_own_words(tmp_path, caplog):
    table = write_fasta(tmp_path, "x,y\nACGTACGTAC,1.0\n", "t.csv")
    with pytest.raises(MedgenInputError) as err:
        read_fasta_windows(table, 5)
    message = str(err.value)  # one sentence of ours, no Biopython text pasted in
    assert message.startswith(f"{table} is not a FASTA file: its first line") and (
        "comments" not in message and "\n" not in message), message
    folder = tmp_path / "dir.fa"
    folder.mkdir()
    with pytest.raises(MedgenInputError, match=re.escape(f"{folder} is a folder, not a file")):
        read_fasta_windows(folder, 5)
    with pytest.raises(MedgenInputError, match="is a folder, not a file"):
        read_measurements(folder)
    # spaces inside sequence lines (blocks of ten): skipped, as Biopython does, and counted
    spaced = write_fasta(tmp_path, ">a x y\nACGTA CGTAC\tACGTA\nACGTA\n", "s.fa")
    with caplog.at_level(logging.WARNING, logger="medgen.data.sequence"):
        windows, report = read_fasta_windows(spaced, 5)
    assert windows["sequence"].tolist() == ["ACGTA", "CGTAC", "ACGTA", "ACGTA"]
    assert report["whitespace_skipped"] == 2  # the header's spaces are not counted
    assert "2 spaces or tabs inside sequence lines skipped" in caplog.text


def test_max_windows_stops_early_and_bad_arguments_are_refused(tmp_path):
    path = write_fasta(tmp_path, ">a\nACGTACGTACGTACGTACGT\n>b\nACGTACGTAC\n")
    windows, report = read_fasta_windows(path, 5, max_windows=3)
    assert len(windows) == 3 and report["truncated"] and report["records"] == 1
    with pytest.raises(MedgenInputError, match="length is 0; expected an integer >= 1"):
        read_fasta_windows(path, 0)
    with pytest.raises(MedgenInputError, match="n_policy is 'skip'; expected one of: drop"):
        read_fasta_windows(path, 5, n_policy="skip")


# --- one-hot, reverse complement, identity split ---------------------------------------

def test_one_hot_round_trips_in_acgt_order_with_n_as_zeros():
    sequences = ["ACGTN", "TTGCA", "nacgt"]
    x = one_hot(sequences)
    assert x.dtype == np.float32 and x.shape == (3, 5, 4)
    np.testing.assert_array_equal(x[0, :4], np.eye(4))
    assert x[0, 4].sum() == 0 and x[2, 0].sum() == 0
    assert decode(x) == ["ACGTN", "TTGCA", "NACGT"]
    soft = x * 0.7 + 0.075  # probabilities decode to their argmax; ties to A
    soft[0, 4] = 0.0  # all zeros: N
    assert decode(soft) == ["ACGTN", "TTGCA", "AACGT"]


def test_one_hot_refuses_other_characters_and_unequal_lengths():
    with pytest.raises(MedgenInputError, match=r"sequence 2, position 3 holds 'R'"):
        one_hot(["ACGT", "ACRT"])
    with pytest.raises(MedgenInputError, match="sequence 2 has 3"):
        one_hot(["ACGT", "ACG"])
    with pytest.raises(MedgenInputError, match=r"shape \(N, L, 4\)"):
        decode(np.zeros((2, 3)))


def test_reverse_complement():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement(reverse_complement("GATTACA")) == "GATTACA"


def _random_sequences(n, length, seed):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def test_identity_split_keeps_a_sequence_and_its_reverse_complement_together():
    base = _random_sequences(300, 12, 0)
    sequences = base + [reverse_complement(s) for s in base[:100]] + base[100:150]
    labels = identity_split(sequences, (0.6, 0.2, 0.2), seed=1)
    split_of = {}
    for sequence, label in zip(sequences, labels, strict=True):
        key = min(sequence, reverse_complement(sequence))
        assert split_of.setdefault(key, label) == label
    assert set(labels) == {"train", "val", "test"}


def test_identity_split_is_reproducible_and_holds_its_fractions():
    sequences = _random_sequences(2000, 10, 2)
    first = identity_split(sequences, (0.8, 0.1, 0.1), seed=3)
    assert (first == identity_split(sequences, (0.8, 0.1, 0.1), seed=3)).all()
    assert (first != identity_split(sequences, (0.8, 0.1, 0.1), seed=4)).any()
    # the input order does not matter: the units are sorted before the shuffle
    order = np.random.default_rng(0).permutation(len(sequences))
    shuffled = identity_split([sequences[i] for i in order], (0.8, 0.1, 0.1), seed=3)
    assert (shuffled == first[order]).all()
    shares = pd.Series(first).value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.01 and abs(shares["test"] - 0.1) < 0.01
    with pytest.raises(MedgenInputError, match="split fractions are"):
        identity_split(sequences, (0.5, 0.2, 0.2))


# --- measurement tables ----------------------------------------------------------------

def write_table(tmp_path, rows: list[str], name: str = "m.csv"):
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n")
    return path


def test_missing_measurements_are_dropped_and_counted(tmp_path, caplog):
    path = write_table(tmp_path, ["x,y", "ACGT,1.0", "CCGT,", "GCGT,NaN", "TCGT,2.5"])
    with caplog.at_level(logging.WARNING, logger="medgen.data.sequence"):
        table, report = read_measurements(path)
    assert table["sequence"].tolist() == ["ACGT", "TCGT"] and report["dropped_missing"] == 2
    assert table["line"].tolist() == [2, 5]
    assert "2 rows without a measurement (NaN or no reads) dropped (first: lines 3, 4)" \
        in caplog.text


def test_an_infinite_measurement_is_refused_naming_line_and_value(tmp_path):
    path = write_table(tmp_path, ["x,y", "ACGT,1.0", "CCGT,inf", "GCGT,-inf"])
    with pytest.raises(MedgenInputError, match=re.escape(
            f"{path}, line 3: column 'y' is 'inf'; expected a finite number (infinite "
            "values: 2)")):
        read_measurements(path)
    counts = write_table(tmp_path, ["x,ct_0,ct_1", "ACGT,1,2", "CCGT,1,inf"], "c.csv")
    with pytest.raises(MedgenInputError, match="line 3: column 'ct_1' is 'inf'"):
        read_measurements(counts, value_column=None, count_prefix="ct_")


def test_a_sequence_of_another_length_is_refused_naming_line_and_length(tmp_path):
    path = write_table(tmp_path, ["x,y", "ACGT,1", "ACGT,2", "ACGTA,3", "ACGT,4"])
    with pytest.raises(MedgenInputError, match=re.escape(
            f"{path}, line 4: sequence of length 5; expected 4 (most frequent in the file)")):
        read_measurements(path)
    with pytest.raises(MedgenInputError, match=re.escape(
            f"{path}, line 2: sequence of length 4; expected 5 (configured)")):
        read_measurements(path, length=5)


def test_characters_outside_acgt_are_refused_naming_line_and_position(tmp_path):
    path = write_table(tmp_path, ["x\ty", "ACGT\t1", "ACNT\t2"], "m.tsv")
    with pytest.raises(MedgenInputError, match=re.escape(
            f"{path}, line 3, position 3 (1-based) holds 'N': N (unknown base) is not "
            "allowed in a measurement table")):
        read_measurements(path)
    iupac = write_table(tmp_path, ["x,y", "ACGT,1", "ACGY,2"], "iupac.csv")
    with pytest.raises(MedgenInputError, match=re.escape(
            f"{iupac}, line 3, position 4 (1-based) holds 'Y', an IUPAC ambiguity code")):
        read_measurements(iupac)


def test_rna_measurements_are_converted_when_asked(tmp_path):
    path = write_table(tmp_path, ["x,y", "ACGU,1", "acgu,2"])
    with pytest.raises(MedgenInputError, match="line 2, position 4 .* RNA"):
        read_measurements(path)
    table, report = read_measurements(path, u_policy="convert")
    assert table["sequence"].tolist() == ["ACGT"] and report["u_converted"] == 2
    assert report["soft_masked"] == 4


def test_duplicates_equal_are_deduplicated_different_are_averaged(tmp_path, caplog):
    path = write_table(tmp_path, ["x,y,set", "ACGT,1.0,training", "ACGT,1.0,training",
                                  "CCGT,1.0,test", "CCGT,2.0,test", "CCGT,4.5,test",
                                  "GGGG,3.0,validation"])
    with caplog.at_level(logging.INFO, logger="medgen.data.sequence"):
        table, report = read_measurements(path)
    by = table.set_index("sequence")
    assert by.loc["ACGT", "value"] == 1.0 and by.loc["ACGT", "n_rows"] == 2
    assert by.loc["CCGT", "value"] == pytest.approx(2.5) and by.loc["CCGT", "n_rows"] == 3
    assert by["set"].to_dict() == {"ACGT": "train", "CCGT": "test", "GGGG": "val"}
    assert report["duplicates_equal"] == 1 and report["duplicates_averaged"] == 1
    assert report["largest_spread"] == pytest.approx(3.5)
    assert ("1 sequences repeated with different measurements: averaged (largest spread "
            "3.5; the first on lines 4, 5, 6)") in caplog.text


def test_a_sequence_repeated_in_different_sets_is_refused_naming_its_lines(tmp_path):
    path = write_table(tmp_path, ["x,y,set", "ACGT,1,training", "CCGT,2,test",
                                  "ACGT,1,test", "GGGG,3,validation", "CCGT,2,training"])
    with pytest.raises(MedgenInputError, match=re.escape(
            f"{path}: sequence ACGT is repeated in different sets of column 'set' (line 2: "
            "train, line 4: test); 2 sequences are; a sequence must be in one split")):
        read_measurements(path)
    table, _ = read_measurements(path, set_column=None)  # no split read: merged as before
    assert table.set_index("sequence")["n_rows"].to_dict() == {"ACGT": 2, "CCGT": 2,
                                                               "GGGG": 1}


def test_mean_bin_of_counts_and_pooled_duplicates(tmp_path):
    counts = np.array([[0, 1, 0], [2, 0, 2], [0, 0, 0]])
    np.testing.assert_allclose(mean_bin(counts), [1.0, 1.0, np.nan])
    np.testing.assert_allclose(mean_bin(counts[:2], bins=[10, 20, 30]), [20.0, 20.0])
    path = write_table(tmp_path, ["set,ct_0,ct_1,ct_2,x", "training,1,0,0,AC",
                                  "training,0,0,3,AC", "test,0,0,0,GG", "test,0,2,0,TT"])
    table, report = read_measurements(path, value_column=None, count_prefix="ct_")
    by = table.set_index("sequence")["value"]
    # the reads of a repeated variant are pooled: (1 x bin 0 + 3 x bin 2) / 4 reads
    assert by["AC"] == pytest.approx(1.5) and by["TT"] == 1.0 and "GG" not in by
    assert report["dropped_missing"] == 1 and report["value"].startswith("mean bin of ct_0")
    with pytest.raises(MedgenInputError, match="no count columns named 'bin_<bin>'"):
        read_measurements(path, value_column=None, count_prefix="bin_")


def test_measurement_table_errors_name_columns_and_values(tmp_path):
    path = write_table(tmp_path, ["seq,y", "ACGT,1"])
    with pytest.raises(MedgenInputError, match="no column 'x'; columns: seq, y"):
        read_measurements(path)
    bad = write_table(tmp_path, ["x,y", "ACGT,1", "CCGT,high"], "bad.csv")
    with pytest.raises(MedgenInputError, match="line 3: column 'y' is 'high'; expected a num"):
        read_measurements(bad)
    sets = write_table(tmp_path, ["x,y,set", "ACGT,1,holdout"], "sets.csv")
    with pytest.raises(MedgenInputError, match="line 2: column 'set' is 'holdout'"):
        read_measurements(sets)


# --- real data -------------------------------------------------------------------------

@pytest.mark.realdata
def test_real_ce2_chrx_slice_reads_as_50_bp_lines(shared_data):
    path = shared_data / "sequence" / "ce2_chrX" / "ce2chrX.fa.gz"
    windows, report = read_fasta_windows(path, 50, max_windows=2000)
    assert len(windows) == 2000 and report["truncated"] and set(windows["record"]) == {"chrX"}
    assert windows["start"].tolist()[:3] == [0, 50, 100]
    # the chromosome starts with the C. elegans telomeric repeat TTAGGC (here GCCTAA)
    assert windows["sequence"].iloc[0].startswith("CTAAGCCTAAGCCTAAGCC")
    assert windows["sequence"].str.fullmatch("[ACGT]{50}").all()
    labels = identity_split(windows["sequence"].tolist(), seed=0)
    train = set(windows["sequence"][labels == "train"])
    held_out = windows["sequence"][labels != "train"]
    assert not any(s in train or reverse_complement(s) in train for s in held_out)


@pytest.mark.realdata
def test_real_sortseq_activity_is_the_mean_bin_with_its_sets(shared_data):
    path = shared_data / "sequence" / "mavenn" / "sortseq_data.csv.gz"
    table, report = read_measurements(path, value_column=None, count_prefix="ct_")
    assert report["rows"] == len(table) == 50518 and report["length"] == 75
    assert report["sets"] == {"train": 30516, "val": 10067, "test": 9935}
    raw = pd.read_csv(path)
    counts = raw[[f"ct_{b}" for b in range(10)]].to_numpy()
    expected = (counts * np.arange(10)).sum(axis=1) / counts.sum(axis=1)
    np.testing.assert_allclose(table["value"].to_numpy(), expected)
    assert table["value"].between(0, 9).all() and table["sequence"].str.len().eq(75).all()
    assert (table["set"].to_numpy() == raw["set"].map(
        {"training": "train", "validation": "val", "test": "test"}).to_numpy()).all()
