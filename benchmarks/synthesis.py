"""Synthesis (context_gan) throughput: whole-volume sliding-window inference per auto-context
level on one real BraTS volume, peak RSS, and training patches/s.

    python benchmarks/synthesis.py                      # default (2 levels) + paper (level 1)
    python benchmarks/synthesis.py --presets default paper:2   # both levels of both

Issue 17, "Performance": whole-volume inference of one 240 x 240 x 155 BraTS volume on 2 CPU
cores in <= 20 s per level, windows outside the brain mask skipped.

1. One test subject's pair (``--subject``, default the first test subject of the sample
   sheet; T2 -> FLAIR as in ``config/datasets/brats_synthesis.yaml``) is read and normalised
   as ``prepare_synthesis`` does (``load_pair`` + ``normalise_pair``, in-mask 99th
   percentile), but not cropped: the timed volume is the full 240 x 240 x 155 grid. (The
   workflow infers on the mask's box plus 8 voxels; with empty windows skipped the two
   cost about the same, as the window counts in the table show.)
2. For each preset, an UNTRAINED generator of the preset's architecture (seeded random
   weights; speed does not depend on training) runs the auto-context cascade with
   ``Synthesiser.predict``: MONAI's ``SlidingWindowInferer`` with the config's window and
   overlap, Gaussian blending, windows without a mask voxel not run. Level k gets the
   source plus level k-1's output, so level 2 has 2 input channels. A counter around the
   network records how many windows it ran.
3. Training: a few Lightning steps of the preset's plan (``ContextGANPlan``: one D and one G
   update per batch) on real patches of one training subject (``PatchDataset``, the
   workflow's in-mask patch sampler, preset batch size and patch size); the first
   ``--warmup`` steps are dropped; patches/s counts the patches of the timed steps,
   including patch cropping.

CPU seconds (``time.process_time``, all threads) are printed beside wall seconds: when
another job shares the cores (load average above ``--threads``) the wall time grows but the
CPU time does not, and CPU s / threads estimates the wall time on idle cores.

Peak RSS is ``ru_maxrss`` of this process after each phase (it only grows: inference runs
first, preset by preset, so each inference row holds that preset's peak so far). The load
average is recorded: above the thread count the timings were shared with other jobs.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medgen.models.synthesis import Synthesiser  # noqa: E402
from medgen.tasks.synthesis.pairs import SynthesisPair, load_pair, read_pairs  # noqa: E402
from medgen.tasks.synthesis.prepare import crop, mask_box, normalise_pair  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class CountingNetwork(torch.nn.Module):
    """The generator, counting the windows it is run on."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network
        self.margin = network.margin
        self.windows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.windows += len(x)
        return self.network(x)


def synthesis_config(path: str, data_root: str | None) -> dict[str, Any]:
    from medgen.config import fill_defaults, load_schema, load_yaml

    cfg = fill_defaults(load_schema()["properties"]["synthesis"], load_yaml(path)["synthesis"])
    if data_root:
        cfg["data_root"] = data_root
    return cfg


