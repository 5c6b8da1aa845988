"""Fidelity, diversity, utility and privacy of synthetic tabular data (samples x features,
e.g. expression profiles in the data's units) against REAL HELD-OUT data (issue 31 items
2-4). Every function takes arrays and is deterministic given its seed; the entry point
:func:`evaluate_synthetic` runs them all and returns tidy rows.

The spaces the metrics use (in :func:`evaluate_synthetic`):

- features, in the data's units: per-feature Wasserstein / KS distances, the
  correlation-matrix difference (over the top-variance TRAINING features) and the privacy
  distances (distance to the closest record, membership inference);
- a fixed embedding, a PCA fitted on the TRAINING data only (:func:`fit_embedding`), in
  which held-out and synthetic samples are compared: MMD, precision / recall / density /
  coverage, the classifier two-sample test and the classifiers of the category check and
  the utility scores (a few dozen dimensions keep them fast and stable with many genes):
  a k-NN classifier for the two-sample test (it sees differences of variance, which a
  linear one cannot), logistic regression for the labels.

Distances between sets are computed in row chunks of at most ``CHUNK_BYTES``, so
thousands x thousands of samples stay in bounded memory. The ``prdc`` package is not
installed in the project's environment; precision / recall / density / coverage follow
Naeem et al. 2020 with scikit-learn's nearest neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.base import TransformerMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from medgen.errors import MedgenInputError
from medgen.evaluate.synthetic_baselines import check_labels, check_matrix

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 2**20  # one block of pairwise distances at most
WHOLE = "all"  # the category of a metric over all samples
DEFAULT_EMBEDDING_COMPONENTS = 50
DEFAULT_TOP_FEATURES = 500  # correlation matrices of at most 500 x 500 features
DEFAULT_K = 5  # Naeem et al. 2020's default neighbourhood
MEDIAN_HEURISTIC_POINTS = 1000  # pooled points the MMD bandwidth's median is taken over
C2ST_FOLDS = 5
C2ST_MAX_PER_CLASS = 2000
DCR_QUANTILE = 0.05  # synthetic samples closer to training than 5% of held-out records
ROW_COLUMNS = ("method", "category", "metric", "value")


def _rows(a: np.ndarray, b: np.ndarray) -> Iterator[slice]:
    """Row slices of ``a`` whose distance blocks to all of ``b`` fit ``CHUNK_BYTES``."""
    step = max(1, CHUNK_BYTES // (8 * max(1, len(b))))
    for start in range(0, len(a), step):
        yield slice(start, start + step)


def _same_features(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise MedgenInputError(f"{name_b} has {b.shape[1]} features and {name_a} "
                               f"{a.shape[1]}; expected the same features in the same order")


def _at_least(x: np.ndarray, n: int, name: str, why: str) -> None:
    if len(x) < n:
        raise MedgenInputError(f"{name} has {len(x)} samples; {why} needs at least {n}")


# --- per-feature distributions and correlations ------------------------------------------

def feature_distances(real: object, synthetic: object) -> pd.DataFrame:
    """Per-feature 1-D distances between real held-out and synthetic samples.

    Parameters
    ----------
    real, synthetic
        (n, p) and (m, p) samples in the data's units (n, m >= 1).

    Returns
    -------
    DataFrame, one row per feature (column order): ``wasserstein``, the 1-D Wasserstein-1
    distance (``scipy.stats.wasserstein_distance``, in the data's units; 0 best) and
    ``ks``, the two-sample Kolmogorov-Smirnov statistic (``scipy.stats.ks_2samp``, the
    largest gap of the two empirical CDFs, 0..1; 0 best). The means over features are
    the summaries synthcity and SDMetrics report.

    Raises
    ------
    MedgenInputError
        NaN, empty inputs or different numbers of features.
    """
    real = check_matrix(real, "real samples")
    synthetic = check_matrix(synthetic, "synthetic samples")
    _same_features("real samples", real, "synthetic samples", synthetic)
    w = np.array([wasserstein_distance(real[:, j], synthetic[:, j])
                  for j in range(real.shape[1])])
    # asymp: the statistic is the same; only the p-value (unused) would differ
    ks = np.atleast_1d(ks_2samp(real, synthetic, axis=0, method="asymp").statistic)
    return pd.DataFrame({"wasserstein": w, "ks": ks})


def top_variance_features(train: object, n: int = DEFAULT_TOP_FEATURES) -> np.ndarray:
    """Indices of the ``n`` features of highest variance in the TRAINING data (all if
    fewer), in their original order.

    Raises
    ------
    MedgenInputError
        A malformed ``train`` or n <= 0.
    """
    train = check_matrix(train, "training data")
    if n <= 0:
        raise MedgenInputError(f"top features {n}; expected a number > 0")
    if n >= train.shape[1]:
        return np.arange(train.shape[1])
    return np.sort(np.argsort(-train.var(axis=0), kind="stable")[:n])


def _correlation(x: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns; pairs with a constant column get 0 (undefined:
    counting them as uncorrelated rather than dropping the feature from one side only)."""
    centred = x - x.mean(axis=0)
    norm = np.sqrt((centred ** 2).sum(axis=0))
    constant = norm <= 1e-12 * max(1.0, float(norm.max()))
    norm[constant] = 1.0
    unit = centred / norm
    corr = unit.T @ unit
    corr[constant, :] = 0.0
    corr[:, constant] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def correlation_difference(real: object, synthetic: object,
                           features: Sequence[int] | np.ndarray | None = None
                           ) -> dict[str, float]:
    """How far the feature-feature correlations of synthetic samples are from real ones.

    Parameters
    ----------
    real, synthetic
        (n, p) and (m, p) samples in the data's units (n, m >= 2).
    features
        Feature indices to compare (e.g. :func:`top_variance_features` of the training
        data: a p x p matrix of 20 000 genes does not fit); None: all.

    Returns
    -------
    {'corr_frobenius': ||C_real - C_synthetic||_F over the selected features,
     'corr_mean_abs': the mean |difference| over feature pairs i < j}; Pearson
    correlations, 0 best (the "pairwise correlation difference" of synthcity; a constant
    feature counts as uncorrelated with every other).

    Raises
    ------
    MedgenInputError
        Fewer than 2 samples or 2 features, different features, indices out of range.
    """
    real = check_matrix(real, "real samples")
    synthetic = check_matrix(synthetic, "synthetic samples")
    _same_features("real samples", real, "synthetic samples", synthetic)
    if features is not None:
        index = np.asarray(features, dtype=np.int64)
        if index.ndim != 1 or index.size < 2 or index.min() < 0 or \
                index.max() >= real.shape[1]:
            raise MedgenInputError(f"correlation features {index[:5]}...: expected >= 2 "
                                   f"indices in 0..{real.shape[1] - 1}")
        real, synthetic = real[:, index], synthetic[:, index]
    if real.shape[1] < 2:
        raise MedgenInputError("correlation difference needs at least 2 features")
    _at_least(real, 2, "real samples", "a correlation")
    _at_least(synthetic, 2, "synthetic samples", "a correlation")
    diff = _correlation(real) - _correlation(synthetic)
    upper = np.triu_indices(diff.shape[0], k=1)
    return {"corr_frobenius": float(np.linalg.norm(diff)),
            "corr_mean_abs": float(np.abs(diff[upper]).mean())}


# --- the fixed embedding, MMD and precision / recall / density / coverage ----------------

def fit_embedding(train: object, n_components: int = DEFAULT_EMBEDDING_COMPONENTS,
                  scale: bool = False) -> TransformerMixin:
    """The fixed embedding: a PCA fitted on the TRAINING data only (never on held-out or
    synthetic samples, so that every method is measured in the same space).

    Parameters
    ----------
    train
        (n, p) training samples in the data's units.
    n_components
        Components; at most min(n, p) are kept (logged when fewer).
    scale
        Standardise each feature with the training mean and sd first (each gene then
        weighs the same; False: high-variance genes dominate, as in the data's units).

    Returns
    -------
    A fitted scikit-learn transformer: ``.transform((k, p)) -> (k, n_components)``.

    Raises
    ------
    MedgenInputError
        A malformed ``train`` or n_components <= 0.
    """
    train = check_matrix(train, "training data")
    if n_components <= 0:
        raise MedgenInputError(f"embedding components {n_components}; expected a number > 0")
    kept = min(n_components, *train.shape)
    if kept < n_components:
        log.info("embedding: %d PCA components (asked %d; the training data hold %d samples "
                 "x %d features)", kept, n_components, *train.shape)
    # full SVD: deterministic
    pca = PCA(n_components=kept, svd_solver="full")
    model = make_pipeline(StandardScaler(), pca) if scale else pca
    return model.fit(train)


def _embedded(embedding: TransformerMixin | None, x: np.ndarray) -> np.ndarray:
    return x if embedding is None else np.asarray(embedding.transform(x), dtype=np.float64)


def median_heuristic(a: np.ndarray, b: np.ndarray, seed: int = 0,
                     max_points: int = MEDIAN_HEURISTIC_POINTS) -> float:
    """The median Euclidean distance between distinct points of a and b pooled (at most
    ``max_points``, drawn with ``seed``): the RBF bandwidth of Gretton et al. 2012. 1.0
    when every point coincides."""
    pooled = np.concatenate([a, b])
    if len(pooled) > max_points:
        pooled = pooled[np.random.default_rng(seed).choice(len(pooled), max_points,
                                                           replace=False)]
    d = euclidean_distances(pooled)
    median = float(np.median(d[np.triu_indices(len(pooled), k=1)]))
    return median if median > 0 else 1.0


def _rbf_sum(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    total = 0.0
    for rows in _rows(a, b):
        total += float(np.exp(-gamma * euclidean_distances(a[rows], b, squared=True)).sum())
    return total


def mmd_rbf(real: object, synthetic: object, bandwidth: float | None = None,
            seed: int = 0) -> dict[str, float]:
    """Maximum mean discrepancy with an RBF kernel (Gretton et al. 2012, "A kernel
    two-sample test", JMLR 13).

    Parameters
    ----------
    real, synthetic
        (n, d) and (m, d) samples, usually in the fixed embedding (n, m >= 2).
    bandwidth
        sigma of k(x, y) = exp(-||x - y||^2 / (2 sigma^2)); None: the median heuristic
        (:func:`median_heuristic` of the pooled samples, seeded).

    Returns
    -------
    {'mmd2': the unbiased estimate of MMD^2 (0 best; may be slightly negative when the
    two sets come from one distribution), 'mmd_bandwidth': sigma}.

    Raises
    ------
    MedgenInputError
        Fewer than 2 samples in a set, different dimensions, bandwidth <= 0.
    """
    real = check_matrix(real, "real samples")
    synthetic = check_matrix(synthetic, "synthetic samples")
    _same_features("real samples", real, "synthetic samples", synthetic)
    _at_least(real, 2, "real samples", "MMD")
    _at_least(synthetic, 2, "synthetic samples", "MMD")
    sigma = median_heuristic(real, synthetic, seed) if bandwidth is None else bandwidth
    if not sigma > 0:
        raise MedgenInputError(f"MMD bandwidth {bandwidth!r}; expected a number > 0")
    gamma = 1.0 / (2.0 * sigma ** 2)
    n, m = len(real), len(synthetic)
    # the diagonals (k(x, x) = 1) are left out of the within-set sums: unbiased
    kxx = (_rbf_sum(real, real, gamma) - n) / (n * (n - 1))
    kyy = (_rbf_sum(synthetic, synthetic, gamma) - m) / (m * (m - 1))
    kxy = _rbf_sum(real, synthetic, gamma) / (n * m)
    return {"mmd2": float(kxx + kyy - 2 * kxy), "mmd_bandwidth": float(sigma)}


def _kth_neighbour_radius(x: np.ndarray, k: int) -> np.ndarray:
    # k + 1: each point is its own nearest neighbour
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return distances[:, -1]


def precision_recall_density_coverage(real: object, synthetic: object,
                                      k: int = DEFAULT_K) -> dict[str, float]:
    """Precision, recall, density and coverage of Naeem et al. 2020 ("Reliable fidelity
    and diversity metrics for generative models", ICML), with k-nearest-neighbour balls
    (``sklearn.neighbors.NearestNeighbors``, Euclidean).

    With r_i the distance of real sample X_i to its k-th nearest real neighbour and s_j
    that of synthetic sample Y_j among the synthetic ones:

    - precision = share of Y_j inside some ball B(X_i, r_i) (fidelity; 1 best),
    - recall = share of X_i inside some ball B(Y_j, s_j) (diversity; 1 best),
    - density = mean over Y_j of the number of real balls holding it, divided by k
      (about 1 when the sets share a distribution; > 1: crowding where real data are
      dense),
    - coverage = share of X_i whose ball holds some Y_j (diversity; 1 best).

    Parameters
    ----------
    real, synthetic
        (n, d) and (m, d), usually real held-out and synthetic samples in the fixed
        embedding; each needs at least k + 1 samples.
    k
        Neighbours (5, the paper's default).

    Raises
    ------
    MedgenInputError
        Too few samples, different dimensions, k <= 0.
    """
    real = check_matrix(real, "real samples")
    synthetic = check_matrix(synthetic, "synthetic samples")
    _same_features("real samples", real, "synthetic samples", synthetic)
    if k <= 0:
        raise MedgenInputError(f"k is {k}; expected a number > 0")
    _at_least(real, k + 1, "real samples", f"precision/recall with k = {k}")
    _at_least(synthetic, k + 1, "synthetic samples", f"precision/recall with k = {k}")
    real_radius = _kth_neighbour_radius(real, k)
    synthetic_radius = _kth_neighbour_radius(synthetic, k)
    in_real_balls = np.zeros(len(synthetic), dtype=np.int64)  # per synthetic sample
    recalled = np.zeros(len(real), dtype=bool)  # per real sample
    nearest = np.full(len(real), np.inf)  # per real sample: closest synthetic sample
    for rows in _rows(synthetic, real):
        d = euclidean_distances(synthetic[rows], real)  # (chunk, n)
        in_real_balls[rows] = (d <= real_radius[None, :]).sum(axis=1)
        recalled |= (d <= synthetic_radius[rows, None]).any(axis=0)
        nearest = np.minimum(nearest, d.min(axis=0))
    return {"precision": float((in_real_balls > 0).mean()),
            "recall": float(recalled.mean()),
            "density": float(in_real_balls.mean() / k),
            "coverage": float((nearest <= real_radius).mean())}


# --- classifiers: two-sample test, category check, utility -------------------------------

Classifier = Literal["knn", "logistic"]
CLASSIFIERS = ("knn", "logistic")
KNN_NEIGHBOURS = 15


def make_classifier(kind: Classifier = "logistic", seed: int = 0,
                    n_fit: int | None = None) -> Pipeline:
    """The classifiers of this module, seeded: 'logistic' (standardised features, L2
    logistic regression, lbfgs) or 'knn' (``KNN_NEIGHBOURS`` neighbours, at most
    ``n_fit``, the samples it will be fitted on; Euclidean in the space given, unscaled:
    in the embedding the leading components weigh most, as in PRDC). No gradient
    boosting: scikit-learn's runs OpenMP threads that crawl on a shared, busy node
    (seconds to minutes per fit in this project's CI), and a k-NN test separated the
    variance and mean shifts of the tests as well.

    Raises
    ------
    MedgenInputError
        An unknown kind.
    """
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000,
                                                                  random_state=seed))
    if kind == "knn":
        k = KNN_NEIGHBOURS if n_fit is None else max(1, min(KNN_NEIGHBOURS, n_fit))
        return make_pipeline(KNeighborsClassifier(n_neighbors=k))
    raise MedgenInputError(f"classifier {kind!r}; expected one of {CLASSIFIERS}")


