"""Figures of the anomaly evaluation: ROC curves, score histograms, image grids.

``draw_figures`` draws them from the evaluation's written files (``scores.tsv``, the
scorers' ``maps_test.npz``, the prepared ``test.npz``); the other functions take values.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medgen.report.plots import save_png  # noqa: E402
from medgen.tasks.anomaly.methods import TRIVIAL  # noqa: E402
from medgen.tasks.anomaly.outputs import SCORES_FILE, read_item_scores  # noqa: E402
from medgen.tasks.anomaly.prepare import load_split  # noqa: E402


def draw_figures(report_dir: str | os.PathLike, score_dirs: dict[str, str | os.PathLike],
                 data_dir: str | os.PathLike, n_grid: int, seed: int, unit: str = "images",
                 anomalous: str = "anomalous") -> None:
    """ROC curves and histograms per split (``roc_<split>.png``, ``hist_<split>.png``) from
    ``report_dir/scores.tsv``, and a residual grid per model (``grid_<method>.png``) from its
    scorer folder's ``maps_test.npz`` and ``data_dir/test.npz``.

    ``unit`` ('slices' or 'images') and ``anomalous`` (the positive class's name) label the
    axes; ``n_grid`` items (half normal, half anomalous, drawn with ``seed``) per grid.
    """
    report_dir, data_dir = Path(report_dir), Path(data_dir)
    scores = read_item_scores(report_dir / SCORES_FILE)
    for split, rows in scores.groupby("split", sort=False):
        curves = {method: (part["score"].to_numpy(), part["y"].to_numpy())
                  for method, part in rows.groupby("method", sort=False)}
        # curves of scores that need no model (trivial, covariate deviations) are dashed
        model_free = [m for m in curves if m in TRIVIAL or m.endswith("_deviation")]
        roc_curves(report_dir / f"roc_{split}.png", curves,
                   f"{unit[:-1]}-level ROC, {split} split", model_free)
        histograms(report_dir / f"hist_{split}.png", curves,
                   f"{unit[:-1]}-level scores, {split} split", anomalous, unit)
    if not (data_dir / "test.npz").exists():
        return
    test = None
    for method, folder in score_dirs.items():
        stored = Path(folder) / "maps_test.npz"
        arrays = load_split(stored) if stored.exists() else {}
        if "reconstruction" in arrays:
            test = test if test is not None else load_split(data_dir / "test.npz")
            residual_grid(report_dir / f"grid_{method}.png", test,
                          arrays["reconstruction"].astype(np.float32),
                          arrays["residual_map"].astype(np.float32), n_grid, seed,
                          f"{method} (seed {seed}), test split", anomalous)


def roc_curves(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str,
               model_free: Collection[str] = ()) -> None:
    """One ROC curve per method (AUROC in the legend); ``model_free`` methods drawn dashed."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for method, (score, y) in curves.items():
        keep = y >= 0
        if len(np.unique(y[keep])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[keep], score[keep])
        ax.plot(fpr, tpr, ls="--" if method in model_free else "-",
                label=f"{method} ({roc_auc_score(y[keep], score[keep]):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="chance")
    ax.set(xlabel="false-positive rate", ylabel="sensitivity", title=title)
    ax.legend(fontsize=7, loc="lower right")
    save_png(fig, path)


def histograms(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str,
               anomalous: str = "anomalous", unit: str = "images") -> None:
    """Counts of normal and anomalous items per score bin, one panel per method.

    ``anomalous``: the legend's name for the positive class (e.g. 'synthetic anomaly');
    ``unit``: what is counted (y axis), e.g. 'slices'.
    """
    n = len(curves)
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 2.8), squeeze=False, layout="constrained")
    for ax, (method, (score, y)) in zip(axes[0], curves.items()):
        bins = np.histogram_bin_edges(score, 30)
        for cls, label in ((0, "normal"), (1, anomalous)):
            if (y == cls).any():  # the healthy demo has no anomalous images
                # counts, not densities: with a few dozen items a density axis reads oddly
                ax.hist(score[y == cls], bins, alpha=0.6, label=label)
        ax.set_title(method, fontsize=8)
        ax.set_xlabel("anomaly score", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel(unit, fontsize=7)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def residual_scale(residuals: np.ndarray, masks: np.ndarray | None = None) -> float:
    """Upper end of one colour scale for several residual maps: the 99th percentile of
    their values inside ``masks`` (same shape, nonzero = body; all values without), so
    a few hot pixels do not wash out every panel; 1.0 when nothing is left or all are 0."""
    values = residuals[masks > 0] if masks is not None else residuals.ravel()
    top = float(np.percentile(values, 99)) if values.size else 0.0
    return top if top > 0 else 1.0


def residual_grid(path: Path, data: dict[str, np.ndarray], recon: np.ndarray,
                  residual: np.ndarray, n: int, seed: int, title: str = "",
                  anomalous: str = "anomalous") -> None:
    """Rows: input, reconstruction, residual for n/2 normal + n/2 anomalous items (seeded).

    ``data``: a prepared split (``images`` (N, C, H, W) in [0, 1], ``y``, optional
    ``labels_map`` (N, H, W) outlined in cyan and ``masks``); ``recon`` (N, C, H, W);
    ``residual`` (N, H, W). Every residual panel shares one colour scale (0 to the 99th
    percentile of the shown residuals inside the masks), with a colour bar, so that normal
    and anomalous panels can be compared by eye.
    """
    rng = np.random.default_rng(seed)
    y = data["y"]
    picks = [i for cls in (0, 1) for i in rng.permutation(np.flatnonzero(y == cls))[: n // 2]]
    vmax = residual_scale(residual[picks], data["masks"][picks] if "masks" in data else None)
    fig, axes = plt.subplots(3, len(picks), figsize=(1.3 * len(picks) + 0.6, 4.4),
                             squeeze=False, layout="constrained")
    for j, i in enumerate(picks):
        axes[0][j].imshow(data["images"][i, 0], cmap="gray", vmin=0, vmax=1)
        axes[1][j].imshow(recon[i, 0], cmap="gray", vmin=0, vmax=1)
        heat = axes[2][j].imshow(residual[i], cmap="inferno", vmin=0, vmax=vmax)
        if "labels_map" in data:
            axes[2][j].contour(data["labels_map"][i], levels=[0.5], colors="cyan", linewidths=0.5)
        axes[0][j].set_title(anomalous if y[i] == 1 else "normal", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    for r, label in enumerate(("input", "reconstruction", "residual")):
        axes[r][0].text(-0.1, 0.5, label, transform=axes[r][0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=7)
    if picks:
        bar = fig.colorbar(heat, ax=axes[2].tolist(), shrink=0.9, pad=0.01)
        bar.ax.tick_params(labelsize=6)
        bar.set_label("residual (one scale)", fontsize=6)
    if "labels_map" in data:
        title = "; ".join(filter(None, [title, "cyan outline: the anomaly's mask"]))
    if title:
        fig.suptitle(title, fontsize=8)
    save_png(fig, path)


def image_grid(path: str | os.PathLike, sets: dict[str, np.ndarray], title: str = "",
               columns: int = 8) -> None:
    """Image sets one above the other (channel 0), each in rows of ``columns``, labelled on
    the left; one grey scale for all panels (the 0.5th to 99.5th percentile of the shown
    pixels), so brightness compares across sets.

    ``sets``: label -> images (k, C, S, S) (k >= 1; same S for all).
    """
    blocks = [(label, images[:, 0]) for label, images in sets.items() if len(images)]
    pooled = np.concatenate([images.ravel() for _, images in blocks])
    vmin, vmax = (float(v) for v in np.percentile(pooled, [0.5, 99.5]))
    if vmax <= vmin:
        vmax = vmin + 1.0
    rows = [(label if r == 0 else "", images[r * columns:(r + 1) * columns])
            for label, images in blocks for r in range(-(-len(images) // columns))]
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.0 * columns + 1.2,
                                                          1.0 * len(rows) + 0.5),
                             squeeze=False, layout="constrained")
    for (label, images), row in zip(rows, axes):
        for j, ax in enumerate(row):
            ax.axis("off")
            if j < len(images):
                ax.imshow(images[j], cmap="gray", vmin=vmin, vmax=vmax)
        if label:
            row[0].text(-0.1, 0.5, label, transform=row[0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    save_png(fig, path)
