"""Sequence-design speed and memory: generator samples/s, design iterations/s, GAN epoch time
at the size of C. elegans chromosome X, peak memory. Prints a table and writes JSON.

    python benchmarks/sequence_design.py [--threads 2] [--out <json>]

Each measurement runs in its own process (spawned), so its peak resident memory
(``ru_maxrss``) is its own. Speed does not depend on training, so the networks are freshly
initialised with the shipped presets:

- ``sample``: dna_gan (default and paper presets) sampling 10,000 sequences of 50 bp;
- ``gan_epoch``: one training epoch of dna_gan on the first ``--train-windows`` windows of
  ce2 chrX (real data), its seconds per batch extrapolated to every N-free 50-bp window of
  the chromosome (counted from the FASTA: the chrX-size epoch);
- ``design``: activation maximisation (steps/s), joint GAN + predictor design (steps/s) and
  in-silico evolution (rounds/s) of 100 sequences of 75 bp (sort-seq's length) against the
  default predictor.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHRX = "sequence/ce2_chrX/ce2chrX.fa.gz"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sample(preset: str, threads: int, n: int = 10_000) -> dict:
    import torch

    from medgen.models.dna_gan.module import SequenceGenerator, build_networks
    from medgen.registry import resolve_hparams

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    generator, _ = build_networks(resolve_hparams("dna_gan", preset), 50)
    model = SequenceGenerator(generator)
    model.sample(100, seed=0)  # warm-up
    start = time.perf_counter()
    for seed in range(n // 1000):
        model.sample(1000, seed=seed)
    seconds = time.perf_counter() - start
    return {"measure": f"sample dna_gan '{preset}'", "n": n, "seconds": seconds,
            "rate": n / seconds, "unit": "sequences/s", "peak_mib": _peak_mib()}


def _gan_epoch(shared: str, windows: int, threads: int) -> dict:
    from medgen.data.sequence import read_fasta_windows
    from medgen.registry import resolve_hparams
    from medgen.tasks.sequence_design.prepare import prepare_windows
    from medgen.train import train_model

    fasta = Path(shared) / CHRX
    all_windows, _ = read_fasta_windows(fasta, 50)
    work = Path(tempfile.mkdtemp(prefix="medgen_bench_seq_"))
    data = prepare_windows(fasta, work / "data.npz", 50, max_windows=windows,
                           fractions=(1.0, 0.0, 0.0))
    hp = resolve_hparams("dna_gan", "default", {"max_epochs": 1})
    training = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
                "num_threads": threads, "progress_bar": False}
    start = time.perf_counter()
    train_model("dna_gan", data, hp, training, 0, work / "gan")
    seconds = time.perf_counter() - start
    batches = windows // hp["batch_size"]
    per_batch = seconds / batches
    chrx_batches = len(all_windows) * 0.8 // hp["batch_size"]  # the 80% training split
    return {"measure": "dna_gan 'default' epoch", "n": windows, "seconds": seconds,
            "rate": 1 / per_batch, "unit": "batches/s",
            "chrx_windows": len(all_windows),
            "chrx_epoch_minutes": per_batch * chrx_batches / 60, "peak_mib": _peak_mib()}


def _design(method: str, threads: int) -> dict:
    import torch

    from medgen.models.dna_gan.module import SequenceGenerator, build_networks
    from medgen.models.sequence_predictor.module import SequencePredictor, build_network
    from medgen.registry import resolve_hparams
    from medgen.tasks.sequence_design import design as dz

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_network(resolve_hparams("sequence_predictor", "default"))
    predictor = SequencePredictor(net, {"length": 75, "target_mean": 0.0, "target_sd": 1.0})
    objectives = [dz.predictor_objective(predictor)]
    n, steps = 100, 200
    start = time.perf_counter()
    if method == "activation_maximisation":
        dz.activation_maximisation(objectives, n, 75, steps=steps, seed=0)
    elif method == "joint":
        generator, _ = build_networks(resolve_hparams("dna_gan", "default"), 75)
        dz.joint_design(SequenceGenerator(generator), objectives, n, steps=steps, seed=0)
    else:
        steps = 50
        start_seqs = dz.random_sequences(n, 75, dict.fromkeys("ACGT", 0.25), 0).sequences
        start = time.perf_counter()
        dz.in_silico_evolution(objectives, start_seqs, rounds=steps, mutants=50, seed=0)
    seconds = time.perf_counter() - start
    unit = "rounds/s (100 seqs x 50 mutants)" if method == "evolution" else \
        "steps/s (100 seqs)"
    return {"measure": f"design: {method}", "n": steps, "seconds": seconds,
            "rate": steps / seconds, "unit": unit, "peak_mib": _peak_mib()}


def _run(target, *args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(target, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2]
                                                / "shared/data"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-windows", type=int, default=6400)
    parser.add_argument("--out", default="benchmarks/results/sequence_design.json")
    args = parser.parse_args()
    if not (Path(args.shared) / CHRX).is_file():
        sys.exit(f"{Path(args.shared) / CHRX} not found: pass --shared <shared/data>")
    rows = [_run(_sample, "default", args.threads), _run(_sample, "paper", args.threads),
            _run(_gan_epoch, args.shared, args.train_windows, args.threads)]
    rows += [_run(_design, m, args.threads)
             for m in ("activation_maximisation", "joint", "evolution")]
    print(f"{'measure':38s} {'rate':>10s} {'unit':34s} {'peak MiB':>9s}")
    for r in rows:
        print(f"{r['measure']:38s} {r['rate']:10.1f} {r['unit']:34s} {r['peak_mib']:9.0f}")
    gan = rows[2]
    print(f"dna_gan 'default': one epoch over ce2 chrX's {gan['chrx_windows']:,} windows "
          f"(80% train) ~ {gan['chrx_epoch_minutes']:.1f} min on {args.threads} threads")
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() \
        else []
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"threads": args.threads, "loadavg": load,
                                          "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
