"""Generation metrics: generated DNA against held-out real DNA (numpy, scipy, Biopython).

The setting is Killoran et al. 2017 (a WGAN-GP generating 50-bp windows of a chromosome);
the metrics are those the field uses to compare generators with their baselines (i.i.d.
bases, Markov chains): k-mer spectra (Jensen-Shannon distance, k = 1..6), the GC-content
distribution, dinucleotide relative abundance (Karlin's genomic signature), homopolymer run
lengths, JASPAR motif hit rates (a hit: a PSSM score that 0.1% of positions of shuffled
training windows reach) and the nearest-neighbour Hamming distance to the training set
(memorisation).

Strands: k-mer spectra, dinucleotide abundances and motif scans count both strands (a
window's reverse complement is the same DNA; the strand of a genomic window is arbitrary);
GC content and homopolymer runs are the same on both strands. The nearest-neighbour
distance takes the smaller over the query and its reverse complement.

All functions take lists of DNA strings of one length within a set (any case; N allowed
where stated) and raise MedgenInputError for empty sets, unequal lengths or other letters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from Bio import motifs as bio_motifs
from Bio.motifs import jaspar
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from medgen.data.sequence import ALPHABET, encode_integers, one_hot
from medgen.errors import MedgenInputError
from medgen.tasks.sequence_design.baselines import kmer_indices

log = logging.getLogger(__name__)

KMER_SIZES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
FPR = 1e-3  # motif hit: a score reached by 0.1% of positions of shuffled training windows
MAX_NULL_SEQUENCES = 2000  # shuffled windows setting the thresholds (180k positions at 50 bp)
# float32 sums of one PSSM differ by ~1e-6 between BLAS blockings: scores this close are equal
SCORE_TOLERANCE = 1e-4  # bits
NN_CHUNK_ELEMENTS = 2 ** 24  # float32 cells of one query x reference block (64 MiB)


def _codes(sequences: Sequence[str], what: str) -> np.ndarray:
    codes = encode_integers(sequences)
    if codes.shape[0] == 0:
        raise MedgenInputError(f"{what}: no sequences")
    return codes


def _reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Integer codes of the reverse complements (A<->T, C<->G; N stays N)."""
    flipped = codes[:, ::-1]
    return np.where(flipped < 4, 3 - flipped, flipped).astype(np.uint8)


# --- k-mer spectra ---------------------------------------------------------------------

def kmer_counts(sequences: Sequence[str], k: int, both_strands: bool = True) -> np.ndarray:
    """Counts of every k-mer (4**k, base-4 order A < C < G < T, first base most significant).

    k-mers holding N are not counted. With ``both_strands`` the reverse complements are
    counted too (so a k-mer and its reverse complement get equal counts).

    Parameters
    ----------
    sequences
        N equal-length DNA strings, length >= k.
    k
        k-mer length (>= 1).

    Returns
    -------
    numpy.ndarray
        int64 (4**k,).
    """
    codes = _codes(sequences, "k-mer counts")
    strands = [codes, _reverse_complement_codes(codes)] if both_strands else [codes]
    total = np.zeros(4 ** k, dtype=np.int64)
    for strand in strands:
        index, valid = kmer_indices(strand, k)
        total += np.bincount(index[valid], minlength=4 ** k)
    return total


def kmer_js_distance(a: Sequence[str], b: Sequence[str], k: int,
                     both_strands: bool = True) -> float:
    """Jensen-Shannon distance between the k-mer spectra of two sets of sequences.

    ``scipy.spatial.distance.jensenshannon`` of the k-mer frequencies, base 2: 0 for equal
    spectra, 1 for disjoint ones (the square root of the JS divergence in bits). The sets
    may differ in size and length.

    Raises
    ------
    MedgenInputError
        An empty set, k larger than a set's sequence length, or a set with no k-mer
        free of N.
    """
    p = kmer_counts(a, k, both_strands).astype(np.float64)
    q = kmer_counts(b, k, both_strands).astype(np.float64)
    if p.sum() == 0 or q.sum() == 0:
        raise MedgenInputError(f"no {k}-mer without N in one of the sets")
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def kmer_js_distances(a: Sequence[str], b: Sequence[str],
                      ks: Sequence[int] = KMER_SIZES, both_strands: bool = True
                      ) -> dict[int, float]:
    """:func:`kmer_js_distance` for each k (default 1..6): {k: distance in [0, 1]}."""
    return {k: kmer_js_distance(a, b, k, both_strands) for k in ks}


# --- GC content, dinucleotides, homopolymers -------------------------------------------

