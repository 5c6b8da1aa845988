"""The critical-difference diagram (Demšar 2006) of methods ranked over replicates, drawn
by ``scikit_posthocs.critical_difference_diagram``."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from medgen.report.plots import save_png  # noqa: E402


def draw_critical_difference(result: tuple[pd.Series, pd.DataFrame, float] | None,
                             path: str | os.PathLike, title: str) -> None:
    """Average ranks (rank 1 = best) with methods the Nemenyi post-hoc cannot tell apart
    joined by a bar; ``result`` as ``medgen.evaluate.replicates.critical_difference``
    returns it (ranks, Nemenyi p-values, Friedman p). None: a figure saying why there is
    no diagram (fewer than three methods or five complete replicates)."""
    import scikit_posthocs as sp

    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    if result is None:
        ax.text(0.5, 0.5, "no critical-difference diagram: it needs three or more methods\n"
                "and five or more replicates that every method completed",
                ha="center", va="center", fontsize=9)
        ax.axis("off")
    else:
        ranks, nemenyi, friedman = result
        sp.critical_difference_diagram(ranks, nemenyi, ax=ax,
                                       label_props={"fontsize": 8})
        title = f"{title}\nFriedman p = {friedman:.3g}; bars: Nemenyi p >= 0.05"
    ax.set_title(title, fontsize=8)
    save_png(fig, path)
