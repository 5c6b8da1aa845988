"""How long aggregating replicates takes: 5 seeds x the four tasks, at the sizes of the
shipped dataset configs.

    python benchmarks/replicates.py [--seeds 5] [--repeats 3]

The tidy tables have the shapes the real evaluations write (methods, metrics, units):
TCGA Tybalt (4 methods, 173 test samples), BraTS anomaly (10 methods, val + test, 3 test
subjects), GPL96 expression inference (6 methods, 9,519 target genes, 5-fold CV) and
BraTS synthesis (8 methods, 4 subjects). Their values are drawn at random (seeded): the
aggregation's cost depends on the shapes, not on the numbers. Prints a table and writes
JSON (target: all four tasks under 30 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from medgen.evaluate import replicates, tidy

REPO = Path(__file__).resolve().parents[1]
# task -> (methods, whole-split metrics, unit kind, units, per-unit metrics, splits)
SHAPES = {
    "expression": (["tybalt", "pca", "ica", "nmf"],
                   ["test_mse", "test_bce_above_floor", "knn_balanced_accuracy_tumor_normal",
                    "knn_balanced_accuracy_cancer_type", "silhouette_tumor_normal"],
                   "sample", 173, ["test_mse"], ["test"]),
    "anomaly": (["anogan", "fanogan", "convae", "pca", "mean_intensity", "mask_fraction",
                 "max_intensity", "brightness_deviation", "contrast_deviation",
                 "sharpness_deviation"],
                ["auroc", "auprc", "pixel_auroc", "pixel_auprc", "dice_at_val_threshold",
                 "best_dice_upper_bound", "sensitivity", "specificity"],
                "subject", 3, ["auroc", "auprc", "pixel_auroc", "pixel_auprc"], ["val", "test"]),
    "expression_inference": (["ggan", "dgex", "ggan_l1_only", "ridge", "knn", "mean"],
                             ["mae", "median_pearson", "genes_better_than_ridge"],
                             "gene", 9519, ["mae", "pearson"], ["cv"]),
    "synthesis": (["context_gan_level1", "context_gan_level2", "generator_l1", "unet_l1",
                   "linear", "gradient_boosting", "constant", "source_copy"], [],
                  "subject", 4, ["psnr", "ssim", "mae", "gradient_error", "ssim_tumour",
                                 "ssim_non_tumour", "data_range"], ["test"]),
}


def write_tables(folder: Path, task: str, seeds: int) -> dict[int, Path]:
    methods, whole, unit_kind, n_units, per_unit, splits = SHAPES[task]
    paths = {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        parts = []
        for split in splits:
            if whole:
                frame = pd.DataFrame({"method": methods, "split": split,
                                      **{m: rng.uniform(size=len(methods)) for m in whole}})
                parts.append(tidy.melt(frame, "all", whole))
            units = [f"{unit_kind}{i:05d}" for i in range(n_units)]
            frame = pd.DataFrame({"method": np.repeat(methods, n_units), "split": split,
                                  "unit": units * len(methods),
                                  **{m: rng.uniform(size=n_units * len(methods))
                                     for m in per_unit}})
            parts.append(tidy.melt(frame, unit_kind, per_unit, unit="unit"))
        paths[seed] = folder / f"{task}_seed{seed}.tsv"
        tidy.write(parts, paths[seed])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/replicates.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tables = {task: write_tables(tmp, task, args.seeds) for task in SHAPES}
        for task, paths in tables.items():
            seconds = []
            for repeat in range(args.repeats):
                start = time.perf_counter()
                out = tmp / f"{task}_{repeat}"
                comparisons = replicates.aggregate(paths, task, out, out / "cd.png")
                seconds.append(time.perf_counter() - start)
            rows.append({"task": task, "rows_per_seed": len(tidy.read(paths[0])),
                         "comparisons": len(comparisons), "seconds": [round(s, 2) for s in
                                                                      seconds],
                         "median_s": round(statistics.median(seconds), 2)})
    total = round(sum(r["median_s"] for r in rows), 2)
    summary = {"seeds": args.seeds, "tasks": rows, "total_median_s": total, "target_s": 30.0,
               "meets_target": total < 30.0}
    print(f"{'task':>21} {'rows/seed':>10} {'comparisons':>12} {'median s':>9}")
    for r in rows:
        print(f"{r['task']:>21} {r['rows_per_seed']:>10} {r['comparisons']:>12} "
              f"{r['median_s']:>9}")
    print(f"{'all four':>21} {'':>10} {'':>12} {total:>9}   (target < 30 s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