def gc_content(sequences: Sequence[str]) -> np.ndarray:
    """Fraction of G and C among the A/C/G/T bases of each sequence (N left out).

    Returns float64 (N,) in [0, 1]; NaN for a sequence of N only.
    """
    codes = _codes(sequences, "GC content")
    acgt = (codes < 4).sum(axis=1)
    gc = ((codes == 1) | (codes == 2)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(acgt > 0, gc / acgt, np.nan)


def gc_distance(generated: Sequence[str], real: Sequence[str]) -> dict[str, float]:
    """GC-content distributions compared: the Wasserstein-1 distance between per-sequence
    GC fractions (``scipy.stats.wasserstein_distance``; units: GC fraction) and both means.

    Returns {'gc_wasserstein', 'gc_mean_generated', 'gc_mean_real'}.
    """
    g, r = gc_content(generated), gc_content(real)
    g, r = g[np.isfinite(g)], r[np.isfinite(r)]
    if not len(g) or not len(r):
        raise MedgenInputError("GC content: a set holds no A/C/G/T base")
    return {"gc_wasserstein": float(wasserstein_distance(g, r)),
            "gc_mean_generated": float(g.mean()), "gc_mean_real": float(r.mean())}


def dinucleotide_abundance(sequences: Sequence[str]) -> pd.Series:
    """Karlin's dinucleotide relative abundance ``rho*_XY = f*_XY / (f*_X f*_Y)``.

    Frequencies ``f*`` count both strands (the symmetrised genomic signature); 1 means a
    dinucleotide is as frequent as its bases predict (CpG is about 0.2-0.4 in vertebrate
    DNA). Returns a Series of 16 values indexed 'AA', 'AC', ... 'TT'.
    """
    mono = kmer_counts(sequences, 1).astype(np.float64)
    di = kmer_counts(sequences, 2).astype(np.float64)
    f1, f2 = mono / mono.sum(), di / di.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = f2 / np.outer(f1, f1).ravel()
    names = [x + y for x in ALPHABET for y in ALPHABET]
    return pd.Series(rho, index=names, name="rho")


def dinucleotide_distance(generated: Sequence[str], real: Sequence[str]) -> float:
    """Karlin's delta*: mean over the 16 dinucleotides of ``|rho*_gen - rho*_real|``.

    0 for equal signatures; unitless (a difference of abundance ratios). Dinucleotides
    absent from a set (ratio NaN) are left out of the mean.
    """
    diff = (dinucleotide_abundance(generated) - dinucleotide_abundance(real)).abs()
    return float(diff.mean(skipna=True))


def homopolymer_runs(sequences: Sequence[str]) -> np.ndarray:
    """Lengths of all maximal runs of one base (A, C, G or T; runs of N left out).

    Returns int64 (total runs,) over all sequences; a sequence of L bases contributes runs
    summing to L minus its N.
    """
    codes = _codes(sequences, "homopolymer runs").astype(np.int16)
    n, length = codes.shape
    # a run starts where the base changes or a sequence starts; pad with a sentinel
    padded = np.full((n, length + 1), -1, dtype=np.int16)
    padded[:, :length] = codes
    flat = padded.ravel()
    starts = np.flatnonzero(np.concatenate([[True], flat[1:] != flat[:-1]]))
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    base = flat[starts]
    return lengths[(base >= 0) & (base < 4)].astype(np.int64)


def homopolymer_stats(generated: Sequence[str], real: Sequence[str]) -> dict[str, float]:
    """Homopolymer run-length distributions compared.

    Returns {'homopolymer_wasserstein' (bases, between the run-length distributions),
    'homopolymer_mean_generated', 'homopolymer_mean_real' (mean run length, bases),
    'longest_run_mean_generated', 'longest_run_mean_real' (mean longest run per sequence)}.
    """
    g, r = homopolymer_runs(generated), homopolymer_runs(real)
    return {
        "homopolymer_wasserstein": float(wasserstein_distance(g, r)),
        "homopolymer_mean_generated": float(g.mean()),
        "homopolymer_mean_real": float(r.mean()),
        "longest_run_mean_generated": float(_longest_runs(generated).mean()),
        "longest_run_mean_real": float(_longest_runs(real).mean()),
    }


def _longest_runs(sequences: Sequence[str]) -> np.ndarray:
    codes = _codes(sequences, "homopolymer runs")
    n, length = codes.shape
    run = np.zeros(n, dtype=np.int64)
    longest = np.zeros(n, dtype=np.int64)
    for j in range(length):
        same = (codes[:, j] < 4) & (codes[:, j] == codes[:, j - 1]) if j else np.zeros(n, bool)
        run = np.where(codes[:, j] < 4, np.where(same, run + 1, 1), 0)
        longest = np.maximum(longest, run)
    return longest


# --- JASPAR motif hit rates ------------------------------------------------------------

@dataclass(frozen=True)
class MotifScorer:
    """A JASPAR motif as a log-odds PSSM and its hit threshold.

    Attributes
    ----------
    matrix_id, name
        JASPAR ID (e.g. 'MA0058.4') and factor name ('MAX').
    pssm
        float64 (4, w): log2-odds of A, C, G, T per position against the background.
    threshold
        Score of a hit (log2-odds, bits): reached by at most a fraction ``fpr`` of the
        positions (either strand) of shuffled sequences; inf: never (a motif too short to
        be that specific, or longer than the sequences).
    null_rate
        The fraction of shuffled positions that reach ``threshold`` (<= fpr).
    """

    matrix_id: str
    name: str
    pssm: np.ndarray
    threshold: float
    null_rate: float

    @property
    def width(self) -> int:
        return self.pssm.shape[1]


def background(sequences: Sequence[str]) -> dict[str, float]:
    """Base composition (both strands, so A = T and C = G) of the training sequences."""
    counts = kmer_counts(sequences, 1).astype(np.float64)
    return dict(zip(ALPHABET, counts / counts.sum(), strict=True))


def read_jaspar(path: str | Path, ids: Sequence[str] | None = None) -> list:
    """Read a JASPAR-format matrix file with Biopython (``Bio.motifs.parse(..., 'jaspar')``).

    ``ids`` keeps only matrices whose ID (with or without its version: 'MA0058' or
    'MA0058.4') is listed, in the file's order.

    Raises
    ------
    MedgenInputError
        A missing or unreadable file, no matrices, or an ID in ``ids`` that is not there.
    """
    path = Path(path)
    if not path.is_file():
        raise MedgenInputError(f"JASPAR file {path} does not exist")
    try:
        with open(path) as handle:
            found = list(bio_motifs.parse(handle, "jaspar"))
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as err:
        raise MedgenInputError(f"{path} could not be read as JASPAR matrices: {err}") from None
    if not found:
        raise MedgenInputError(f"{path} holds no JASPAR matrices")
    if ids is None:
        return found
    wanted = set(ids)
    kept = [m for m in found if m.matrix_id in wanted or m.matrix_id.split(".")[0] in wanted]
    seen = {m.matrix_id for m in kept} | {m.matrix_id.split(".")[0] for m in kept}
    missing = [i for i in ids if i not in seen]
    if missing:
        raise MedgenInputError(f"{path}: no matrix {', '.join(missing)}")
    return kept


def shuffle_sequences(sequences: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Each sequence with its bases permuted (keeps its composition, breaks its motifs)."""
    codes = _codes(sequences, "shuffle")
    order = np.argsort(rng.random(codes.shape), axis=1)
    shuffled = np.take_along_axis(codes, order, axis=1)
    text = np.frombuffer(b"ACGTN", dtype=np.uint8)[shuffled].tobytes().decode("ascii")
    length = codes.shape[1]
    return [text[i * length: (i + 1) * length] for i in range(len(codes))]


def motif_scorers(
    motif_list: Sequence, null_sequences: Sequence[str], fpr: float = FPR, seed: int = 0,
    max_null: int = MAX_NULL_SEQUENCES,
) -> list[MotifScorer]:
    """Log-odds PSSMs of JASPAR motifs with per-motif hit thresholds at a false-positive rate.

    1. Background: the base composition of ``null_sequences`` (the training windows, both
       strands; :func:`background`).
    2. PSSM: Biopython's log2-odds against it, with JASPAR's pseudocounts
       (``Bio.motifs.jaspar.calculate_pseudocounts``: sqrt(sites) spread by the background),
       so small matrices give no infinite scores.
    3. Threshold: the score that a fraction ``fpr`` of positions (both strands) of shuffled
       ``null_sequences`` (each permuted, :func:`shuffle_sequences`; at most ``max_null``,
       drawn with ``seed``) reach: a hit is as rare as ``fpr`` per position in sequences of
       the training composition without their order. The same cut then means the same
       thing for short and long motifs, unlike a relative score cutoff (0.8 of a PSSM's
       range hits most 50-bp windows for 5-bp motifs).

    Parameters
    ----------
    motif_list
        Biopython motifs (:func:`read_jaspar`).
    null_sequences
        Equal-length DNA (the training windows).
    fpr
        False-positive rate per position and strand (0 < fpr < 1).

    Raises
    ------
    MedgenInputError
        ``fpr`` out of range, no motif, or too few null positions for ``fpr`` (fewer than
        10 expected exceedances).
    """
    if not 0 < fpr < 1:
        raise MedgenInputError(f"motif fpr is {fpr}; expected 0 < fpr < 1")
    if not len(motif_list):
        raise MedgenInputError("no motifs to score")
    composition = background(null_sequences)
    rng = np.random.default_rng(seed)
    null = list(null_sequences)
    if len(null) > max_null:
        null = [null[i] for i in np.sort(rng.choice(len(null), max_null, replace=False))]
    null = shuffle_sequences(null, rng)
    scorers = []
    for motif in motif_list:
        motif.background = dict(composition)
        motif.pseudocounts = jaspar.calculate_pseudocounts(motif)
        pssm = motif.pssm
        matrix = np.array([pssm[base] for base in ALPHABET], dtype=np.float64)
        scorers.append(MotifScorer(motif.matrix_id, motif.name, matrix, np.nan, np.nan))
    onehot = one_hot(null).transpose(0, 2, 1)
    length = onehot.shape[2]
    thresholds = np.full(len(scorers), np.inf)  # a motif longer than the windows never hits
    null_rates = np.zeros(len(scorers))
    for width, members, weights in _width_groups(scorers, length):
        positions = 2 * len(null) * (length - width + 1)
        keep = int(np.ceil(fpr * positions))
        if fpr * positions < 10:
            raise MedgenInputError(
                f"motif fpr {fpr} needs at least {int(np.ceil(10 / fpr)):,} null positions; "
                f"{positions:,} are there ({len(null)} sequences): give more null sequences "
                "or a larger fpr")
        top = np.full((0, len(members)), -np.inf, dtype=np.float32)
        for scores in _chunk_scores(onehot, width, weights):
            both = np.concatenate([top, scores.reshape(-1, len(members))])
            top = np.partition(both, len(both) - keep - 1, axis=0)[len(both) - keep - 1:]
        # the smallest score above the (keep+1)-th largest: at most `keep` null positions
        # reach it, ties included (short motifs have few distinct scores)
        floor = top.min(axis=0)
        thresholds[members] = np.where(top > floor + SCORE_TOLERANCE, top, np.inf).min(axis=0)
        null_rates[members] = (
            top >= thresholds[members] - SCORE_TOLERANCE).sum(axis=0) / positions
    never = np.isinf(thresholds)
    if never.any():
        log.info("%d of %d motifs reach their best score in more than %g of shuffled "
                 "positions (too short to be specific): they never hit", int(never.sum()),
                 len(scorers), fpr)
    return [MotifScorer(s.matrix_id, s.name, s.pssm, float(t), float(r))
            for s, t, r in zip(scorers, thresholds, null_rates, strict=True)]


def _width_groups(scorers: Sequence[MotifScorer], length: int):
    """(width, member indices, stacked weights (4w, 2m): forward then reverse strand) for
    each motif width that fits in ``length``."""
    by_width: dict[int, list[int]] = {}
    for j, scorer in enumerate(scorers):
        by_width.setdefault(scorer.width, []).append(j)
    for width, members in by_width.items():
        if width > length:
            continue
        forward = np.stack([scorers[j].pssm for j in members])  # (m, 4, w)
        reverse = forward[:, ::-1, ::-1]  # complement (ACGT reversed) and reverse positions
        weights = np.concatenate([forward, reverse]).reshape(2 * len(members), 4 * width)
        yield width, members, weights.T.astype(np.float32)


def _chunk_scores(onehot: np.ndarray, width: int, weights: np.ndarray, chunk: int = 1000):
    """Scores (c, positions, 2 strands, m) of chunks of one-hot sequences (N, 4, L)."""
    for lo in range(0, onehot.shape[0], chunk):
        windows = np.lib.stride_tricks.sliding_window_view(
            onehot[lo: lo + chunk], width, axis=2)  # (c, 4, P, w)
        c, _, positions, _ = windows.shape
        flat = windows.transpose(0, 2, 1, 3).reshape(c * positions, 4 * width)
        yield (flat @ weights).reshape(c, positions, 2, -1)


def best_motif_scores(sequences: Sequence[str], scorers: Sequence[MotifScorer]) -> np.ndarray:
    """Best PSSM score of each motif in each sequence, over positions and both strands.

    Scores are sums of log2-odds over the motif's width (a position with N adds 0);
    motifs longer than the sequences get -inf. Motifs of one width are scored together as
    a matrix product of the sliding one-hot windows and the stacked PSSMs.

    Returns
    -------
    numpy.ndarray
        float64 (N sequences, M motifs), bits.
    """
    onehot = one_hot(sequences).transpose(0, 2, 1)  # (N, 4, L)
    best = np.full((onehot.shape[0], len(scorers)), -np.inf)
    for width, members, weights in _width_groups(scorers, onehot.shape[2]):
        rows = [scores.max(axis=(1, 2)) for scores in _chunk_scores(onehot, width, weights)]
        best[:, members] = np.concatenate(rows)
    return best


def motif_hit_rates(sequences: Sequence[str], scorers: Sequence[MotifScorer]) -> pd.DataFrame:
    """Per motif, the fraction of sequences with at least one hit (either strand).

    Returns a table: matrix_id, name, hit_rate (in [0, 1]).
    """
    thresholds = np.array([s.threshold for s in scorers]) - SCORE_TOLERANCE
    hits = best_motif_scores(sequences, scorers) >= thresholds
    return pd.DataFrame({"matrix_id": [s.matrix_id for s in scorers],
                         "name": [s.name for s in scorers], "hit_rate": hits.mean(axis=0)})


def compare_motif_hit_rates(
    generated: Sequence[str], real: Sequence[str], scorers: Sequence[MotifScorer],
    top: int | None = 20,
) -> pd.DataFrame:
    """Motif hit rates of generated vs real sequences, for the ``top`` motifs most often hit
    in the real ones (None: all).

    Returns a table sorted by the real hit rate: matrix_id, name, real, generated,
    difference (generated - real). Its mean absolute difference is one summary number.
    """
    real_rates = motif_hit_rates(real, scorers)
    order = real_rates.sort_values(["hit_rate", "matrix_id"], ascending=[False, True]).index
    chosen = list(order if top is None else order[:top])
    kept = [scorers[i] for i in chosen]
    generated_rates = motif_hit_rates(generated, kept)
    table = real_rates.loc[chosen, ["matrix_id", "name"]].reset_index(drop=True)
    table["real"] = real_rates.loc[chosen, "hit_rate"].to_numpy()
    table["generated"] = generated_rates["hit_rate"].to_numpy()
    table["difference"] = table["generated"] - table["real"]
    return table


# --- memorisation ----------------------------------------------------------------------

def nearest_neighbour_hamming(
    query: Sequence[str], reference: Sequence[str], both_strands: bool = True,
    max_block: int = NN_CHUNK_ELEMENTS,
) -> np.ndarray:
    """Hamming distance of each query sequence to its nearest reference sequence.

    Hamming distance (mismatching positions) is the edit distance of equal-length sequences
    without insertions or deletions; 0 means the query copies a training window. With
    ``both_strands`` the query's reverse complement is compared too and the smaller
    distance kept. N never matches (not even N). Computed as ``L - matches``, the matches
    a product of one-hot matrices, in blocks of at most ``max_block`` query x reference
    cells: 1,000 queries against 100,000 windows of 50 bp take about 1.5 s on 2 cores and
    about 150 MiB (the references' one-hot, 80 MB, and one 64 MiB block).

    Parameters
    ----------
    query, reference
        Sequences of one length L.

    Returns
    -------
    numpy.ndarray
        int64 (N query,), in bases (0..L).

    Raises
    ------
    MedgenInputError
        Empty sets or sequences of different lengths.
    """
    q = one_hot(query)
    r = one_hot(reference)
    if not len(q) or not len(r):
        raise MedgenInputError("nearest-neighbour distance: a set is empty")
    length = q.shape[1]
    if r.shape[1] != length:
        raise MedgenInputError(
            f"nearest-neighbour Hamming distance needs equal lengths: queries of {length}, "
            f"references of {r.shape[1]} bases")
    strands = [q.reshape(len(q), -1)]
    if both_strands:
        strands.append(q[:, ::-1, ::-1].reshape(len(q), -1))  # reverse complement
    refs = r.reshape(len(r), -1)
    best = np.zeros(len(q), dtype=np.float32)
    q_block = max(1, min(len(q), max_block // min(len(r), max_block)))
    r_block = max(1, max_block // q_block)
    for qs in range(0, len(q), q_block):
        for strand in strands:
            block = strand[qs: qs + q_block]
            for rs in range(0, len(r), r_block):
                matches = block @ refs[rs: rs + r_block].T  # exact in float32 (<= 4L)
                best[qs: qs + q_block] = np.maximum(best[qs: qs + q_block],
                                                    matches.max(axis=1))
    return (length - np.rint(best)).astype(np.int64)
