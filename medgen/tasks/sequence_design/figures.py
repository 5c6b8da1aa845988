"""Figures of the sequence-generation evaluation, drawn from its written tables:
``kmer_js.png`` (k-mer Jensen-Shannon distance by k, one line per method, from
``metrics.tsv``) and ``gc_content.png`` (per-sequence GC distributions, from
``gc_content.tsv``)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.report.plots import save_png  # noqa: E402


def draw_figures(eval_dir: str | os.PathLike) -> None:
    """``kmer_js.png`` and ``gc_content.png`` in ``eval_dir`` from its ``metrics.tsv`` and
    ``gc_content.tsv``."""
    eval_dir = Path(eval_dir)
    table = pd.read_csv(eval_dir / "metrics.tsv", sep="\t")
    ks = sorted(int(c[4:-3]) for c in table.columns if c.startswith("kmer") and
                c.endswith("_js"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for _, row in table.iterrows():
        dashed = row["method"] == "real_val"
        ax.plot(ks, [row[f"kmer{k}_js"] for k in ks], marker="o", label=row["method"],
                linestyle="--" if dashed else "-", color="black" if dashed else None)
    ax.set(xlabel="k", ylabel="Jensen-Shannon distance to test k-mers",
           title="k-mer spectra (real_val: validation windows, the floor)")
    ax.legend(fontsize=8)
    save_png(fig, eval_dir / "kmer_js.png")

    gc = pd.read_csv(eval_dir / "gc_content.tsv", sep="\t")
    methods = list(dict.fromkeys(gc["method"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 26)
    for method in methods:
        values = gc.loc[gc["method"] == method, "gc"].dropna()
        ax.hist(values, bins=bins, density=True, histtype="step", label=method,
                linewidth=2.5 if method == "test" else 1.2,
                color="black" if method == "test" else None)
    ax.set(xlabel="GC fraction per sequence", ylabel="density",
           title="GC content (test: held-out real windows)")
    ax.legend(fontsize=8)
    save_png(fig, eval_dir / "gc_content.png")


def draw_design_figures(eval_dir: str | os.PathLike, trajectories: str | os.PathLike,
                        train_oracle: np.ndarray, target: str | float) -> None:
    """The design evaluation's figures in ``eval_dir``, from its ``oracle_scores.tsv`` and
    the design job's ``trajectories.tsv``:

    - ``design_trajectories.png``: per objective, the mean score of the argmax sequences
      against the step (round, for evolution) of each optimiser;
    - ``oracle_scores.png``: the oracle's scores of each method's designs (predictor
      objective) beside those of the training sequences, their maximum dashed;
    - ``logos.png``: a sequence logo (logomaker, information content) per method.
    """
    import logomaker

    eval_dir = Path(eval_dir)
    scores = pd.read_csv(eval_dir / "oracle_scores.tsv", sep="\t", keep_default_na=False,
                         na_values=[""], dtype={"sequence": str})
    steps = pd.read_csv(trajectories, sep="\t")
    steps = steps[steps["statistic"] == "mean"]
    panels = list(dict.fromkeys(zip(steps["objective"], steps["scored"], strict=True)))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5 * max(len(panels), 1), 3.6),
                             squeeze=False)
    for ax, (objective, scored) in zip(axes[0], panels, strict=False):
        part = steps[(steps["objective"] == objective) & (steps["scored"] == scored)]
        for method, group in part.groupby("method", sort=False):
            ax.plot(group["step"], group["score"], label=method)
        ax.set(xlabel="step (evolution: round)", ylabel=f"mean {scored} score",
               title=f"objective: {objective}")
        ax.legend(fontsize=8)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no optimiser ran", ha="center")
    save_png(fig, eval_dir / "design_trajectories.png")

    main = scores[scores["objective"] == "predictor"]
    methods = list(dict.fromkeys(main["method"]))
    fig, ax = plt.subplots(figsize=(1.3 * (len(methods) + 1) + 2, 4))
    data = [train_oracle] + [main.loc[main["method"] == m, "oracle"].to_numpy()
                             for m in methods]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(data) + 1), ["measured\n(train)", *methods], fontsize=8)
    line = train_oracle.max() if target != "min" else train_oracle.min()
    ax.axhline(line, linestyle="--", color="black", linewidth=1,
               label="training " + ("minimum" if target == "min" else "maximum"))
    ax.set(ylabel="evaluation oracle score", title=f"designs scored by the oracle "
           f"(target: {target})")
    ax.legend(fontsize=8)
    save_png(fig, eval_dir / "oracle_scores.png")

    groups = list(dict.fromkeys(zip(scores["objective"], scores["method"], strict=True)))
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 1.6 * len(groups)), squeeze=False)
    for ax, (objective, method) in zip(axes[:, 0], groups, strict=True):
        sequences = scores.loc[(scores["objective"] == objective)
                               & (scores["method"] == method), "sequence"].tolist()
        counts = logomaker.alignment_to_matrix(sequences, to_type="information")
        logomaker.Logo(counts, ax=ax, color_scheme="classic")
        ax.set_ylim(0, 2)
        ax.set_ylabel("bits", fontsize=8)
        ax.set_title(f"{method} ({objective})", fontsize=9)
    save_png(fig, eval_dir / "logos.png")
