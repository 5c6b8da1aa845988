"""DNA sequences: FASTA windows, measurement tables, one-hot encoding and identity splits.

The data layer of sequence design (Killoran et al. 2017, "Generating and designing DNA with
deep generative models"): the paper cut human chromosome 1 into its 50-bp FASTA lines
(lines with N dropped, an 80/10/10 split) and read protein-binding-microarray probes with
their measured binding. Here a FASTA is cut into windows of a chosen length
(:func:`read_fasta_windows`) and a table of sequence -> measurement is read
(:func:`read_measurements`; MAVENN's sort-seq counts through :func:`mean_bin`). What is read
"right" (soft-masking, N windows, RNA U, duplicates, missing measurements) is logged and
returned in a report dict; what cannot be read right (IUPAC ambiguity codes, other
characters, sequences of another length) is refused with one message naming the file, the
record or line and the 1-based position.

Sequences are upper-case ``str`` over ``ACGT`` (``N`` where a window policy keeps it);
one-hot arrays are float32 ``(N, L, 4)`` in ``ACGT`` order.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from Bio import SeqIO
from Bio.Seq import reverse_complement as _bio_reverse_complement

from medgen.data.io.delimited import separator
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

ALPHABET = "ACGT"  # one-hot channel order
NPolicy = Literal["drop", "keep"]
N_POLICIES: tuple[str, ...] = ("drop", "keep")
UPolicy = Literal["refuse", "convert"]
U_POLICIES: tuple[str, ...] = ("refuse", "convert")
# IUPAC ambiguity codes other than N, with the bases each stands for (for the message)
IUPAC_AMBIGUITY = {
    "R": "A/G", "Y": "C/T", "K": "G/T", "M": "A/C", "S": "C/G", "W": "A/T",
    "B": "C/G/T", "D": "A/G/T", "H": "A/C/T", "V": "A/C/G",
}
# the sort-seq / MPSA 'set' column's names -> the split names used everywhere in medgen
SET_NAMES = {"training": "train", "train": "train", "validation": "val", "val": "val",
             "test": "test"}

# byte -> character class, for a vectorised scan of upper-cased sequences
_BASE, _N, _U, _AMBIGUOUS, _OTHER = 0, 1, 2, 3, 4
_CLASS = np.full(256, _OTHER, dtype=np.uint8)
for _char in ALPHABET:
    _CLASS[ord(_char)] = _BASE
_CLASS[ord("N")] = _N
_CLASS[ord("U")] = _U
for _char in IUPAC_AMBIGUITY:
    _CLASS[ord(_char)] = _AMBIGUOUS
# byte -> one-hot channel (0..3), 4 for N (all zeros), 255 for anything else
_INDEX = np.full(256, 255, dtype=np.uint8)
for _i, _char in enumerate(ALPHABET):
    _INDEX[ord(_char)] = _i
_INDEX[ord("N")] = 4


def _scan(text: str, locate: Callable[[int], str], u_policy: str, allow_n: bool
          ) -> tuple[str, dict[str, int]]:
    """Upper-case ``text``, convert or refuse U, refuse anything outside ACGT(N).

    ``locate(i)`` names the file, record or line and 1-based position of the 0-based index
    ``i`` for a message. Returns the cleaned text and counts of soft-masked (lower-case)
    letters, U converted and N.
    """
    allowed = "A, C, G, T" + (" and N" if allow_n else "")
    try:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError as err:
        raise MedgenInputError(
            f"{locate(err.start)} holds {text[err.start]!r}, not a DNA letter; only "
            f"{allowed} are read") from None
    is_lower = (raw >= ord("a")) & (raw <= ord("z"))
    upper = np.where(is_lower, raw - 32, raw).astype(np.uint8)
    classes = _CLASS[upper]
    bad = (classes == _AMBIGUOUS) | (classes == _OTHER)
    if not allow_n:
        bad |= classes == _N
    if u_policy == "refuse":
        bad |= classes == _U
    if bad.any():
        i = int(np.argmax(bad))
        char, kind = chr(upper[i]), classes[i]
        if kind == _AMBIGUOUS:
            raise MedgenInputError(
                f"{locate(i)} holds {text[i]!r}, an IUPAC ambiguity code "
                f"({IUPAC_AMBIGUITY[char]}); only {allowed} are read: resolve it or mask it "
                "as N")
        if kind == _U:
            raise MedgenInputError(
                f"{locate(i)} holds {text[i]!r}: RNA (U); DNA is expected: convert U to T "
                "(u_policy='convert') or give DNA")
        if kind == _N:  # only refused where N is not allowed: a measured sequence
            raise MedgenInputError(
                f"{locate(i)} holds {text[i]!r}: N (unknown base) is not allowed in a "
                "measurement table (a measurement belongs to known bases); only "
                f"{allowed} are read")
        raise MedgenInputError(
            f"{locate(i)} holds {text[i]!r}, not a DNA letter; only {allowed} are read")
    is_u = classes == _U
    if is_u.any():
        upper = np.where(is_u, ord("T"), upper).astype(np.uint8)
    counts = {"soft_masked": int(is_lower.sum()), "u_converted": int(is_u.sum()),
              "n": int((classes == _N).sum())}
    return upper.tobytes().decode("ascii"), counts


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MedgenInputError(f"{name} is {value!r}; expected one of: {', '.join(choices)}")


class _SpaceCounter:
    """A text handle for Biopython's FASTA parser that counts the spaces and tabs inside
    sequence lines, which the parser drops without a word (header lines are not counted)."""

    def __init__(self, handle):
        self.handle, self.spaces = handle, 0

    def _count(self, line: str) -> str:
        if line and line[0] != ">":
            self.spaces += line.count(" ", 0, len(line.rstrip())) + line.rstrip().count("\t")
        return line

    def read(self, size: int = -1) -> str:  # Biopython probes the mode with read(0)
        return self.handle.read(size)

    def readline(self) -> str:
        return self._count(self.handle.readline())

    def __iter__(self):
        return self

    def __next__(self) -> str:
        return self._count(next(self.handle))


def _check_file(path: Path, what: str) -> None:
    """MedgenInputError when ``path`` is a folder or does not exist (``what``: 'FASTA file')."""
    if path.is_dir():
        raise MedgenInputError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise MedgenInputError(f"{what} {path} does not exist")


def _open_text(path: Path):
    """A text handle on a plain or gzipped file (gzip recognised by its magic bytes)."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gzipped else open(path)  # noqa: SIM115 (caller closes)


