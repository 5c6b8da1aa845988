"""Simple generators of tabular data (samples x features, e.g. expression profiles in the
data's units): the references a generative model's synthetic samples are measured beside
(issue 31 item 5).

Each is fitted on the TRAINING split only and samples with a seed, per category when
labels are given (one model per category; ``sample`` draws the categories in the counts
asked, e.g. ``{"BRCA tumour": 300, "PRAD normal": 100}``):

- :class:`GaussianGenerator`: a multivariate Gaussian per category. ``covariance="low_rank"``
  (default): the category's ``rank`` leading principal axes (``sklearn`` PCA) carry the
  shared structure, W = sqrt(eigenvalue) x axis, and a diagonal residual variance psi per
  feature keeps every feature's variance exact (psi_j = var_j - sum_k W_kj^2, floored at
  0), so x = mean + W'z + sqrt(psi) e: probabilistic PCA with a per-feature noise as in
  factor analysis, but in closed form (factor analysis iterates an SVD per EM step);
  ``covariance="full"``: the sample covariance plus a ridge (``ridge`` times the mean
  feature variance on the diagonal), drawn as mean + Xc'z / sqrt(n - 1) + sqrt(ridge) e
  from the centred training rows Xc, which is exact and never forms the features x
  features matrix. Both work with more features than samples.
- :class:`PCAGaussianGenerator`: a PCA fitted on all training rows (one basis), a full
  Gaussian on each category's component scores, back-projected. It keeps only the
  variance of the ``n_components`` leading components (no residual noise).
- :class:`NoisyResampleGenerator`: training records of the category drawn with
  replacement, plus Gaussian noise of ``noise`` times each feature's training sd: close
  to a copy of the training data (the privacy-worst, fidelity-best reference).

``lower`` (all three): samples below it are set to it, e.g. 0 for counts per million or
log1p values, which a Gaussian would otherwise make negative.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

UNCONDITIONAL = "all"  # the one category of a generator fitted without labels
DEFAULT_RANK = 10  # factors of the low-rank Gaussian: the leading structure, few parameters
DEFAULT_RIDGE = 1e-3  # of the mean feature variance: makes a singular covariance proper
DEFAULT_COMPONENTS = 10
DEFAULT_NOISE = 0.1  # of each feature's training sd


def check_matrix(x: object, name: str) -> np.ndarray:
    """``x`` as a float64 (n, p) array with n, p >= 1 and only finite values.

    Raises
    ------
    MedgenInputError
        Not 2-D, empty, not numeric, or holding NaN or infinite values (named by ``name``).
    """
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise MedgenInputError(f"{name}: expected a numeric samples x features matrix") from None
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise MedgenInputError(f"{name} has shape {array.shape}; expected a samples x features "
                               "matrix with at least one of each")
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise MedgenInputError(f"{name} holds {int(bad.sum())} NaN or infinite value(s), e.g. "
                               f"sample {row}, feature {col}; expected finite numbers")
    return array


def check_labels(labels: object, n: int, name: str) -> np.ndarray:
    """``labels`` as an object array of n category names (text).

    Raises
    ------
    MedgenInputError
        Not n labels, or a missing label (None, NaN or empty).
    """
    values = np.asarray(labels, dtype=object)
    if values.ndim != 1 or len(values) != n:
        raise MedgenInputError(f"{name}: {values.shape} labels for {n} samples; expected one "
                               "label per sample")
    missing = [i for i, v in enumerate(values)
               if v is None or (not isinstance(v, str) and pd.isna(v)) or str(v) == ""]
    if missing:
        raise MedgenInputError(f"{name}: {len(missing)} sample(s) without a label, e.g. sample "
                               f"{missing[0]}; expected a category name for every sample")
    return np.array([str(v) for v in values], dtype=object)


class TabularGenerator:
    """What every baseline shares: ``fit(X, labels=None) -> self`` and
    ``sample(n or {category: count}, seed) -> (X, labels)``.

    Subclasses implement ``_fit_category(x) -> state`` and ``_sample_category(state, n,
    rng) -> (n, p) array`` and set ``min_samples``.
    """

    name = "generator"
    min_samples = 1  # training samples a category needs

    def __init__(self, lower: float | None = None) -> None:
        self.lower = lower
        self.categories_: dict[str, int] | None = None  # category -> training samples
        self.conditional_ = False
        self.n_features_ = 0
        self._states: dict[str, object] = {}

    # --- the interface ---

    def fit(self, x: object, labels: object | None = None) -> TabularGenerator:
        """Fit on training data.

        Parameters
        ----------
        x
            (n, p) training samples in the data's units (never held-out data).
        labels
            n category names, or None: one model of all samples (category ``'all'``).

        Raises
        ------
        MedgenInputError
            NaN/inf or a malformed matrix, labels that do not match, or a category with
            fewer than ``min_samples`` training samples.
        """
        x = check_matrix(x, f"{self.name} training data")
        self.conditional_ = labels is not None
        y = (check_labels(labels, len(x), f"{self.name} training labels") if self.conditional_
             else np.full(len(x), UNCONDITIONAL, dtype=object))
        names, counts = np.unique(y.astype(str), return_counts=True)
        small = {str(c): int(k) for c, k in zip(names, counts) if k < self.min_samples}
        if small:
            raise MedgenInputError(
                f"{self.name}: categories with too few training samples {small}; each needs "
                f"at least {self.min_samples} (drop or merge them)")
        self.n_features_ = x.shape[1]
        # one BLAS thread: the decompositions' last digits (and the samples drawn from them)
        # then do not depend on how many threads the job or the caller was given
        with threadpool_limits(limits=1):
            self._prepare(x)
            self._states = {str(c): self._fit_category(x[y == c]) for c in names}
        self.categories_ = {str(c): int(k) for c, k in zip(names, counts)}
        log.info("%s fitted on %d samples x %d features, %d categor%s", self.name, len(x),
                 x.shape[1], len(names), "y" if len(names) == 1 else "ies")
        return self

    def sample(self, n: int | Mapping[str, int], seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw synthetic samples.

        Parameters
        ----------
        n
            The number of samples; a conditional generator splits it over the categories
            in their training proportions (largest remainders). Or, for a conditional
            generator, {category: count} (drawn in the order given).
        seed
            Seeds a ``numpy.random.Generator``: the same seed gives the same samples.

        Returns
        -------
        x : (sum of counts, p) float64 array in the training data's units.
        labels : object array of category names, or None for a generator fitted without
            labels.

        Raises
        ------
        MedgenInputError
            Not fitted, a count <= 0, an empty request, a category never seen in ``fit``,
            or per-category counts for a generator fitted without labels.
        """
        counts = self._request(n)
        rng = np.random.default_rng(seed)
        with threadpool_limits(limits=1):  # as in fit: the same samples on any thread count
            parts = [self._sample_category(self._states[c], k, rng)
                     for c, k in counts.items()]
        x = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if self.lower is not None:
            np.maximum(x, self.lower, out=x)
        if not self.conditional_:
            return x, None
        return x, np.repeat(np.array(list(counts), dtype=object), list(counts.values()))

    # --- helpers ---

    def _request(self, n: int | Mapping[str, int]) -> dict[str, int]:
        if self.categories_ is None:
            raise MedgenInputError(f"{self.name}: sample() before fit(); fit it on training "
                                   "data first")
        if isinstance(n, Mapping):
            if not self.conditional_:
                raise MedgenInputError(f"{self.name} was fitted without labels; ask for a "
                                       "number of samples, not counts per category")
            if not n:
                raise MedgenInputError(f"{self.name}: an empty request; expected "
                                       "{category: count} with at least one category")
            unknown = [c for c in n if str(c) not in self.categories_]
            if unknown:
                raise MedgenInputError(f"{self.name}: categories {unknown} were never seen in "
                                       f"fit; known: {sorted(self.categories_)}")
            counts = {str(c): _count(k, f"count of {c!r}") for c, k in n.items()}
            return counts
        total = _count(n, "number of samples")
        names = list(self.categories_)
        share = np.array([self.categories_[c] for c in names], dtype=np.float64)
        exact = total * share / share.sum()
        counts = np.floor(exact).astype(int)
        # largest remainders take the rest (ties: the first category), so the sum is n
        for i in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
            counts[i] += 1
        return {c: int(k) for c, k in zip(names, counts) if k > 0}

    def _prepare(self, x: np.ndarray) -> None:
        """Whatever all categories share (a PCA basis, feature sds); none by default."""

    def _fit_category(self, x: np.ndarray) -> object:
        raise NotImplementedError

    def _sample_category(self, state: object, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise MedgenInputError(f"{name} is {value!r}; expected a whole number > 0")
    return int(value)


class GaussianGenerator(TabularGenerator):
    """A multivariate Gaussian per category (see the module docstring).

    Parameters
    ----------
    covariance
        'low_rank': ``rank`` principal axes plus a diagonal residual variance per feature
        (a category needs ``rank + 1`` training samples); 'full': the sample
        covariance plus ``ridge`` x the mean feature variance on the diagonal (2 samples).
    rank
        Factors of the low-rank covariance (at most the number of features).
    ridge
        Relative ridge of the full covariance (>= 0).
    lower
        Samples below it are set to it (None: no floor).
    """

    name = "gaussian"

    def __init__(self, covariance: Literal["low_rank", "full"] = "low_rank",
                 rank: int = DEFAULT_RANK, ridge: float = DEFAULT_RIDGE,
                 lower: float | None = None) -> None:
        super().__init__(lower)
        if covariance not in ("low_rank", "full"):
            raise MedgenInputError(f"gaussian covariance {covariance!r}; expected 'low_rank' "
                                   "or 'full'")
        if covariance == "low_rank":
            _count(rank, "gaussian rank")
        if not ridge >= 0:
            raise MedgenInputError(f"gaussian ridge {ridge!r}; expected a number >= 0")
        self.covariance, self.rank, self.ridge = covariance, rank, float(ridge)
        self.min_samples = rank + 1 if covariance == "low_rank" else 2

    def _prepare(self, x: np.ndarray) -> None:
        if self.covariance == "low_rank" and self.rank > x.shape[1]:
            raise MedgenInputError(f"gaussian rank {self.rank} exceeds the {x.shape[1]} "
                                   "features; expected rank <= features")

    def _fit_category(self, x: np.ndarray) -> object:
        mean = x.mean(axis=0)
        if self.covariance == "full":
            centred = (x - mean) / np.sqrt(len(x) - 1)
            ridge = self.ridge * float((centred ** 2).sum(axis=0).mean())
            return mean, centred, np.sqrt(ridge)
        # closed form, one SVD (factor analysis iterates an SVD per EM step: minutes for
        # thousands of genes); full solver: deterministic, no random_state to carry
        pca = PCA(n_components=self.rank, svd_solver="full").fit(x)
        loadings = np.sqrt(pca.explained_variance_)[:, None] * pca.components_
        residual = x.var(axis=0, ddof=1) - (loadings ** 2).sum(axis=0)
        return mean, loadings, np.sqrt(np.maximum(residual, 0.0))

    def _sample_category(self, state: object, n: int, rng: np.random.Generator) -> np.ndarray:
        mean, loadings, noise_sd = state
        z = rng.standard_normal((n, loadings.shape[0]))
        return mean + z @ loadings + rng.standard_normal((n, len(mean))) * noise_sd


class PCAGaussianGenerator(TabularGenerator):
    """A Gaussian on PCA scores per category, back-projected (see the module docstring).

    Parameters
    ----------
    n_components
        Components of the PCA fitted on all training samples (at most min(samples,
        features)); a category needs 2 training samples.
    lower
        Samples below it are set to it (None: no floor).
    """

    name = "pca_gaussian"
    min_samples = 2

    def __init__(self, n_components: int = DEFAULT_COMPONENTS,
                 lower: float | None = None) -> None:
        super().__init__(lower)
        self.n_components = _count(n_components, "pca_gaussian n_components")
        self.pca_: PCA | None = None

    def _prepare(self, x: np.ndarray) -> None:
        if self.n_components > min(x.shape):
            raise MedgenInputError(
                f"pca_gaussian n_components {self.n_components} exceeds min(samples, "
                f"features) = {min(x.shape)} of the training data")
        self.pca_ = PCA(n_components=self.n_components, svd_solver="full").fit(x)

    def _fit_category(self, x: np.ndarray) -> object:
        scores = self.pca_.transform(x)
        return scores.mean(axis=0), np.atleast_2d(np.cov(scores, rowvar=False))

    def _sample_category(self, state: object, n: int, rng: np.random.Generator) -> np.ndarray:
        mean, cov = state
        # eigh: a category with fewer samples than components has a singular covariance
        scores = rng.multivariate_normal(mean, cov, size=n, method="eigh")
        return self.pca_.inverse_transform(scores)


class NoisyResampleGenerator(TabularGenerator):
    """Training records drawn with replacement plus Gaussian noise (see the module docstring).

    Parameters
    ----------
    noise
        Noise sd as a fraction of each feature's sd over all training samples (>= 0; 0:
        exact copies).
    lower
        Samples below it are set to it (None: no floor).
    """

    name = "noisy_resample"
    min_samples = 1

    def __init__(self, noise: float = DEFAULT_NOISE, lower: float | None = None) -> None:
        super().__init__(lower)
        if not noise >= 0:
            raise MedgenInputError(f"noisy_resample noise {noise!r}; expected a number >= 0")
        self.noise = float(noise)
        self.sd_: np.ndarray | None = None

    def _prepare(self, x: np.ndarray) -> None:
        self.sd_ = x.std(axis=0)

    def _fit_category(self, x: np.ndarray) -> object:
        return x.copy()  # the caller's array is never aliased

    def _sample_category(self, state: object, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = state[rng.integers(0, len(state), size=n)]
        return rows + rng.standard_normal(rows.shape) * (self.noise * self.sd_)