def classifier_two_sample_auroc(real: object, synthetic: object, seed: int = 0,
                                classifier: Classifier = "knn",
                                folds: int = C2ST_FOLDS,
                                max_per_class: int = C2ST_MAX_PER_CLASS) -> float:
    """Classifier two-sample test (Lopez-Paz & Oquab 2017, "Revisiting classifier
    two-sample tests", ICLR): the out-of-fold AUROC of a classifier telling real from
    synthetic samples.

    Both sets are cut to the same size (the smaller one's, at most ``max_per_class``,
    drawn with ``seed``) so that chance is 0.5; stratified ``folds``-fold CV (shuffled
    with ``seed``); every sample is scored once by the model that did not see it, and one
    AUROC (``sklearn.metrics.roc_auc_score``) is taken over all of them.

    Parameters
    ----------
    real, synthetic
        (n, d) and (m, d) samples, usually in the fixed embedding.
    classifier
        'knn' (default) finds non-linear differences (e.g. of variances, Lopez-Paz &
        Oquab's k-NN test); 'logistic' only shifts of the means (:func:`make_classifier`).

    Returns
    -------
    AUROC: 0.5 best (indistinguishable), 1 when the classifier separates them (values
    below 0.5 are chance fluctuations).

    Raises
    ------
    MedgenInputError
        Fewer than ``folds`` samples in a set, different dimensions.
    """
    real = check_matrix(real, "real samples")
    synthetic = check_matrix(synthetic, "synthetic samples")
    _same_features("real samples", real, "synthetic samples", synthetic)
    _at_least(real, folds, "real samples", f"a {folds}-fold two-sample test")
    _at_least(synthetic, folds, "synthetic samples", f"a {folds}-fold two-sample test")
    rng = np.random.default_rng(seed)
    m = min(len(real), len(synthetic), max_per_class)
    picks = [np.sort(rng.choice(len(s), m, replace=False)) for s in (real, synthetic)]
    x = np.concatenate([real[picks[0]], synthetic[picks[1]]])
    y = np.repeat([0, 1], m)
    scores = np.empty(len(y))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, test_rows in split.split(x, y):
        model = make_classifier(classifier, seed, len(fit_rows)).fit(x[fit_rows],
                                                                      y[fit_rows])
        scores[test_rows] = model.predict_proba(x[test_rows])[:, 1]
    return float(roc_auc_score(y, scores))