def normalised(pair: SynthesisPair, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """One pair on its full grid, normalised as ``prepare_synthesis`` does."""
    volume = load_pair(pair, cfg)
    arrays = normalise_pair(volume, cfg["normalisation"], cfg.get("ct_window"),
                            cfg.get("target_normalisation") or None)
    return {"source": arrays["source"], "target": arrays["target"],
            "mask": volume.mask[None]}


def untrained_synthesiser(preset: str, channels: int, seed: int) -> Synthesiser:
    from medgen.models.context_gan.module import build_networks
    from medgen.registry import resolve_hparams

    torch.manual_seed(seed)
    generator, _ = build_networks(resolve_hparams("context_gan", preset), channels)
    return Synthesiser(CountingNetwork(generator).eval(), generator.margin,
                       {"channels": channels})


def inference_rows(preset: str, volume: dict[str, np.ndarray], levels: int,
                   inference: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Seconds per level of the cascade on ``volume``'s full grid."""
    source, mask = volume["source"], volume["mask"][0]
    rows, previous = [], None
    for level in range(1, levels + 1):
        inputs = source if previous is None else np.concatenate([source, previous[None]])
        model = untrained_synthesiser(preset, inputs.shape[0], seed + level)
        start, cpu = time.perf_counter(), time.process_time()
        previous = model.predict(inputs, mask, window=inference["window"],
                                 overlap=inference["overlap"])
        seconds = time.perf_counter() - start
        rows.append({"preset": preset, "level": level, "channels": int(inputs.shape[0]),
                     "shape": list(mask.shape), "seconds": seconds,
                     "cpu_seconds": time.process_time() - cpu,
                     "windows_run": model.network.windows,
                     "windows_total": total_windows(mask.shape, model, inference),
                     "peak_rss_mib": peak_rss_mib(), "load_1min": os.getloadavg()[0]})
    return rows


def total_windows(shape: tuple[int, ...], model: Synthesiser, inference: dict[str, Any]) -> int:
    """Windows the inferer visits, run or skipped: MONAI's scan of the padded volume (step
    ``int(window * (1 - overlap))``, the last window flush with the far edge), with the
    window and overlap ``Synthesiser.predict`` settles on."""
    m = model.margin
    window = inference["window"] if inference["window"] > 2 * m + 4 else 2 * m + 16
    overlap = max(inference["overlap"], min(2 * m / window + 1e-3, 0.95))
    step = max(int(window * (1 - overlap)), 1)
    return int(np.prod([-(-max(s + 2 * m - window, 0) // step) + 1 for s in shape]))


def training_row(preset: str, volume: dict[str, np.ndarray], steps: int, warmup: int,
                 seed: int) -> dict[str, Any]:
    """Patches/s of the preset's Lightning plan on real in-mask patches."""
    import lightning as L
    from torch.utils.data import DataLoader

    from medgen.models.context_gan.plan import ContextGANPlan
    from medgen.registry import resolve_hparams
    from medgen.tasks.synthesis.loaders import PatchDataset

    hp = resolve_hparams("context_gan", preset)
    batch, patch = int(hp["batch_size"]), int(hp["patch_size"])
    dataset = PatchDataset([volume], patch, batch * (steps + warmup), seed)
    loader = DataLoader(dataset, batch_size=batch, shuffle=False)
    starts: list[float] = []
    ends: list[float] = []

    class Clock(L.Callback):
        def on_train_batch_start(self, *args, **kwargs) -> None:
            starts.append(time.perf_counter())

        def on_train_batch_end(self, *args, **kwargs) -> None:
            ends.append(time.perf_counter())

    torch.manual_seed(seed)
    plan = ContextGANPlan(hp, channels=int(volume["source"].shape[0]), patch_size=patch)
    # one epoch of steps + warmup batches (max_steps counts D and G optimiser steps apart)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Clock()])
    cpu = time.process_time()
    trainer.fit(plan, loader)
    cpu = time.process_time() - cpu  # the whole fit, warm-up and set-up included
    seconds = ends[-1] - starts[warmup]  # patch cropping between steps included
    timed = len(ends) - warmup
    return {"preset": preset, "batch_size": batch, "patch_size": patch, "steps": timed,
            "seconds": seconds, "patches_per_s": timed * batch / seconds,
            "cpu_seconds_whole_fit": cpu,
            "peak_rss_mib": peak_rss_mib(), "load_1min": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/datasets/brats_synthesis.yaml")
    parser.add_argument("--data-root", default=None,
                        help="BraTS subject folders (default: the config's data_root)")
    parser.add_argument("--subject", default=None,
                        help="inference subject (default: the first test subject)")
    parser.add_argument("--presets", nargs="+", default=["default", "paper:1"],
                        help="PRESET or PRESET:LEVELS (levels timed; default: the preset's "
                             "own K); 'paper' times level 1 by default to stay within ~3 min")
    parser.add_argument("--train-steps", type=int, default=6, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first training steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/synthesis.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)  # hints about loggers and SLURM
    warnings.filterwarnings("ignore", module="lightning")
    from medgen.registry import resolve_hparams

    cfg = synthesis_config(args.config, args.data_root)
    pairs = read_pairs(cfg["sample_sheet"], cfg["sources"], cfg["target"], cfg["data_root"],
                       cfg["validation_subject"])
    test = [p for p in pairs if p.split == "test"]
    chosen = [p for p in pairs if p.subject == args.subject] if args.subject else test[:1]
    if not chosen:
        parser.error(f"--subject {args.subject!r} is not in {cfg['sample_sheet']}")
    trainee = next(p for p in pairs if p.split == "train")
    load_before = os.getloadavg()
    print(f"{torch.get_num_threads()} CPU threads; untrained networks of each preset's "
          "architecture (speed does not depend on training)")
    start = time.perf_counter()
    volume = normalised(chosen[0], cfg)
    read_seconds = time.perf_counter() - start
    rss_volume = peak_rss_mib()
    print(f"inference subject {chosen[0].subject} ({'+'.join(cfg['sources'])} -> "
          f"{cfg['target']}, {cfg['normalisation']}), grid {volume['mask'].shape[1:]}, "
          f"{int(volume['mask'].sum())} mask voxels; read + normalised in {read_seconds:.1f} s")

    presets = {}
    for item in args.presets:
        preset, _, levels = item.partition(":")
        presets[preset] = int(levels or resolve_hparams("context_gan", preset)[
            "auto_context_levels"])
    inference = []
    for preset, levels in presets.items():
        inference += inference_rows(preset, volume, levels, cfg["inference"], args.seed)
    print(f"\nwhole-volume inference (window {cfg['inference']['window']}, overlap "
          f"{cfg['inference']['overlap']}, Gaussian blending; target <= 20 s per level)")
    print(f"{'preset':8s} {'level':>5s} {'in ch':>5s} {'s/volume':>9s} {'CPU s':>7s} "
          f"{'windows run':>12s} {'peak RSS MiB':>13s} {'load':>5s}")
    for r in inference:
        print(f"{r['preset']:8s} {r['level']:5d} {r['channels']:5d} {r['seconds']:9.1f} "
              f"{r['cpu_seconds']:7.1f} "
              f"{r['windows_run']:>5d} of {r['windows_total']:<4d} {r['peak_rss_mib']:13.0f} "
              f"{r['load_1min']:5.2f}")

    box = mask_box(volume["mask"][0])
    del volume  # training reads another subject: never more than one volume's arrays at once
    tv = normalised(trainee, cfg)
    tv = {k: crop(v, mask_box(tv["mask"][0])) for k, v in tv.items()}  # as prepared
    training = [training_row(p, tv, args.train_steps, args.warmup, args.seed) for p in presets]
    print(f"\ntraining (level 1, real in-mask patches of {trainee.subject}; "
          f"{args.warmup} warm-up steps dropped)")
    print(f"{'preset':8s} {'batch':>5s} {'patch':>5s} {'steps':>5s} {'s':>7s} "
          f"{'patches/s':>10s} {'peak RSS MiB':>13s} {'load':>5s}")
    for r in training:
        print(f"{r['preset']:8s} {r['batch_size']:5d} {r['patch_size']:5d} {r['steps']:5d} "
              f"{r['seconds']:7.1f} {r['patches_per_s']:10.1f} {r['peak_rss_mib']:13.0f} "
              f"{r['load_1min']:5.2f}")

    from medgen import atomic, provenance

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out, {
        "inference": inference, "training": training,
        "untrained_networks": True,  # random weights of each preset's architecture
        "subject": chosen[0].subject, "training_subject": trainee.subject,
        "mask_box": box, "rss_after_reading_volume_mib": rss_volume,
        "read_normalise_seconds": read_seconds, "inference_settings": cfg["inference"],
        "load_average_1_5_15_before_after": [load_before, os.getloadavg()],
        "threads": torch.get_num_threads(), "args": vars(args),
        "provenance": provenance.collect(vars(args))})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