def read_fasta_windows(
    path: str | Path,
    length: int,
    stride: int | None = None,
    n_policy: NPolicy = "drop",
    u_policy: UPolicy = "refuse",
    max_windows: int | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Cut every record of a FASTA (plain or gzipped) into windows of ``length`` bases.

    Read with Biopython ``SeqIO`` ("fasta"). Windows start at 0, ``stride``, 2 * ``stride``...
    of each record (non-overlapping by default); the tail shorter than ``length`` is left
    out. For ce2 chrX at ``length=50`` the windows are its 50-bp lines, the setting of
    Killoran et al. 2017 (human chromosome 1 there).

    Handling (each counted in the report and logged):

    - lower case (soft-masked repeats) is read as upper case;
    - ``N``: with ``n_policy='drop'`` windows holding any N are dropped (the paper dropped
      lines with N); with ``'keep'`` they are kept (one-hot all zeros at N);
    - RNA ``U``: refused (``u_policy='refuse'``) or read as T (``'convert'``);
    - IUPAC ambiguity codes other than N (R, Y, K, M, S, W, B, D, H, V) and any other
      character (digits, '-', '*', '.'): refused;
    - a record shorter than ``length`` is skipped;
    - spaces and tabs inside sequence lines (a GenBank-style layout in blocks of ten) are
      skipped by Biopython and counted (``whitespace_skipped``, a warning).

    Parameters
    ----------
    path
        FASTA file; ``.gz`` or not (recognised by content).
    length
        Window length in bases (>= 1).
    stride
        Step between window starts in bases; None: ``length`` (non-overlapping).
    n_policy
        'drop' or 'keep' windows holding N.
    u_policy
        'refuse' or 'convert' RNA U (to T).
    max_windows
        Stop after this many windows are kept (records after that are not read): a slice
        of a large genome. None: all.

    Returns
    -------
    windows : pandas.DataFrame
        One row per window: ``record`` (FASTA id), ``start`` (0-based offset of the window in
        its record), ``sequence`` (upper case, ``length`` letters).
    report : dict
        path, length, stride, n_policy, u_policy, records, records_too_short,
        windows_total (before the N policy), windows_with_n, windows_dropped_n, windows,
        soft_masked_bases, u_converted, whitespace_skipped, truncated (max_windows
        reached).

    Raises
    ------
    MedgenInputError
        A missing, empty or non-FASTA file or a folder (naming it); a character that is
        refused (naming file, record and 1-based position); no window left (every record
        too short, or every window with N dropped); bad ``length``, ``stride`` or policy
        values.
    """
    path = Path(path)
    for name, value in (("length", length), ("stride", stride), ("max_windows", max_windows)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise MedgenInputError(f"{name} is {value!r}; expected an integer >= 1")
    _check_choice("n_policy", n_policy, N_POLICIES)
    _check_choice("u_policy", u_policy, U_POLICIES)
    stride = stride or length
    _check_file(path, "FASTA file")

    report: dict[str, Any] = {
        "path": str(path), "length": length, "stride": stride, "n_policy": n_policy,
        "u_policy": u_policy, "records": 0, "records_too_short": 0, "windows_total": 0,
        "windows_with_n": 0, "windows_dropped_n": 0, "windows": 0, "soft_masked_bases": 0,
        "u_converted": 0, "whitespace_skipped": 0, "truncated": False,
    }
    records: list[str] = []
    starts: list[np.ndarray] = []
    sequences: list[str] = []
    try:
        with _open_text(path) as raw_handle:
            handle = _SpaceCounter(raw_handle)
            for record in SeqIO.parse(handle, "fasta"):
                report["records"] += 1
                where = f"FASTA {path}, record '{record.id}'"
                text, counts = _scan(
                    str(record.seq),
                    lambda i, where=where: f"{where}, position {i + 1:,} (1-based)",
                    u_policy, allow_n=True)
                report["soft_masked_bases"] += counts["soft_masked"]
                report["u_converted"] += counts["u_converted"]
                if len(text) < length:
                    report["records_too_short"] += 1
                    continue
                begin = np.arange(0, len(text) - length + 1, stride)
                report["windows_total"] += len(begin)
                if counts["n"]:
                    is_n = np.frombuffer(text.encode("ascii"), dtype=np.uint8) == ord("N")
                    cumulative = np.concatenate([[0], np.cumsum(is_n)])
                    with_n = cumulative[begin + length] - cumulative[begin] > 0
                    report["windows_with_n"] += int(with_n.sum())
                    if n_policy == "drop":
                        report["windows_dropped_n"] += int(with_n.sum())
                        begin = begin[~with_n]
                if max_windows is not None:
                    begin = begin[: max_windows - len(sequences)]
                records += [record.id] * len(begin)
                starts.append(begin)
                sequences += [text[s: s + length] for s in begin]
                if max_windows is not None and len(sequences) >= max_windows:
                    report["truncated"] = True
                    break
    except UnicodeDecodeError:
        raise MedgenInputError(f"{path} is not a FASTA file (not text)") from None
    except (EOFError, OSError) as err:  # a damaged or cut gzip file
        raise MedgenInputError(f"{path} could not be read: {err}") from None
    except ValueError as err:
        if isinstance(err, MedgenInputError):
            raise
        # Biopython: text before the first '>' (its long message is not repeated here)
        raise MedgenInputError(
            f"{path} is not a FASTA file: its first line does not start with a '>' header "
            "line (a table? give it as sequence_design.source: table)") from None
    report["whitespace_skipped"] = handle.spaces
    if report["records"] == 0:
        raise MedgenInputError(f"FASTA file {path} holds no records (empty, or no '>' header)")
    report["windows"] = len(sequences)
    _log_fasta_report(report)
    if not sequences:
        raise MedgenInputError(
            f"FASTA file {path}: no window of {length} bases is left "
            f"({report['records']} records, {report['records_too_short']} shorter than "
            f"{length}, {report['windows_dropped_n']} windows dropped for N)")
    windows = pd.DataFrame({
        "record": records,
        "start": np.concatenate(starts).astype(np.int64) if starts else np.array([], int),
        "sequence": sequences,
    })
    return windows, report


def _log_fasta_report(report: dict[str, Any]) -> None:
    path = report["path"]
    log.info("%s: %d records -> %d windows of %d bp (stride %d)%s", path, report["records"],
             report["windows"], report["length"], report["stride"],
             "; stopped at max_windows" if report["truncated"] else "")
    if report["soft_masked_bases"]:
        log.info("%s: %d soft-masked (lower-case) bases read as upper case", path,
                 report["soft_masked_bases"])
    if report["u_converted"]:
        log.warning("%s: %d RNA U read as T (u_policy='convert')", path, report["u_converted"])
    if report["whitespace_skipped"]:
        log.warning("%s: %d spaces or tabs inside sequence lines skipped", path,
                    report["whitespace_skipped"])
    if report["records_too_short"]:
        log.warning("%s: %d records shorter than %d bp skipped", path,
                    report["records_too_short"], report["length"])
    if report["windows_with_n"]:
        if report["n_policy"] == "drop":
            log.info("%s: %d of %d windows hold N and were dropped (n_policy='drop')", path,
                     report["windows_dropped_n"], report["windows_total"])
        else:
            log.warning("%s: %d of %d windows hold N and were kept (n_policy='keep'; "
                        "one-hot all zeros at N)", path, report["windows_with_n"],
                        report["windows_total"])


def _as_array(sequences: Iterable[str]) -> np.ndarray:
    """Equal-length sequences -> uint8 codes (N, L): 0..3 = ACGT, 4 = N."""
    sequences = list(sequences)
    if not sequences:
        return np.zeros((0, 0), dtype=np.uint8)
    length = len(sequences[0])
    lengths = {len(s) for s in sequences}
    if len(lengths) > 1:
        other = next(i for i, s in enumerate(sequences) if len(s) != length)
        raise MedgenInputError(
            f"sequences differ in length: sequence 1 has {length} bases, sequence "
            f"{other + 1} has {len(sequences[other])}; equal lengths are expected")
    try:
        raw = np.frombuffer("".join(sequences).upper().encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError as err:
        raise MedgenInputError(
            f"sequence {err.start // max(length, 1) + 1} holds a non-DNA character") from None
    codes = _INDEX[raw].reshape(len(sequences), length)
    if (codes == 255).any():
        row, col = (int(v[0]) for v in np.nonzero(codes == 255))
        raise MedgenInputError(
            f"sequence {row + 1}, position {col + 1} holds {sequences[row][col]!r}; "
            "expected A, C, G, T or N")
    return codes


def encode_integers(sequences: Sequence[str]) -> np.ndarray:
    """Equal-length sequences -> uint8 array (N, L): 0, 1, 2, 3 for A, C, G, T; 4 for N.

    Raises
    ------
    MedgenInputError
        Sequences of different lengths, or a character other than A, C, G, T, N (any case).
    """
    return _as_array(sequences)


def one_hot(sequences: Sequence[str]) -> np.ndarray:
    """Equal-length sequences -> float32 one-hot array (N, L, 4), channels A, C, G, T.

    N (any case) is all zeros. Raises MedgenInputError as :func:`encode_integers`.
    """
    codes = _as_array(sequences)
    table = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])
    return table[codes]


def decode(array: np.ndarray) -> list[str]:
    """One-hot or soft (probabilities, logits) array (N, L, 4) -> sequences by argmax.

    Positions whose four values are all zero decode to N (the inverse of :func:`one_hot`);
    ties go to the first base in A, C, G, T order.

    Raises
    ------
    MedgenInputError
        An array that is not 3-dimensional with 4 channels last.
    """
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[-1] != 4:
        raise MedgenInputError(f"expected an array of shape (N, L, 4); got {array.shape}")
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    index = np.where((array == 0).all(axis=-1), 4, array.argmax(axis=-1))
    chars = letters[index]
    length = array.shape[1]
    text = chars.tobytes().decode("ascii")
    return [text[i * length: (i + 1) * length] for i in range(array.shape[0])]


def reverse_complement(sequence: str) -> str:
    """The reverse complement of one DNA sequence (Biopython; N -> N, case kept)."""
    return _bio_reverse_complement(sequence)


def canonical(sequence: str) -> str:
    """A strand-free key: the smaller of a sequence and its reverse complement."""
    return min(sequence, reverse_complement(sequence))


def identity_split(
    sequences: Sequence[str],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> np.ndarray:
    """Split sequences into 'train', 'val', 'test' by sequence identity.

    A sequence and its reverse complement are one unit (key ``min(seq, revcomp(seq))``,
    upper case), and all copies of a unit go to one split, so no sequence nor its reverse
    complement is in two splits. The units (sorted, so the input order does not matter)
    are shuffled with ``seed`` and cut by ``fractions`` of units; with repeated sequences
    the fractions of sequences differ from them accordingly. Killoran et al. 2017 split
    their chromosome-1 lines 80/10/10.

    Parameters
    ----------
    sequences
        DNA strings (any length; case ignored).
    fractions
        (train, val, test), each >= 0, summing to 1; train > 0.
    seed
        Seed of the shuffle: the same sequences and seed give the same split.

    Returns
    -------
    numpy.ndarray
        Labels ('train', 'val', 'test'), one per sequence, in input order.

    Raises
    ------
    MedgenInputError
        Fractions that are not three non-negative numbers summing to 1 with train > 0.
    """
    fractions = tuple(float(f) for f in fractions)
    if (len(fractions) != 3 or min(fractions) < 0 or fractions[0] <= 0
            or abs(sum(fractions) - 1) > 1e-6):
        raise MedgenInputError(
            f"split fractions are {fractions}; expected (train, val, test), each >= 0, "
            "train > 0, summing to 1")
    keys = np.array([canonical(s.upper()) for s in sequences], dtype=object)
    labels = np.empty(len(keys), dtype=object)
    if not len(keys):
        return labels
    units, inverse = np.unique(keys, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(units))
    n_train = int(round(fractions[0] * len(units)))
    n_val = int(round(fractions[1] * len(units)))
    unit_label = np.empty(len(units), dtype=object)
    unit_label[order[:n_train]] = "train"
    unit_label[order[n_train: n_train + n_val]] = "val"
    unit_label[order[n_train + n_val:]] = "test"
    labels[:] = unit_label[inverse.ravel()]
    return labels


def check_strand_split(sequences: Sequence[str], split: Sequence[str], lines: Sequence[int],
                       what: str, examples: int = 3) -> None:
    """Refuse a given split (a table's own set column) that puts a sequence and its reverse
    complement (or the sequence itself) in two splits: the promise of
    :func:`identity_split`, which a model tested on the other strand of a training sequence
    would break.

    Parameters
    ----------
    sequences, split, lines
        One per row: the sequence, its split and its 1-based line in the file.
    what
        The file and column, for the message.

    Raises
    ------
    MedgenInputError
        Naming ``what``, how many sequences share a strand-free key with another split and
        the first ``examples`` such groups (lines and splits).
    """
    frame = pd.DataFrame({"key": [canonical(s.upper()) for s in sequences],
                          "split": np.asarray(split, dtype=str), "line": lines})
    crossing = frame.groupby("key", sort=False)["split"].transform("nunique") > 1
    if not crossing.any():
        return
    shown = [", ".join(f"line {line} ({name})" for line, name in
                       zip(group["line"], group["split"], strict=True))
             for _, group in list(frame[crossing].groupby("key", sort=False))[:examples]]
    raise MedgenInputError(
        f"{what}: {int(crossing.sum())} sequence(s) in another split than their reverse "
        f"complement or a copy (first: {'; '.join(shown)}); no sequence nor its reverse "
        "complement may be in two splits: give each such group one set")


def mean_bin(counts: pd.DataFrame | np.ndarray, bins: Sequence[float] | None = None
             ) -> np.ndarray:
    """Mean sort bin of each variant from its read counts per bin (sort-seq activity).

    ``sum_b b * count_b / sum_b count_b`` with bins numbered 0..B-1 (or ``bins``): MAVENN's
    sort-seq data (Kinney et al. 2010) count reads of each lac-promoter variant in 10
    fluorescence bins (``ct_0..ct_9``), and the activity is the mean bin.

    Parameters
    ----------
    counts
        (N, B) non-negative counts; a DataFrame's columns in bin order.
    bins
        The bin values (length B); None: 0, 1, ..., B-1.

    Returns
    -------
    numpy.ndarray
        (N,) float64 mean bins; NaN where a row has no reads.

    Raises
    ------
    MedgenInputError
        Negative or non-finite counts, or ``bins`` of another length than the columns.
    """
    values = np.asarray(counts, dtype=np.float64)
    if values.ndim != 2:
        raise MedgenInputError(f"counts must be a table (N, bins); got shape {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any():
        raise MedgenInputError("bin counts must be finite and non-negative")
    weights = np.arange(values.shape[1], dtype=np.float64) if bins is None else np.asarray(
        bins, dtype=np.float64)
    if weights.shape != (values.shape[1],):
        raise MedgenInputError(
            f"{len(weights)} bin values for {values.shape[1]} count columns")
    total = values.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, values @ weights / total, np.nan)


def count_columns_with_prefix(columns: Iterable[str], prefix: str) -> list[str]:
    """Columns named ``<prefix><integer>``, ordered by the integer (``ct_0``..``ct_9``)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)")
    found = [(int(m.group(1)), c) for c in columns if (m := pattern.fullmatch(str(c)))]
    return [c for _, c in sorted(found)]


def read_measurements(
    path: str | Path,
    sequence_column: str = "x",
    value_column: str | None = "y",
    *,
    count_prefix: str | None = None,
    length: int | None = None,
    length_from: str = "configured",
    set_column: str | None = "set",
    u_policy: UPolicy = "refuse",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a table of sequence -> measurement (CSV/TSV by extension, gzip ok; pandas).

    The measurement is ``value_column``, or, with ``count_prefix`` (e.g. ``'ct_'`` for
    MAVENN's sort-seq file), the mean sort bin (:func:`mean_bin`) of the count columns
    ``<prefix>0``, ``<prefix>1``, ... .

    Handling (counted in the report and logged):

    - sequences are read upper case; RNA U refused or read as T (``u_policy``; MAVENN's MPSA
      splice sites are written in RNA letters);
    - a measurement that is missing (NaN, or a row with no reads) drops its row; an
      infinite one is refused;
    - duplicate sequences: equal measurements keep one row; different ones are averaged
      (count columns: the reads are pooled, then the mean bin taken, which weights each
      row by its reads), with the number merged and the largest spread (max - min) logged
      as a warning; repeats in different sets are refused (a sequence in two splits);
    - the ``set_column`` (if the file has it) is read as the split: 'training' -> 'train',
      'validation' -> 'val', 'test' -> 'test'.

    Parameters
    ----------
    path
        The table; ',' for ``.csv``, tab otherwise (``.tsv``, ``.txt``).
    sequence_column, value_column
        Column names.
    count_prefix
        Prefix of bin-count columns; then ``value_column`` must be None.
    length
        Required sequence length; None: the most frequent length in the file.
    length_from
        Where ``length`` comes from, for the refusal ("configured"; apply: the model).
    set_column
        Name of a train/validation/test column, used when present; None: ignore.
    u_policy
        'refuse' or 'convert' RNA U (to T).

    Returns
    -------
    table : pandas.DataFrame
        One row per distinct sequence: ``sequence``, ``value`` (float64), ``n_rows`` (rows
        merged into it), ``line`` (1-based file line of its first row, header = line 1) and
        ``set`` when the file has a set column.
    report : dict
        path, rows, length, value (what the value is), dropped_missing, duplicates_equal,
        duplicates_averaged, largest_spread, soft_masked (lower-case letters), u_converted,
        sets (counts per split, or None).

    Raises
    ------
    MedgenInputError
        A missing or unreadable file or a folder; a missing column (naming the available
        ones); a sequence of another length (naming its line and length); a character
        outside ACGT, N included (naming line and 1-based position); a measurement that is
        not a number or infinite (naming line and value); an unknown set name; a sequence
        repeated in different sets (naming its lines and sets); no rows left.
    """
    path = Path(path)
    _check_choice("u_policy", u_policy, U_POLICIES)
    if (value_column is None) == (count_prefix is None):
        raise MedgenInputError(
            "give either value_column (a measurement column) or count_prefix (bin counts)")
    _check_file(path, "measurement table")
    try:
        frame = pd.read_csv(path, sep=separator(path), dtype={sequence_column: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            EOFError) as err:
        raise MedgenInputError(f"{path} could not be read as a table: {err}") from None
    available = ", ".join(map(str, frame.columns)) or "(none)"
    if count_prefix is not None:
        value_columns = count_columns_with_prefix(frame.columns, count_prefix)
        if not value_columns:
            raise MedgenInputError(
                f"{path}: no count columns named '{count_prefix}<bin>'; columns: {available}")
        what = f"mean bin of {', '.join(value_columns)}"
    else:
        value_columns = [value_column]
        what = f"column '{value_column}'"
    for column in [sequence_column, *value_columns]:
        if column not in frame.columns:
            raise MedgenInputError(
                f"{path}: no column '{column}'; columns: {available}")
    lines = np.arange(len(frame)) + 2  # 1-based, the header is line 1

    # sequences: present, one alphabet, one length
    missing = frame[sequence_column].isna().to_numpy()
    if missing.any():
        raise MedgenInputError(
            f"{path}, line {lines[np.argmax(missing)]}: column '{sequence_column}' is empty "
            f"({int(missing.sum())} rows); every row needs a sequence")
    raw = frame[sequence_column].astype(str).str.strip().to_numpy()
    lengths = np.fromiter((len(s) for s in raw), dtype=np.int64, count=len(raw))
    if len(raw) == 0:
        raise MedgenInputError(f"{path} holds no rows")
    expected = length if length is not None else int(np.bincount(lengths).argmax())
    other = lengths != expected
    if other.any():
        i = int(np.argmax(other))
        source = length_from if length is not None else "most frequent in the file"
        raise MedgenInputError(
            f"{path}, line {lines[i]}: sequence of length {lengths[i]}; expected {expected} "
            f"({source}); {int(other.sum())} rows differ")
    # one scan of all sequences joined: positions map back to (row, column)
    text, counts = _scan(
        "".join(raw),
        lambda i: f"{path}, line {lines[i // expected]}, position {i % expected + 1} (1-based)",
        u_policy, allow_n=False)
    sequences = [text[i * expected: (i + 1) * expected] for i in range(len(raw))]

    if count_prefix is not None:
        counts_table = frame[value_columns].apply(pd.to_numeric, errors="coerce")
        _check_numeric(frame[value_columns], counts_table, path, lines)
        values = mean_bin(counts_table.fillna(0).to_numpy())
    else:
        numeric = pd.to_numeric(frame[value_column], errors="coerce")
        _check_numeric(frame[[value_column]], numeric.to_frame(), path, lines)
        values = numeric.to_numpy(dtype=np.float64)
    table = pd.DataFrame({"sequence": sequences, "value": values, "line": lines})
    if count_prefix is not None:
        table[value_columns] = frame[value_columns].to_numpy(dtype=np.float64)
    has_set = set_column is not None and set_column in frame.columns
    if has_set:
        names = frame[set_column].astype(str).str.strip().str.lower()
        unknown = ~names.isin(list(SET_NAMES))
        if unknown.any():
            i = int(np.argmax(unknown.to_numpy()))
            raise MedgenInputError(
                f"{path}, line {lines[i]}: column '{set_column}' is "
                f"{frame[set_column].iloc[i]!r}; expected one of: "
                + ", ".join(sorted(set(SET_NAMES))))
        table["set"] = names.map(SET_NAMES).to_numpy()

    nan = ~np.isfinite(table["value"].to_numpy())
    report: dict[str, Any] = {
        "path": str(path), "rows": int(len(frame)), "length": expected, "value": what,
        "dropped_missing": int(nan.sum()), "soft_masked": counts["soft_masked"],
        "u_converted": counts["u_converted"],
        # where to look: the first few lines of each kind (the log names them)
        "dropped_missing_lines": [int(v) for v in table["line"].to_numpy()[nan][:5]],
    }
    table = table[~nan]
    if table.empty:
        raise MedgenInputError(f"{path}: every measurement ({what}) is missing")
    if has_set:
        _refuse_set_conflicts(table, path, set_column)
    table, merged = _merge_duplicates(table, value_columns if count_prefix else None)
    report.update(merged)
    report["sets"] = table["set"].value_counts().to_dict() if has_set else None
    _log_measurement_report(report, table)
    return table.reset_index(drop=True), report


def _check_numeric(original: pd.DataFrame, parsed: pd.DataFrame, path: Path,
                   lines: np.ndarray) -> None:
    """MedgenInputError naming line, column and value for a cell that is not a number or is
    infinite (an empty cell or NaN is a missing measurement, dropped by the caller)."""
    bad = (parsed.isna() & original.notna()).to_numpy()
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise MedgenInputError(
            f"{path}, line {lines[row]}: column '{original.columns[col]}' is "
            f"{original.iloc[row, col]!r}; expected a number")
    infinite = np.isinf(parsed.to_numpy(dtype=np.float64))
    if infinite.any():
        row, col = (int(v[0]) for v in np.nonzero(infinite))
        raise MedgenInputError(
            f"{path}, line {lines[row]}: column '{original.columns[col]}' is "
            f"{str(original.iloc[row, col])!r}; expected a finite number (infinite values: "
            f"{int(infinite.sum())})")


def _refuse_set_conflicts(table: pd.DataFrame, path: Path, set_column: str) -> None:
    """MedgenInputError naming the lines and sets of the first sequence repeated in
    different sets, and how many are: merged, it would be in two splits."""
    sets = table.groupby("sequence", sort=False)["set"]
    conflicting = sets.nunique() > 1
    if not conflicting.any():
        return
    first = table[table["sequence"] == conflicting.idxmax()]
    where = ", ".join(f"line {line}: {name}" for line, name in zip(first["line"], first["set"],
                                                                     strict=True))
    raise MedgenInputError(
        f"{path}: sequence {first['sequence'].iloc[0]} is repeated in different sets of "
        f"column '{set_column}' ({where}); {int(conflicting.sum())} sequences are; a "
        "sequence must be in one split: give its rows one set")


def _merge_duplicates(table: pd.DataFrame, count_columns: list[str] | None
                      ) -> tuple[pd.DataFrame, dict[str, Any]]:
    duplicated = table["sequence"].duplicated(keep=False).to_numpy()
    summary: dict[str, Any] = {"duplicates_equal": 0, "duplicates_averaged": 0,
                               "largest_spread": 0.0, "averaged_first_lines": []}
    if not duplicated.any():
        return table.assign(n_rows=1), summary
    groups = table.groupby("sequence", sort=False)
    spread = groups["value"].agg(lambda v: float(v.max() - v.min()))
    first = groups.first()
    merged = first.assign(n_rows=groups.size())
    if count_columns:
        pooled = groups[count_columns].sum()
        merged[count_columns] = pooled
        merged["value"] = mean_bin(pooled.to_numpy())
    else:
        merged["value"] = groups["value"].mean()
    repeated = merged["n_rows"] > 1
    summary["duplicates_equal"] = int((repeated & (spread == 0)).sum())
    summary["duplicates_averaged"] = int((repeated & (spread > 0)).sum())
    summary["largest_spread"] = float(spread.max())
    averaged = repeated & (spread > 0)
    if averaged.any():
        first_seq = averaged.idxmax()
        summary["averaged_first_lines"] = [
            int(v) for v in table.loc[table["sequence"] == first_seq, "line"]]
    merged = merged.reset_index()
    return merged, summary


def _log_measurement_report(report: dict[str, Any], table: pd.DataFrame) -> None:
    path = report["path"]
    log.info("%s: %d rows -> %d sequences of %d bp; measurement: %s", path, report["rows"],
             len(table), report["length"], report["value"])
    if report["soft_masked"]:
        log.info("%s: %d lower-case letters read as upper case", path, report["soft_masked"])
    if report["u_converted"]:
        log.warning("%s: %d RNA U read as T (u_policy='convert')", path, report["u_converted"])
    if report["dropped_missing"]:
        log.warning("%s: %d rows without a measurement (NaN or no reads) dropped (first: "
                    "lines %s)", path, report["dropped_missing"],
                    ", ".join(map(str, report["dropped_missing_lines"])))
    if report["duplicates_equal"]:
        log.info("%s: %d sequences repeated with equal measurements: one row kept each",
                 path, report["duplicates_equal"])
    if report["duplicates_averaged"]:
        log.warning("%s: %d sequences repeated with different measurements: averaged "
                    "(largest spread %.4g; the first on lines %s)", path,
                    report["duplicates_averaged"], report["largest_spread"],
                    ", ".join(map(str, report["averaged_first_lines"])))
