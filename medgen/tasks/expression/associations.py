"""Which latent node encodes a covariate: per node x label AUROC and Welch t-statistic.

Binary labels give one row per node (positive class = the later one in sorted order);
labels with more classes give one-vs-rest rows per class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

COLUMNS = ["node", "label", "positive_class", "n_positive", "n_negative", "auroc", "welch_t"]


def node_associations(
    latent: np.ndarray, labels: dict[str, np.ndarray], node_names: list[str]
) -> pd.DataFrame:
    """Long table: one row per (node, label, positive class)."""
    rows = []
    for label, values in labels.items():
        values = pd.Series(values, dtype=object)
        keep = values.notna().to_numpy()
        y = values[keep].astype(str).to_numpy()
        classes = sorted(set(y))
        if len(classes) < 2:
            continue
        positives = classes[1:] if len(classes) == 2 else classes
        z = latent[keep]
        for positive in positives:
            is_pos = y == positive
            for j, node in enumerate(node_names):
                a, b = z[is_pos, j], z[~is_pos, j]
                # Welch's t is undefined for constant nodes (dead ReLU units): report NaN.
                t = stats.ttest_ind(a, b, equal_var=False).statistic if (
                    len(a) > 1 and len(b) > 1 and np.ptp(z[:, j]) > 0
                ) else np.nan
                rows.append({
                    "node": node, "label": label, "positive_class": positive,
                    "n_positive": int(is_pos.sum()), "n_negative": int((~is_pos).sum()),
                    "auroc": float(roc_auc_score(is_pos, z[:, j])), "welch_t": float(t),
                })
    return pd.DataFrame(rows, columns=COLUMNS)
