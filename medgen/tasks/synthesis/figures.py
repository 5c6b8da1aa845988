"""Report of the synthesis task: the per-subject metric table, mid-slices in three
orientations (source, target, each method's output and its error map) and the training
curves of every auto-context level.

Reads what the evaluation left in its folder (``metrics.tsv``; per method the synthetic
volumes ``<family>/<subject>_level<k>.nii.gz``, and ``<method>/<subject>.nii.gz`` for a
method that writes one) and the prepared level-1 folder (normalised source and target):
the figures are drawn from the written tables and volumes, not inside the evaluation.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch jobs have no display

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgen import checkpoint  # noqa: E402
from medgen.atomic import atomic_path  # noqa: E402
from medgen.data.imaging import intensity  # noqa: E402
from medgen.errors import MedgenInputError  # noqa: E402
from medgen.report.plots import per_epoch, save_png  # noqa: E402
from medgen.tasks.synthesis.prepare import crop, load_subject, read_manifest  # noqa: E402

log = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "mae", "gradient_error", "ssim_tumour", "ssim_non_tumour")
# loss terms and validation metric logged by the context_gan plan, in panel order
CURVE_TERMS = ("l2", "gdl", "l1", "adversarial", "loss_d", "val_mae")
ORIENTATIONS = ("sagittal", "coronal", "axial")  # slicing axis 0, 1, 2 (RAS-like grids)
MEAN = "mean"  # the subject column of the per-method mean rows


def metric_table(metrics_tsv: str | os.PathLike, path: str | os.PathLike) -> pd.DataFrame:
    """The evaluation's per-subject table with only the report's metrics (``METRICS``) and a
    mean row per method (per split when the table has one), methods in table order;
    written to ``path`` (TSV) and returned.

    Raises
    ------
    MedgenInputError
        No such file, or it lacks the 'subject', 'method' or a metric column.
    """
    metrics_tsv = Path(metrics_tsv)
    if not metrics_tsv.is_file():
        raise MedgenInputError(f"synthesis metrics {metrics_tsv} do not exist")
    table = pd.read_csv(metrics_tsv, sep="\t")
    missing = [c for c in ("subject", "method", *METRICS) if c not in table]
    if missing:
        raise MedgenInputError(f"{metrics_tsv} lacks the column(s) {', '.join(missing)}")
    keys = ["split"] if "split" in table else []
    table = table[[*keys, "subject", "method", *METRICS]]
    means = table.groupby([*keys, "method"], sort=False)[list(METRICS)].mean().reset_index()
    means.insert(len(keys), "subject", MEAN)
    out = pd.concat([table, means], ignore_index=True)
    order = {m: i for i, m in enumerate(dict.fromkeys(table["method"]))}
    out["_mean"] = out["subject"] == MEAN
    out["_method"] = out["method"].map(order)
    out = (out.sort_values([*keys, "_mean", "subject", "_method"], kind="stable")
           .drop(columns=["_mean", "_method"]).reset_index(drop=True))
    with atomic_path(path) as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    return out


def mid_slices(source: np.ndarray, target: np.ndarray, outputs: dict[str, np.ndarray],
               mask: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """One row for source | target, one per method for output | ``|output - target|``,
    each as sagittal, coronal and axial slices through the centre of the mask's box.

    Parameters
    ----------
    source, target, mask
        (X, Y, Z) arrays on one grid, source and target on the network's scale.
    outputs
        Method -> (X, Y, Z) synthetic target on the target's scale; in display order.

    Raises
    ------
    MedgenInputError
        Arrays of different shapes, or an empty mask.
    """
    shapes = {name: a.shape for name, a in [("source", source), ("target", target),
                                            ("mask", mask), *outputs.items()]}
    if len(set(shapes.values())) != 1 or len(shapes["mask"]) != 3:
        raise MedgenInputError(f"mid-slices need 3D arrays of one shape, got {shapes}")
    if not mask.any():
        raise MedgenInputError("mid-slices: the mask is empty")
    inside = mask != 0
    voxels = np.argwhere(inside)
    centre = [int(c) for c in (voxels.min(0) + voxels.max(0)) // 2]  # of the mask's box
    low, high = np.percentile(target[inside], [0.5, 99.5])  # one scale for every image
    errors = {name: np.where(inside, np.abs(out - target), 0.0) for name, out in outputs.items()}
    error_max = max([float(np.percentile(e[inside], 99)) for e in errors.values()] + [1e-6])

    def cut(volume: np.ndarray, axis: int) -> np.ndarray:
        return np.rot90(np.take(volume, centre[axis], axis=axis))  # rows: the next axis up

    # (left title, volume, scale) | (right title, volume, colour map, scale) per row
    rows = [(("source", source, np.percentile(source[inside], [0.5, 99.5])),
             ("target", target, "gray", (low, high)))]
    rows += [((name, outputs[name], (low, high)),
              (f"|{name} - target|", errors[name], "magma", (0.0, error_max)))
             for name in outputs]
    fig, axes = plt.subplots(len(rows), 6, figsize=(13, 2.2 * len(rows)), squeeze=False)
    for r, ((left, left_volume, left_scale), (right, right_volume, cmap, scale)) in enumerate(
            rows):
        for axis in range(3):
            axes[r, axis].imshow(cut(left_volume, axis), cmap="gray", vmin=left_scale[0],
                                 vmax=left_scale[1])
            image = axes[r, 3 + axis].imshow(cut(right_volume, axis), cmap=cmap,
                                             vmin=scale[0], vmax=scale[1])
            axes[r, axis].set_title(f"{left} ({ORIENTATIONS[axis]})", fontsize=8)
            axes[r, 3 + axis].set_title(f"{right} ({ORIENTATIONS[axis]})", fontsize=8)
        if r:  # the error scale, shared by every method
            fig.colorbar(image, ax=axes[r, 5], fraction=0.046, pad=0.02)
    for ax in axes.flat:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


def training_curves(metrics_csvs: dict[str, str | os.PathLike], path: str | os.PathLike,
                    kept: dict[str, int | None] | None = None) -> list[str]:
    """Per-epoch loss terms (``CURVE_TERMS``) of every level, one panel per term, one line
    per level; levels without a ``metrics.csv`` are named in the figure and skipped.
    ``kept``: level -> the epoch its ``model.pt`` holds (0-based, ``kept_epoch``), ringed on
    the ``val_mae`` panel. Returns the levels drawn."""
    tables, missing = {}, []
    for name, csv in metrics_csvs.items():
        try:
            tables[name] = per_epoch(csv)
        except MedgenInputError:
            missing.append(name)
    terms = [t for t in CURVE_TERMS if any(t in table for table in tables.values())]
    fig, axes = plt.subplots(1, max(len(terms), 1), figsize=(3.6 * max(len(terms), 1), 3.2),
                             squeeze=False)
    for ax, term in zip(axes[0], terms):
        for name, table in tables.items():
            if term in table:
                series = table[term].dropna()
                line, = ax.plot(series.index + 1, series.to_numpy(), marker=".", label=name)
                epoch = (kept or {}).get(name)
                if term == "val_mae" and epoch is not None and epoch in series.index:
                    ax.plot(epoch + 1, series[epoch], "o", markersize=10, fillstyle="none",
                            color=line.get_color(), label=f"{name}: exported (epoch {epoch + 1})")
        ax.set_title(term)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    if not terms:
        axes[0, 0].set_axis_off()
    if missing:
        fig.suptitle(f"no training log (metrics.csv) for: {', '.join(missing)}", fontsize=9)
    fig.tight_layout()
    save_png(fig, path)
    return list(tables)


def kept_epoch(model_path: str | os.PathLike) -> int | None:
    """The epoch (0-based) whose networks a ``model.pt`` holds when it was selected on the
    validation subject (provenance ``model_selection``); None for a last-epoch model, an
    older file or a missing one."""
    try:
        saved = checkpoint.load(model_path)
    except MedgenInputError:
        return None
    selection = saved.provenance.get("model_selection") or {}
    return selection.get("epoch") if selection.get("rule") == "lowest val_mae" else None


def method_volume(eval_dir: Path, method: str, subject: str,
                  levels: dict[str, tuple[str, int]]) -> Path | None:
    """Where the evaluation wrote ``method``'s volume of ``subject`` (None: not written)."""
    if method in levels:
        family, k = levels[method]
        path = eval_dir / family / f"{subject}_level{k}.nii.gz"
    else:
        path = eval_dir / method / f"{subject}.nii.gz"
    return path if path.is_file() else None


