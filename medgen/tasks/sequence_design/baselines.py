"""Generation baselines: i.i.d. bases and k-th order Markov chains, fitted on training windows.

A k-th order Markov chain (k = 1..5) is the classic strong baseline for DNA generation: it
reproduces the (k+1)-mer spectrum of its training data by construction, so a generative
model (the WGAN-GP of Killoran et al. 2017) has to beat it on what a chain cannot carry
(longer motifs, two-sample tests). The i.i.d. baseline draws each base from the training
composition: a chain of order 0.

Fitting counts (k+1)-mers on the given strand of each window (k-mers holding N are left
out) and adds a pseudocount to every transition; sampling draws the first k bases from the
training k-mer frequencies and each further base from the chain, vectorised over sequences
with a numpy Generator the caller seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medgen.data.sequence import ALPHABET, encode_integers
from medgen.errors import MedgenInputError

MAX_ORDER = 5
MARKOV_ORDERS: tuple[int, ...] = tuple(range(1, MAX_ORDER + 1))
# per transition: unseen contexts fall back towards uniform; seen ones barely move
PSEUDOCOUNT = 0.5


def kmer_indices(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Base-4 index of every k-mer of integer-coded sequences (0..3 = ACGT, 4 = N).

    Parameters
    ----------
    codes
        uint8 array (N, L) from :func:`medgen.data.sequence.encode_integers`.
    k
        k-mer length, 1 <= k <= L.

    Returns
    -------
    index : numpy.ndarray
        int64 (N, L - k + 1): ``sum_j codes[:, p + j] * 4 ** (k - 1 - j)`` (A = 0 ... T = 3,
        first base most significant, so ``AC`` = 1, ``CA`` = 4).
    valid : numpy.ndarray
        bool (N, L - k + 1): False where the k-mer holds N.
    """
    n, length = codes.shape
    if not 1 <= k <= length:
        raise MedgenInputError(f"k is {k}; expected 1 <= k <= sequence length {length}")
    positions = length - k + 1
    index = np.zeros((n, positions), dtype=np.int64)
    valid = np.ones((n, positions), dtype=bool)
    for j in range(k):
        part = codes[:, j: j + positions]
        valid &= part < 4
        index = index * 4 + np.minimum(part, 3)
    return index, valid


class MarkovChain:
    """A k-th order Markov chain over A, C, G, T (order 0: i.i.d. bases).

    Parameters
    ----------
    order
        Context length k (0..5).
    pseudocount
        Added to every (context, next base) count before normalising (> 0).

    Attributes (after :meth:`fit`)
    ------------------------------
    transitions
        (4**k, 4) float64: P(next base | context), the context as a base-4 index.
    initial
        (4**k,) float64: frequency of each k-mer in the training windows (with the
        pseudocount), from which the first k bases are drawn.
    """

    def __init__(self, order: int, pseudocount: float = PSEUDOCOUNT) -> None:
        if not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
            raise MedgenInputError(f"Markov order is {order!r}; expected 0..{MAX_ORDER}")
        if not pseudocount > 0:
            raise MedgenInputError(f"pseudocount is {pseudocount}; expected > 0")
        self.order = order
        self.pseudocount = float(pseudocount)
        self.transitions: np.ndarray | None = None
        self.initial: np.ndarray | None = None

    @property
    def name(self) -> str:
        return "iid" if self.order == 0 else f"markov{self.order}"

    def fit(self, sequences: Sequence[str]) -> MarkovChain:
        """Count (k+1)-mers of the training windows (equal length > k; N-holding k-mers
        skipped). Raises MedgenInputError for no usable windows or bad characters."""
        codes = encode_integers(sequences)
        k = self.order
        if codes.shape[0] == 0 or codes.shape[1] <= k:
            raise MedgenInputError(
                f"a Markov chain of order {k} needs windows longer than {k} bases; got "
                f"{codes.shape[0]} windows of {codes.shape[1] if codes.size else 0}")
        index, valid = kmer_indices(codes, k + 1)
        counts = np.bincount(index[valid], minlength=4 ** (k + 1)).astype(np.float64)
        if counts.sum() == 0:
            raise MedgenInputError("no (k+1)-mer without N in the training windows")
        counts = counts.reshape(4 ** k, 4) + self.pseudocount
        self.transitions = counts / counts.sum(axis=1, keepdims=True)
        if k == 0:
            self.initial = np.ones(1)
        else:
            index, valid = kmer_indices(codes, k)
            start = np.bincount(index[valid], minlength=4 ** k) + self.pseudocount
            self.initial = start / start.sum()
        return self

    def sample(self, n: int, length: int, rng: np.random.Generator) -> list[str]:
        """Draw ``n`` sequences of ``length`` bases (the caller's seeded Generator).

        Raises
        ------
        RuntimeError
            If the chain is not fitted.
        MedgenInputError
            ``length`` < 1 or ``n`` < 0.
        """
        if self.transitions is None or self.initial is None:
            raise RuntimeError(f"{self.name} is not fitted")
        if length < 1 or n < 0:
            raise MedgenInputError(f"cannot sample {n} sequences of length {length}")
        k = self.order
        out = np.empty((n, length), dtype=np.uint8)
        head = min(k, length)
        if k:
            first = _draw(np.broadcast_to(np.cumsum(self.initial), (n, 4 ** k)), rng)
            for j in range(head):  # the k-mer's bases, most significant first
                out[:, j] = (first // 4 ** (k - 1 - j)) % 4
        cumulative = np.cumsum(self.transitions, axis=1)
        context = first if k else np.zeros(n, dtype=np.int64)
        for j in range(head, length):
            base = _draw(cumulative[context], rng)
            out[:, j] = base
            context = (context * 4 + base) % (4 ** k) if k else context
        letters = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)[out]
        text = letters.tobytes().decode("ascii")
        return [text[i * length: (i + 1) * length] for i in range(n)]


def _draw(cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of cumulative probabilities (n, m) -> int64 (n,)."""
    u = rng.random(cumulative.shape[0]) * cumulative[:, -1]
    return np.minimum((u[:, None] >= cumulative).sum(axis=1), cumulative.shape[1] - 1)


def fit_baselines(
    train: Sequence[str], orders: Sequence[int] = MARKOV_ORDERS,
    pseudocount: float = PSEUDOCOUNT,
) -> dict[str, MarkovChain]:
    """The i.i.d. baseline ('iid') and one Markov chain per order ('markov1'..'markov5'),
    fitted on the training windows."""
    chains = [MarkovChain(0, pseudocount)] + [MarkovChain(k, pseudocount) for k in orders]
    return {chain.name: chain.fit(train) for chain in chains}
