"""Label structure of a latent space: k-NN accuracy and silhouette on the held-out split.

Every latent space (VAE, PCA, ICA, NMF) is z-scored per dimension with the TRAIN split's
mean and standard deviation first, so that scale differences between methods (ICA's unit
variance, NMF's non-negative loadings) do not decide the distances.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, silhouette_score
from sklearn.neighbors import KNeighborsClassifier

log = logging.getLogger(__name__)
UNDEFINED = float("nan")  # a metric the evaluated split cannot define: never a perfect score


def zscore_with_train(latent: np.ndarray, train_mask: np.ndarray) -> np.ndarray:
    """(latent - train mean) / train sd per dimension; constant dimensions get sd 1."""
    train = latent[train_mask].astype(np.float64)
    mean = train.mean(axis=0)
    sd = train.std(axis=0)
    sd[sd == 0] = 1.0
    return (latent.astype(np.float64) - mean) / sd


UNLABELLED = {"nan", "unknown"}  # 'unknown': derived labels of IDs without a sample part


def _labelled(labels: np.ndarray) -> np.ndarray:
    return np.array([v is not None and v == v and str(v) not in UNLABELLED for v in labels],
                    dtype=bool)


def knn_scores(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, k: int
) -> dict[str, float | None]:
    """Accuracy and balanced accuracy of a k-NN classifier fitted on train, scored on test.

    Samples without a label are left out; None when a side has no labelled samples; NaN
    when the test side holds fewer than 2 classes (every sample of one class: the scores
    would read 1.000 without measuring anything).
    """
    keep_train, keep_test = _labelled(y_train), _labelled(y_test)
    if not keep_train.any() or not keep_test.any():
        return {"accuracy": None, "balanced_accuracy": None}
    y_train = y_train[keep_train].astype(str)
    y_test = y_test[keep_test].astype(str)
    if len(set(y_test)) < 2 or len(set(y_train)) < 2:  # a one-class fit predicts a constant
        return {"accuracy": UNDEFINED, "balanced_accuracy": UNDEFINED}
    model = KNeighborsClassifier(n_neighbors=min(k, len(y_train)))
    model.fit(z_train[keep_train], y_train)
    pred = model.predict(z_test[keep_test])
    return {
        "accuracy": float(accuracy_score(y_test, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, pred)),
    }


def silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of the label groups (euclidean); NaN with fewer than 2 groups or no group
    of 2 samples (undefined)."""
    keep = _labelled(labels)
    y = labels[keep].astype(str)
    n_groups = len(set(y))
    if n_groups < 2 or n_groups >= len(y):
        return UNDEFINED
    return float(silhouette_score(z[keep], y))


def undefined_label_notes(labels: dict[str, np.ndarray], test_mask: np.ndarray,
                          train_mask: np.ndarray | None = None) -> list[str]:
    """One note per label whose test split (or, for the k-NN scores, training split) holds
    fewer than 2 classes, counting 'unknown' as unlabelled (its k-NN scores and, for the
    test split, silhouette are NaN), each also logged as a warning."""
    notes = []
    for name, values in labels.items():
        values = np.asarray(values, dtype=object)
        sides = [("test", test_mask, "k-NN accuracy, balanced accuracy and silhouette")]
        if train_mask is not None:
            sides.append(("training", train_mask, "k-NN accuracy and balanced accuracy"))
        for side, mask, what in sides:
            part = values[mask]
            classes = sorted(set(part[_labelled(part)].astype(str)))
            if len(classes) < 2:
                unknown = "; unknown left out" if "unknown" in set(part.astype(str)) else ""
                note = (f"label '{name}': the {side} split holds {len(classes)} class"
                        f"{'' if len(classes) == 1 else 'es'} ({', '.join(classes) or 'none'}"
                        f"{unknown}); {what} are undefined (NaN)")
                log.warning(note)
                notes.append(note)
                break
    return notes


def latent_metrics(
    latent: np.ndarray,
    labels: dict[str, np.ndarray],
    train_mask: np.ndarray,
    test_mask: np.ndarray,
    k: int,
) -> dict[str, float | None]:
    """knn_accuracy_<label>, knn_balanced_accuracy_<label>, silhouette_<label> per label
    (NaN where the test split cannot define them, see :func:`undefined_label_notes`)."""
    z = zscore_with_train(latent, train_mask)
    out: dict[str, float | None] = {}
    for name, values in labels.items():
        values = np.asarray(values, dtype=object)
        scores = knn_scores(z[train_mask], values[train_mask], z[test_mask], values[test_mask], k)
        out[f"knn_accuracy_{name}"] = scores["accuracy"]
        out[f"knn_balanced_accuracy_{name}"] = scores["balanced_accuracy"]
        out[f"silhouette_{name}"] = silhouette(z[test_mask], values[test_mask])
    return out