def category_accuracy(train: object, train_labels: object, synthetic: object,
                      synthetic_labels: object, classifier: Classifier = "logistic",
                      seed: int = 0) -> dict[str, float]:
    """Do synthetic samples look like their category? A classifier trained on REAL
    training data and labels predicts the synthetic samples' labels.

    Parameters
    ----------
    train, synthetic
        (n, d) and (m, d), usually in the fixed embedding.
    train_labels, synthetic_labels
        Category names; the synthetic ones are those the generator was asked for, and
        each must be a training category.

    Returns
    -------
    {'all': balanced accuracy against the intended labels (1 best), category: the share
    of that category's synthetic samples predicted as it (its recall)}.

    Raises
    ------
    MedgenInputError
        Labels that do not match, a synthetic category the training data lack, fewer than
        2 training categories.
    """
    train = check_matrix(train, "training data")
    synthetic = check_matrix(synthetic, "synthetic samples")
    _same_features("training data", train, "synthetic samples", synthetic)
    y_train = check_labels(train_labels, len(train), "training labels")
    y_syn = check_labels(synthetic_labels, len(synthetic), "synthetic labels")
    known = set(y_train)
    if len(known) < 2:
        raise MedgenInputError(f"category check: the training labels hold {sorted(known)}; "
                               "expected at least 2 categories")
    unknown = sorted(set(y_syn) - known)
    if unknown:
        raise MedgenInputError(f"synthetic categories {unknown} are not training "
                               f"categories {sorted(known)}")
    predicted = make_classifier(classifier, seed).fit(train, y_train).predict(synthetic)
    out = {WHOLE: float(balanced_accuracy_score(y_syn, predicted))}
    for category in sorted(set(y_syn)):
        mine = y_syn == category
        out[category] = float((predicted[mine] == category).mean())
    return out


