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
