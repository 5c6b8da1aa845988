"""Fixtures of the replicates tests: tidy tables with a known answer, a dry run's job table."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from medgen.evaluate import tidy

SEEDS = range(5)
SUBJECTS = [f"s{i:02d}" for i in range(20)]


def anomaly_tables(tmp_path, margin=0.1, noise=0.02):
    """Per seed: 'fanogan' beats 'pca' by ``margin`` on every subject (whole-split AUROC
    too); 'copy' scores exactly as 'fanogan'; 'coin' is pca minus 0.2."""
    paths = {}
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        base = rng.uniform(0.5, 0.7, len(SUBJECTS))
        per_subject = {"pca": base, "fanogan": base + margin, "copy": base + margin,
                       "coin": base - 0.2}
        shift = rng.normal(0, noise)
        rows = [pd.DataFrame({"method": m, "split": "test", "subject": SUBJECTS,
                              "auroc": v + shift}) for m, v in per_subject.items()]
        units = tidy.melt(pd.concat(rows), "subject", ["auroc"], unit="subject")
        whole = pd.concat(rows).groupby("method", sort=False)["auroc"].mean().reset_index()
        whole["split"] = "test"
        paths[seed] = tmp_path / f"seed{seed}.tsv"
        tidy.write([tidy.melt(whole, "all", ["auroc"]), units], paths[seed])
    return paths



def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from a dry run's job table."""
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