def _balanced_accuracy(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray,
                       y_test: np.ndarray, classifier: Classifier, seed: int) -> float:
    if len(set(y_fit)) < 2:  # a one-class fit predicts a constant: no score
        log.warning("a classifier's training data hold one category (%s): NaN", y_fit[0])
        return float("nan")
    model = make_classifier(classifier, seed).fit(x_fit, y_fit)
    return float(balanced_accuracy_score(y_test, model.predict(x_test)))


def _labelled_sets(train: object, train_labels: object, synthetic: object,
                   synthetic_labels: object, held_out: object, held_out_labels: object
                   ) -> tuple[np.ndarray, ...]:
    train = check_matrix(train, "training data")
    synthetic = check_matrix(synthetic, "synthetic samples")
    held_out = check_matrix(held_out, "held-out data")
    _same_features("training data", train, "synthetic samples", synthetic)
    _same_features("training data", train, "held-out data", held_out)
    return (train, check_labels(train_labels, len(train), "training labels"),
            synthetic, check_labels(synthetic_labels, len(synthetic), "synthetic labels"),
            held_out, check_labels(held_out_labels, len(held_out), "held-out labels"))


def train_synthetic_test_real(train: object, train_labels: object, synthetic: object,
                              synthetic_labels: object, held_out: object,
                              held_out_labels: object, classifier: Classifier = "logistic",
                              seed: int = 0) -> dict[str, float]:
    """Utility: the same classifier trained on synthetic samples (TSTR) and on the real
    training samples (TRTR), both scored on REAL held-out samples (Esteban et al. 2017,
    "Real-valued (medical) time series generation with recurrent conditional GANs").

    Parameters
    ----------
    train, synthetic, held_out
        (n, d), (m, d), (h, d), usually in the fixed embedding, with their category labels
        (synthetic: the intended ones).

    Returns
    -------
    {'tstr_balanced_accuracy', 'trtr_balanced_accuracy'}: balanced accuracy on the
    held-out labels (1 best; TSTR close to TRTR: the synthetic data carry the labels'
    signal). NaN (logged) when a training side holds one category.

    Raises
    ------
    MedgenInputError
        Malformed data or labels.
    """
    train, y_train, synthetic, y_syn, held_out, y_held = _labelled_sets(
        train, train_labels, synthetic, synthetic_labels, held_out, held_out_labels)
    return {"tstr_balanced_accuracy": _balanced_accuracy(synthetic, y_syn, held_out, y_held,
                                                         classifier, seed),
            "trtr_balanced_accuracy": _balanced_accuracy(train, y_train, held_out, y_held,
                                                         classifier, seed)}


