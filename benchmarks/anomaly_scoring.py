"""Anomaly-scoring throughput: AnoGAN per image vs batched (vs early-stopped) vs f-AnoGAN.

Same trained networks, same test images, one run; plus BraTS preprocessing throughput
(cold vs cached). Prints a table and writes JSON.

    python benchmarks/anomaly_scoring.py \
        --anogan results/pneumoniamnist/models/anogan/model.pt \
        --fanogan results/pneumoniamnist/models/fanogan/model.pt \
        --data results/pneumoniamnist/data --per-image 8

The per-image loop (Gamma = 500 steps each) over 1,000 images would take hours on 2 CPU
cores, so it is timed on the first ``--per-image`` images and its rate extrapolated; its
scores on that subset are compared with the batched scores of the same images.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medgen.data.imaging.prepare import load_split  # noqa: E402
from medgen.evaluate.anomaly import image_metrics  # noqa: E402
from medgen.models.anomaly import load_scorer  # noqa: E402


def test_images(data_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [load_split(data_dir / f"{s}.npz") for s in ("test", "val")
             if (data_dir / f"{s}.npz").exists()]
    images = np.concatenate([p["images"] for p in parts])[:n]
    y = np.concatenate([p["y"] for p in parts])[:n]
    return images, y


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def scoring_rows(args) -> tuple[list[dict], dict]:
    images, y = test_images(Path(args.data), args.n)
    anogan, fanogan = load_scorer(args.anogan), load_scorer(args.fanogan)
    anogan.steps = args.steps
    rows, extra = [], {}

    def row(name, n, seconds, scores=None, labels=None, note=""):
        r = {"method": name, "images": n, "seconds": seconds, "images_per_s": n / seconds,
             "note": note}
        if scores is not None:
            r.update(image_metrics(scores, labels))
        rows.append(r)
        return r

    # (1) AnoGAN one image at a time (the paper's loop), on a subset
    anogan.batch_size, anogan.tol = 1, 0.0
    subset = images[: args.per_image]
    single, t = timed(lambda: anogan.score(subset))
    row("anogan per-image", len(subset), t, note=f"subset of {len(subset)}, rate extrapolated")
    # (2) AnoGAN batched: each image its own z, all Gamma steps
    anogan.batch_size = args.batch
    batched, t = timed(lambda: anogan.score(images))
    row(f"anogan batched ({args.batch})", len(images), t, batched.score, y)
    extra["max_abs_diff_per_image_vs_batched"] = float(
        np.abs(single.score - batched.score[: len(subset)]).max())
    extra["max_rel_diff_per_image_vs_batched"] = float(
        (np.abs(single.score - batched.score[: len(subset)]) / np.abs(single.score)).max())
    # (3) AnoGAN batched with early stopping of converged images
    anogan.tol = args.tol
    early, t = timed(lambda: anogan.score(images))
    row(f"anogan batched + early stop (tol {args.tol})", len(images), t, early.score, y,
        note=f"mean steps {early.steps.mean():.0f} of {args.steps}")
    # (4) f-AnoGAN: one encoder pass
    fanogan.batch_size = args.batch
    enc, t = timed(lambda: fanogan.score(images))
    row("fanogan encoder", len(images), t, enc.score, y)
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup_vs_per_image"] = r["images_per_s"] / base
    return rows, extra


def preprocessing_rows(args) -> list[dict]:
    from medgen.config import fill_defaults, load_schema, load_yaml
    from medgen.data.imaging.prepare import load_volume, volume_dataset
    from medgen.data.imaging.sheet import read_sample_sheet

    cfg = fill_defaults(load_schema()["properties"]["imaging"],
                        load_yaml(args.brats_config)["imaging"])
    cfg["data_root"] = args.brats_root
    rows_sheet = read_sample_sheet(cfg["sample_sheet"], cfg["modalities"],
                                   data_root=args.brats_root)
    cache = Path(tempfile.mkdtemp(prefix="medgen_bench_cache_"))
    out = []
    try:
        for label in ("cold (decode + preprocess + write cache)", "cached (read cache)"):
            dataset = volume_dataset(rows_sheet, cfg, cache)
            _, t = timed(lambda: [load_volume(dataset, i) for i in range(len(rows_sheet))])
            out.append({"stage": label, "volumes": len(rows_sheet), "seconds": t,
                        "volumes_per_s": len(rows_sheet) / t})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anogan", default="results/pneumoniamnist/models/anogan/model.pt")
    parser.add_argument("--fanogan", default="results/pneumoniamnist/models/fanogan/model.pt")
    parser.add_argument("--data", default="results/pneumoniamnist/data")
    parser.add_argument("--n", type=int, default=1000, help="test images scored by every method")
    parser.add_argument("--per-image", type=int, default=8, help="subset for the per-image loop")
    parser.add_argument("--steps", type=int, default=500, help="Gamma")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--tol", type=float, default=0.001)
    parser.add_argument("--brats-config", default="config/datasets/brats_anomaly.yaml")
    parser.add_argument("--brats-root", default="../shared/data/imaging/brats")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/anomaly_scoring.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, extra = scoring_rows(args)
    print(f"{'method':45s} {'images':>6s} {'s':>8s} {'img/s':>9s} {'x loop':>8s} "
          f"{'AUROC':>6s}  note")
    for r in rows:
        print(f"{r['method']:45s} {r['images']:6d} {r['seconds']:8.1f} {r['images_per_s']:9.3f} "
              f"{r['speedup_vs_per_image']:8.1f} {r.get('auroc', float('nan')):6.3f}  {r['note']}")
    print(json.dumps(extra))
    prep = preprocessing_rows(args)
    for r in prep:
        print(f"BraTS preprocessing {r['stage']:42s} {r['volumes']} subjects {r['seconds']:7.1f} s"
              f" {r['volumes_per_s']:7.2f} subjects/s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from medgen import atomic, provenance

    atomic.write_json(out, {"scoring": rows, "consistency": extra, "preprocessing": prep,
                            "args": vars(args), "threads": torch.get_num_threads(),
                            "provenance": provenance.collect(vars(args))})


if __name__ == "__main__":
    main()