def on_target_scale(path: Path, info: dict, mask: np.ndarray) -> np.ndarray:
    """A written synthetic volume cut to the prepared box, on the target's network scale:
    outputs in Hounsfield units (sidecar 'units': 'HU') are normalised again."""
    volume = crop(np.asarray(nib.load(str(path)).dataobj, np.float32), info["box"])
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    units = json.loads(sidecar.read_text()).get("units") if sidecar.is_file() else None
    if units == "HU" and info.get("target_params"):
        volume = intensity.apply(volume, info["target_params"], mask)
    return volume


def subject_outputs(eval_dir: Path, methods: list[str], subject: str,
                    levels: dict[str, tuple[str, int]], info: dict, mask: np.ndarray
                    ) -> dict[str, np.ndarray]:
    """Method -> its synthetic volume of ``subject`` in the prepared box on the target's
    scale, for the methods whose volume the evaluation wrote (in ``methods`` order)."""
    outputs = {}
    for method in methods:
        path = method_volume(eval_dir, method, subject, levels)
        if path is None:
            log.info("%s: no volume of %s in %s; not drawn", subject, method, eval_dir)
            continue
        outputs[method] = on_target_scale(path, info, mask)
    return outputs


def synthesis_report(eval_dir: str | os.PathLike, prepared: str | os.PathLike,
                     models: dict[str, list[str]], out_dir: str | os.PathLike,
                     subjects: list[str] | None = None,
                     seed: int | None = None) -> dict[str, Path]:
    """The report's synthesis section: ``metrics.tsv``, ``slices_<subject>.png`` for each
    of ``subjects`` (default: the test subjects of ``prepared``) and
    ``training_curves.png``.

    Parameters
    ----------
    eval_dir
        The evaluation's folder (``metrics.tsv`` and the synthetic volumes).
    prepared
        The level-1 prepared folder: normalised sources and targets.
    models
        Family -> its level ``model.pt`` paths in level order; the training logs
        (``metrics.csv``) are read beside them.
    seed
        The seed the models were trained with, named in the mid-slice titles.
    """
    eval_dir, out_dir = Path(eval_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"table": out_dir / "metrics.tsv", "curves": out_dir / "training_curves.png"}
    table = metric_table(eval_dir / "metrics.tsv", written["table"])
    levels = {f"{family}_level{k}": (family, k)
              for family, paths in models.items() for k in range(1, len(paths) + 1)}
    manifest = read_manifest(prepared)
    if subjects is None:
        subjects = [s for s, info in manifest["subjects"].items() if info["split"] == "test"]
    methods = list(dict.fromkeys(table["method"]))
    for subject in subjects:
        info = manifest["subjects"].get(subject)
        if info is None:
            raise MedgenInputError(f"subject '{subject}' is not in the prepared folder "
                                   f"{prepared}")
        arrays = load_subject(prepared, subject)
        if "target" not in arrays:
            raise MedgenInputError(f"subject '{subject}' of {prepared} has no target")
        mask = arrays["mask"][0]
        outputs = subject_outputs(eval_dir, methods, subject, levels, info, mask)
        written[f"slices_{subject}"] = out_dir / f"slices_{subject}.png"
        mid_slices(arrays["source"][0], arrays["target"][0], outputs, mask,
                   written[f"slices_{subject}"],
                   f"{subject}: {manifest['sources'][0]} -> {manifest['target']}"
                   + ("" if seed is None else f" (models of seed {seed})"))
    training_curves({name: Path(models[family][k - 1]).parent / "metrics.csv"
                     for name, (family, k) in levels.items()}, written["curves"],
                    kept={name: kept_epoch(models[family][k - 1])
                          for name, (family, k) in levels.items()})
    return written