def stratified_subsample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of n samples drawn without replacement, each category in its
    share of ``labels`` (largest remainders) and at least once when n >= categories."""
    names, inverse, counts = np.unique(labels.astype(str), return_inverse=True,
                                       return_counts=True)
    if n >= len(labels):
        return np.arange(len(labels))
    exact = n * counts / counts.sum()
    take = np.floor(exact).astype(int)
    if n >= len(names):
        take = np.maximum(take, 1)
    while take.sum() > n:  # the floor of 1 overshot: trim the largest
        take[np.argmax(take)] -= 1
    for i in np.argsort(-(exact - take), kind="stable"):
        if take.sum() >= n:
            break
        if take[i] < counts[i]:
            take[i] += 1
    chosen = [rng.choice(np.flatnonzero(inverse == i), take[i], replace=False)
              for i in range(len(names)) if take[i] > 0]
    return np.sort(np.concatenate(chosen))


def augmentation_curve(train: object, train_labels: object, synthetic: object,
                       synthetic_labels: object, held_out: object, held_out_labels: object,
                       sizes: Sequence[int] | None = None, classifier: Classifier = "logistic",
                       seed: int = 0) -> pd.DataFrame:
    """Augmentation learning curve (as syng-bts reports it): the classifier trained on n
    real training samples alone and with every synthetic sample added, scored on REAL
    held-out samples.

    Parameters
    ----------
    train, synthetic, held_out
        (n, d), (m, d), (h, d), usually in the fixed embedding, with their labels.
    sizes
        Real training sample counts; each draws a stratified subsample (every category
        at least once when n allows; seeded). None: 10%, 25%, 50% and all of ``train``
        (at least the number of categories).

    Returns
    -------
    DataFrame (n_real, with_synthetic: bool, balanced_accuracy), two rows per size
    (balanced accuracy on the held-out labels; 1 best; NaN for a one-category fit).

    Raises
    ------
    MedgenInputError
        Malformed data or labels, a size <= 0.
    """
    train, y_train, synthetic, y_syn, held_out, y_held = _labelled_sets(
        train, train_labels, synthetic, synthetic_labels, held_out, held_out_labels)
    if sizes is None:
        floor = len(set(y_train))
        sizes = sorted({max(floor, int(round(f * len(train)))) for f in (0.1, 0.25, 0.5)}
                       | {len(train)})
    rows = []
    rng = np.random.default_rng(seed)
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise MedgenInputError(f"augmentation size {n!r}; expected a whole number > 0")
        pick = stratified_subsample(y_train, int(n), rng)
        x_real, y_real = train[pick], y_train[pick]
        for with_synthetic in (False, True):
            x_fit = np.concatenate([x_real, synthetic]) if with_synthetic else x_real
            y_fit = np.concatenate([y_real, y_syn]) if with_synthetic else y_real
            rows.append({"n_real": len(pick), "with_synthetic": with_synthetic,
                         "balanced_accuracy": _balanced_accuracy(x_fit, y_fit, held_out,
                                                                 y_held, classifier, seed)})
    return pd.DataFrame(rows, columns=["n_real", "with_synthetic", "balanced_accuracy"])


# --- privacy -----------------------------------------------------------------------------

def nearest_distances(queries: object, records: object) -> np.ndarray:
    """For each query row, the Euclidean distance to its nearest record (in the units of
    the data; found with ``NearestNeighbors``, which works in bounded row chunks, and
    recomputed exactly, so a copied record is at distance 0).

    Raises
    ------
    MedgenInputError
        Malformed inputs or different numbers of features.
    """
    queries = check_matrix(queries, "query samples")
    records = check_matrix(records, "records")
    _same_features("records", records, "query samples", queries)
    _, index = NearestNeighbors(n_neighbors=1).fit(records).kneighbors(queries)
    # recomputed directly: the fast search's |a|^2 + |b|^2 - 2ab leaves ~1e-7 for a copy
    return np.sqrt(((queries - records[index[:, 0]]) ** 2).sum(axis=1))


def distance_to_closest_record(train: object, held_out: object, synthetic: object,
                               quantile: float = DCR_QUANTILE) -> dict[str, float]:
    """Distance to closest record (DCR; Park et al. 2018, "Data synthesis based on
    generative adversarial networks", VLDB): each synthetic sample's distance to its
    nearest TRAINING record, beside the same distance of each real held-out record (what
    an unseen patient looks like).

    Parameters
    ----------
    train, held_out, synthetic
        (n, p), (h, p), (m, p) in one space (the data's units in
        :func:`evaluate_synthetic`).
    quantile
        The held-out quantile the fraction below is measured at (0.05).

    Returns
    -------
    {'dcr_synthetic_median', 'dcr_held_out_median' (data units), 'dcr_fraction_below_held_
    out_q05': share of synthetic samples closer to a training record than the held-out
    ``quantile`` (about ``quantile`` when synthetic samples are as far as new patients;
    near 1 for copies of training records: a privacy risk)}.

    Raises
    ------
    MedgenInputError
        Malformed inputs, different features, a quantile outside (0, 1).
    """
    if not 0 < quantile < 1:
        raise MedgenInputError(f"DCR quantile {quantile!r}; expected a number in (0, 1)")
    synthetic_dcr = nearest_distances(synthetic, train)
    held_out_dcr = nearest_distances(held_out, train)
    threshold = float(np.quantile(held_out_dcr, quantile))
    return {"dcr_synthetic_median": float(np.median(synthetic_dcr)),
            "dcr_held_out_median": float(np.median(held_out_dcr)),
            f"dcr_fraction_below_held_out_q{round(quantile * 100):02d}":
                float((synthetic_dcr < threshold).mean())}


def membership_inference_auroc(train: object, held_out: object, synthetic: object) -> float:
    """A distance attack on membership (Hayes et al. 2019, "LOGAN: membership inference
    attacks against generative models", PoPETs; Chen et al. 2020, "GAN-Leaks"): each
    training and held-out record is scored by minus its distance to the nearest synthetic
    sample, and the AUROC of "is a training record" is taken over all of them.

    Parameters
    ----------
    train, held_out, synthetic
        (n, p), (h, p), (m, p) in one space.

    Returns
    -------
    AUROC: 0.5 best (the synthetic data tell nothing about membership); towards 1 the
    synthetic samples sit on training records.

    Raises
    ------
    MedgenInputError
        Malformed inputs or different features.
    """
    d_train = nearest_distances(train, synthetic)
    d_held = nearest_distances(held_out, synthetic)
    member = np.concatenate([np.ones(len(d_train)), np.zeros(len(d_held))])
    return float(roc_auc_score(member, -np.concatenate([d_train, d_held])))


# --- everything --------------------------------------------------------------------------

SyntheticSet = tuple[object, object | None]  # (X (m, p), labels or None)


# metrics at their best at chance (0.5), compared over replicates as the distance from it
AT_CHANCE = ("c2st_auroc", "membership_auroc")


def tidy_table(table: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """The whole-set rows of :func:`evaluate_synthetic`'s table in ``medgen.evaluate.tidy``'s
    layout (per-category rows stay in its own table: tidy has no category unit), plus
    ``<metric>_excess`` = |AUROC - 0.5| for each metric of ``AT_CHANCE``: replicates
    compare methods on those (lower is better, ``medgen.task.SYNTHETIC_DATA_METRICS``).

    ``split``: the real data the samples were scored against (held-out: 'test').
    """
    from medgen.evaluate import tidy

    whole = table[table["category"] == WHOLE]
    chance = whole[whole["metric"].isin(AT_CHANCE)]
    excess = chance.assign(metric=chance["metric"] + "_excess",
                           value=(chance["value"] - 0.5).abs())
    rows = pd.concat([whole, excess], ignore_index=True)
    return (rows.assign(split=split, unit_kind=tidy.WHOLE_SPLIT, unit=tidy.WHOLE_SPLIT)
            [list(tidy.COLUMNS)].reset_index(drop=True))


def evaluate_synthetic(train: object, held_out: object,
                       synthetic: Mapping[str, SyntheticSet],
                       train_labels: object | None = None,
                       held_out_labels: object | None = None, seed: int = 0,
                       embedding: TransformerMixin | None = None,
                       n_components: int = DEFAULT_EMBEDDING_COMPONENTS,
                       top_features: int = DEFAULT_TOP_FEATURES, k: int = DEFAULT_K,
                       sizes: Sequence[int] | None = None,
                       c2st_classifier: Classifier = "knn") -> pd.DataFrame:
    """Every metric of this module for each synthetic set, against real held-out data.

    Parameters
    ----------
    train, held_out
        (n, p) real TRAINING samples (what the generators were fitted on) and (h, p) real
        HELD-OUT samples (never seen in training), in the data's units.
    synthetic
        method -> (X (m, p) in the same units, labels of m intended categories or None).
        Real samples of a third split (e.g. validation) given as a method score the
        floor a perfect generator reaches with that many samples.
    train_labels, held_out_labels
        Category names of the real samples, or None (no per-category rows, no utility).
    seed
        Seeds every draw and classifier: the same inputs give the same table.
    embedding
        A fitted transformer (:func:`fit_embedding` on ``train``); None: fitted here with
        ``n_components``.
    top_features
        Training features of highest variance the correlation difference uses.
    k
        Neighbours of precision / recall / density / coverage.
    sizes
        Real training sizes of the augmentation curve (see :func:`augmentation_curve`).
    c2st_classifier
        The two-sample test's classifier (:func:`classifier_two_sample_auroc`); the
        category check and the utility scores use logistic regression.

    Returns
    -------
    DataFrame with ``ROW_COLUMNS`` (method, category, metric, value), category 'all' for
    a metric over all samples; rows per method in a fixed order. Metrics: wasserstein_mean,
    ks_mean (and per category when labels are known), corr_frobenius, corr_mean_abs, mmd2,
    mmd_bandwidth, precision, recall, density, coverage, c2st_auroc, the DCR trio,
    membership_auroc; with labels on both sides: category_balanced_accuracy (per category:
    category_recall), tstr_balanced_accuracy, trtr_balanced_accuracy and
    augment_real_n<N>_balanced_accuracy / augment_synthetic_n<N>_balanced_accuracy.

    Raises
    ------
    MedgenInputError
        No synthetic sets, malformed inputs, or any refusal of the metrics above.
    """
    if not synthetic:
        raise MedgenInputError("no synthetic sets to evaluate; expected {method: (X, labels)}")
    train = check_matrix(train, "training data")
    held_out = check_matrix(held_out, "held-out data")
    _same_features("training data", train, "held-out data", held_out)
    labelled = train_labels is not None and held_out_labels is not None
    if not labelled and (train_labels is not None or held_out_labels is not None):
        log.warning("synthetic evaluation: labels of only the %s data; no per-category or "
                    "utility rows (they need labels of both)",
                    "training" if train_labels is not None else "held-out")
    y_train = check_labels(train_labels, len(train), "training labels") if labelled else None
    y_held = (check_labels(held_out_labels, len(held_out), "held-out labels") if labelled
              else None)
    if embedding is None:
        embedding = fit_embedding(train, n_components)
    e_train, e_held = _embedded(embedding, train), _embedded(embedding, held_out)
    features = top_variance_features(train, top_features)
    log.info("synthetic evaluation: %d training, %d held-out samples x %d features; embedding "
             "%d dimensions (PCA of the training data); correlations over %d top-variance "
             "features; %s", len(train), len(held_out), train.shape[1], e_train.shape[1],
             len(features), "per category" if labelled else "without labels")
    rows: list[tuple[str, str, str, float]] = []
    for method, (x_syn, syn_labels) in synthetic.items():
        log.info("synthetic evaluation: %s", method)
        x_syn = check_matrix(x_syn, f"synthetic samples of {method}")
        _same_features("training data", train, f"synthetic samples of {method}", x_syn)
        y_syn = (None if syn_labels is None
                 else check_labels(syn_labels, len(x_syn), f"synthetic labels of {method}"))
        e_syn = _embedded(embedding, x_syn)

        def add(metric: str, value: float, category: str = WHOLE, method: str = method) -> None:
            rows.append((method, category, metric, float(value)))

        distances = feature_distances(held_out, x_syn)
        add("wasserstein_mean", distances["wasserstein"].mean())
        add("ks_mean", distances["ks"].mean())
        for name, value in correlation_difference(held_out, x_syn, features).items():
            add(name, value)
        for name, value in mmd_rbf(e_held, e_syn, seed=seed).items():
            add(name, value)
        for name, value in precision_recall_density_coverage(e_held, e_syn, k).items():
            add(name, value)
        add("c2st_auroc", classifier_two_sample_auroc(e_held, e_syn, seed, c2st_classifier))
        for name, value in distance_to_closest_record(train, held_out, x_syn).items():
            add(name, value)
        add("membership_auroc", membership_inference_auroc(train, held_out, x_syn))
        if not labelled or y_syn is None:
            if labelled:
                log.info("synthetic evaluation: %s has no labels; no per-category or utility "
                         "rows", method)
            continue
        for category in sorted(set(y_syn) & set(y_held)):
            per = feature_distances(held_out[y_held == category], x_syn[y_syn == category])
            add("wasserstein_mean", per["wasserstein"].mean(), category)
            add("ks_mean", per["ks"].mean(), category)
        accuracy = category_accuracy(e_train, y_train, e_syn, y_syn, seed=seed)
        add("category_balanced_accuracy", accuracy.pop(WHOLE))
        for category, value in accuracy.items():
            add("category_recall", value, category)
        for name, value in train_synthetic_test_real(e_train, y_train, e_syn, y_syn, e_held,
                                                     y_held, seed=seed).items():
            add(name, value)
        curve = augmentation_curve(e_train, y_train, e_syn, y_syn, e_held, y_held, sizes,
                                   seed=seed)
        for row in curve.itertuples(index=False):
            side = "synthetic" if row.with_synthetic else "real"
            add(f"augment_{side}_n{row.n_real}_balanced_accuracy", row.balanced_accuracy)
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))
