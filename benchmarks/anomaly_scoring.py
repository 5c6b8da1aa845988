"""Anomaly-scoring throughput: AnoGAN per image vs batched (vs early-stopped) vs f-AnoGAN.

Same trained networks, same test images, one run; plus BraTS preprocessing throughput
(cold vs cached). Prints a table and writes JSON.

    python benchmarks/anomaly_scoring.py

First it prepares PneumoniaMNIST at 64 x 64 into ``--work`` and trains the two networks
there for ``--train-epochs`` (AnoGAN: the paper preset, 512 channels at 4 x 4; f-AnoGAN: the
same DCGAN shape, channels_base 64), unless ``--work`` already holds them. Speed does not
depend on how long they trained; the AUROC column only checks that the faster scorers are
no worse.

The per-image loop (Gamma = 500 steps each) over 1,000 images would take hours on 2 CPU
cores, so it is timed on the first ``--per-image`` images and its rate extrapolated; its
scores on that subset are compared with the batched scores of the same images. It is timed
before and after the batched runs and the faster timing is the reference, so a neighbour's job
during one of them cannot inflate the speed-ups; the load average is recorded beside them.

On a GPU node (``--device auto`` takes one when visible, ``--device gpu`` insists) the networks
train and score there, and AnoGAN maps 256 images at once unless ``--batch`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medgen.tasks.anomaly.metrics import image_metrics  # noqa: E402
from medgen.tasks.anomaly.prepare import load_split  # noqa: E402
from medgen.tasks.anomaly.scorers import load_scorer  # noqa: E402
from medgen.train import inference_device  # noqa: E402


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


def trained_networks(args) -> tuple[Path, Path, Path]:
    """(data dir, AnoGAN model.pt, f-AnoGAN model.pt) under --work, trained if missing."""
    from medgen.config import load
    from medgen.registry import resolve_hparams
    from medgen.tasks.anomaly.prepare import prepare_images
    from medgen.train import train_model

    work = Path(args.work)
    data, models = work / "data", work / "models"
    paths = {family: models / family / "model.pt" for family in ("anogan", "fanogan")}
    if all(p.exists() for p in paths.values()):
        return data, paths["anogan"], paths["fanogan"]
    cfg = load(args.pneumoniamnist_config,
               {"imaging": {"image_size": 64, "data_root": args.pneumoniamnist_root}})
    splits = prepare_images(cfg["imaging"]["sample_sheet"], cfg["imaging"], cfg["seed"], data)
    training = {**cfg["training"], "max_epochs": args.train_epochs,
                "accelerator": "gpu" if args.torch_device == "cuda" else "cpu",
                "num_threads": args.threads or cfg["training"].get("num_threads")}
    hparams = {"anogan": resolve_hparams("anogan", "paper"),
               "fanogan": resolve_hparams("fanogan", "default", {"channels_base": 64})}
    for family, path in paths.items():
        if not path.exists():
            train_model(family, splits["train"], hparams[family], training, cfg["seed"],
                                path.parent)
    return data, paths["anogan"], paths["fanogan"]


def scoring_rows(args) -> tuple[list[dict], dict]:
    data, anogan_path, fanogan_path = trained_networks(args)
    images, y = test_images(data, args.n)
    anogan = load_scorer(anogan_path, args.torch_device)
    fanogan = load_scorer(fanogan_path, args.torch_device)
    anogan.steps = args.steps
    rows, extra = [], {}

    def row(name, n, seconds, scores=None, labels=None, note=""):
        r = {"method": name, "images": n, "seconds": seconds, "images_per_s": n / seconds,
             "note": note}
        if scores is not None:
            r.update(image_metrics(scores, labels))
        rows.append(r)
        return r

    # (1) AnoGAN one image at a time (the paper's loop), on a subset; timed again at the end
    # because a neighbour's job during either timing would slow it and inflate every ratio
    anogan.batch_size, anogan.tol = 1, 0.0
    subset = images[: args.per_image]
    single, t_before = timed(lambda: anogan.score(subset))
    # (2) AnoGAN batched: each image its own z, all Gamma steps
    anogan.batch_size = args.batch
    batched, t = timed(lambda: anogan.score(images))
    batched_row = dict(name=f"anogan batched ({args.batch} at once)", n=len(images), seconds=t,
                       scores=batched.score, labels=y)
    extra["max_abs_diff_per_image_vs_batched"] = float(
        np.abs(single.score - batched.score[: len(subset)]).max())
    extra["max_rel_diff_per_image_vs_batched"] = float(
        (np.abs(single.score - batched.score[: len(subset)]) / np.abs(single.score)).max())
    # (3) AnoGAN batched with early stopping of converged images
    anogan.tol = args.tol
    early, t_early = timed(lambda: anogan.score(images))
    # (1 again) the per-image loop; the faster of its two timings is the reference
    anogan.batch_size, anogan.tol = 1, 0.0
    _, t_after = timed(lambda: anogan.score(subset))
    extra["per_image_seconds_before_after"] = [t_before, t_after]
    row("anogan per-image", len(subset), min(t_before, t_after),
        note=f"subset of {len(subset)}, rate extrapolated; faster of 2 timings "
             f"({t_before:.1f} s, {t_after:.1f} s)")
    row(**batched_row)
    row(f"anogan batched + early stop (tol {args.tol})", len(images), t_early, early.score, y,
        note=f"mean steps {early.steps.mean():.0f} of {args.steps}")
    # (4) f-AnoGAN: one encoder pass
    fanogan.batch_size = args.encoder_batch
    enc, t = timed(lambda: fanogan.score(images))
    row("fanogan encoder", len(images), t, enc.score, y)
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup_vs_per_image"] = r["images_per_s"] / base
    return rows, extra


def preprocessing_rows(args) -> list[dict]:
    from medgen.config import fill_defaults, load_schema, load_yaml
    from medgen.data.imaging.sheet import read_sample_sheet
    from medgen.tasks.anomaly.prepare import load_volume, volume_dataset

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
            _, t = timed(lambda ds=dataset: [load_volume(ds, i) for i in range(len(rows_sheet))])
            out.append({"stage": label, "volumes": len(rows_sheet), "seconds": t,
                        "volumes_per_s": len(rows_sheet) / t})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="results/benchmark_anomaly_scoring",
                        help="prepared 64 x 64 images and the two trained networks")
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--pneumoniamnist-config", default="config/datasets/pneumoniamnist.yaml")
    parser.add_argument("--pneumoniamnist-root", default="../shared/data/imaging/pneumoniamnist")
    parser.add_argument("--n", type=int, default=1000, help="test images scored by every method")
    parser.add_argument("--per-image", type=int, default=8, help="subset for the per-image loop")
    parser.add_argument("--steps", type=int, default=500, help="Gamma")
    parser.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                        help="as training.accelerator: 'auto' takes a GPU when one is visible")
    # on 2 CPU cores 32-64 images at once is fastest (larger batches fall out of cache)
    parser.add_argument("--batch", type=int, default=None,
                        help="AnoGAN images mapped at once (default: 64 on CPU, 256 on GPU)")
    parser.add_argument("--encoder-batch", type=int, default=256, help="f-AnoGAN batch")
    parser.add_argument("--tol", type=float, default=0.001)
    parser.add_argument("--brats-config", default="config/datasets/brats_anomaly.yaml")
    parser.add_argument("--brats-root", default="../shared/data/imaging/brats")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/anomaly_scoring.json")
    args = parser.parse_args()
    if args.device == "gpu" and not torch.cuda.is_available():
        parser.error("--device gpu: torch sees no CUDA device here")
    args.torch_device = inference_device(args.device)
    args.batch = args.batch or (256 if args.torch_device == "cuda" else 64)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    print(f"device: {args.torch_device}, {torch.get_num_threads()} CPU threads")
    rows, extra = scoring_rows(args)
    # a load average well above --threads means the timings were shared with other jobs
    extra["load_average_1_5_15_before_after"] = [load_before, os.getloadavg()]
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
                            "device": (torch.cuda.get_device_name()
                                       if args.torch_device == "cuda" else "cpu"),
                            "provenance": provenance.collect(vars(args))})


if __name__ == "__main__":
    main()
