"""Expression-inference throughput: landmark profiles in GCTX -> inferred targets in GCTX,
streamed in chunks, for GGAN, D-GEX and ridge; plus training seconds per epoch.

    python benchmarks/expression_inference.py            # the measurement (~15 min, 2 cores)
    python benchmarks/expression_inference.py --quick    # smoke run (~1 min)

Inference (issue 18, "Performance"): N synthetic random-normal profiles of 943 landmarks
(the D-GEX set's size) are written to an input GCTX first, outside the timing. Each
(model, N) then runs in its own subprocess, so that peak RSS (``ru_maxrss``) is that
measurement's alone, and times the whole path: ``read_gctx_meta`` + ``iter_gctx_columns``
(``--chunk`` profiles at a time) -> ``GeneInferenceModel.predict`` (torch networks with their
standardisers) or ``Ridge.predict`` -> ``GctxWriter`` (9,520 targets, the D-GEX target set's
size; float32, uncompressed), including the final move into place. Weights are random:
speed does not depend on training. Peak RSS must not grow with N; the table prints the ratio.

The same subprocess then times a bare matmul chain of the network's layer shapes
(``torch.mm`` on a (batch, in) x (in, out) chain, batch = the chunk, float32, no bias, no
activation, no I/O) and each row reports its throughput as a fraction of that ceiling.

D-GEX's paper preset (3 x 9,000 units, ~0.5 GFLOP per profile) may not fit its large N in
``--max-seconds``; its rate at the small N then sets a smaller large N, and the row says so.

Peak RSS and glibc: with glibc's default (dynamic) mmap threshold the per-chunk buffers of
8-30 MB land on the heap after the first large ones are freed, and heap fragmentation lets
peak RSS creep up with N although nothing is kept. ``--mmap-threshold 1048576`` runs the
subprocesses with ``MALLOC_MMAP_THRESHOLD_`` fixed at 1 MiB, which keeps such buffers out of
the heap; compare the two to tell fragmentation from a leak.

Training: seconds per epoch of ``fit_in_memory`` on random-normal data at the GPL96 size
(46 training samples = one 5-fold training part, 943 -> 9,519) and the TCGA panel size
(1,400 samples, 94 -> 844), for GGAN 'default' and D-GEX 'default' with their batch sizes;
the first epoch (warm-up) is dropped and the median of the others is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_LANDMARKS = 943  # D-GEX landmark set
N_TARGETS = 9520  # D-GEX target set (9,519 of them are on GPL96; inference uses the full set)
GPL96_TRAIN = (46, 943, 9519)  # (samples, landmarks, targets): a 5-fold training part of 57
TCGA_TRAIN = (1400, 94, 844)  # 80% of 1,758 TCGA miRNA samples; 10% panel -> the rest
MODELS = [("ggan", "default"), ("ggan", "paper"), ("dgex", "default"), ("dgex", "paper"),
          ("ridge", "alpha=1")]


# ---------------------------------------------------------------- inference (subprocess)

def build_predictor(family: str, preset: str, seed: int):
    """(predict(x float32 (n, 943)) -> (n, 9520), layer shapes [(in, out), ...], setup s)."""
    import pandas as pd  # noqa: F401  (imported here so its cost is outside the timing too)
    import torch

    start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if family == "ridge":
        from sklearn.linear_model import Ridge

        # float32 in and out keeps sklearn's matmul in single precision, as the networks
        x = rng.normal(size=(256, N_LANDMARKS)).astype(np.float32)
        y = rng.normal(size=(256, N_TARGETS)).astype(np.float32)
        ridge = Ridge(alpha=1.0).fit(x, y)
        return ridge.predict, [(N_LANDMARKS, N_TARGETS)], time.perf_counter() - start
    from medgen.data.standardise import Standardiser
    from medgen.models.expression_inference import GeneInferenceModel

    if family == "ggan":
        from medgen.models.ggan import PRESETS
        from medgen.models.ggan.module import Generator

        hp = PRESETS[preset]
        network = Generator(N_LANDMARKS, N_TARGETS, list(hp["generator_hidden"]),
                            hp["dropout"])
    else:
        from medgen.models.dgex import PRESETS
        from medgen.models.dgex.module import DGEXNet

        network = DGEXNet.from_hparams(PRESETS[preset], N_LANDMARKS, N_TARGETS)
    shapes = [(m.in_features, m.out_features) for m in network.modules()
              if isinstance(m, torch.nn.Linear)]
    scaler = lambda n: Standardiser(rng.normal(size=n), rng.uniform(0.5, 2.0, n))  # noqa: E731
    model = GeneInferenceModel(network, [f"lm{i}" for i in range(N_LANDMARKS)],
                               [f"tg{i}" for i in range(N_TARGETS)],
                               scaler(N_LANDMARKS), scaler(N_TARGETS))
    return model.predict, shapes, time.perf_counter() - start


def stream(predict, in_path: Path, out_path: Path, chunk: int) -> dict[str, float]:
    """The timed path: GCTX in by chunks -> predict -> GCTX out by chunks (seconds per part)."""
    import pandas as pd

    from medgen.data.io.gctx_stream import GctxWriter, iter_gctx_columns, read_gctx_meta

    times = {"read": 0.0, "predict": 0.0, "write": 0.0}
    start = time.perf_counter()
    _, col_meta = read_gctx_meta(in_path)  # samples' metadata are carried over to the output
    targets = pd.DataFrame(index=[f"tg{i}" for i in range(N_TARGETS)])
    with GctxWriter(out_path, targets, col_meta,
                    attrs={"note": "benchmark: random weights"}) as out:
        chunks = iter_gctx_columns(in_path, chunk)
        done = 0
        while True:
            t0 = time.perf_counter()
            item = next(chunks, None)
            t1 = time.perf_counter()
            times["read"] += t1 - t0
            if item is None:
                break
            y = predict(item[1])
            t2 = time.perf_counter()
            out.write(done, y)
            times["write"] += time.perf_counter() - t2
            times["predict"] += t2 - t1
            done += len(item[0])
        t_close = time.perf_counter()
    times["write"] += time.perf_counter() - t_close  # closing and moving the file into place
    times["total"] = time.perf_counter() - start
    times["profiles"] = done
    return times


def matmul_chain(shapes: list[tuple[int, int]], batch: int, n_profiles: int) -> float:
    """Profiles/s of the bare chain x @ W1 @ W2 ... (float32 torch.mm, no bias, no activation)
    over ``n_profiles`` (rounded up to whole batches), after one warm-up batch."""
    import torch

    weights = [torch.randn(i, o) * 0.01 for i, o in shapes]
    x = torch.randn(batch, shapes[0][0])

    def once():
        h = x
        for w in weights:
            h = torch.mm(h, w)
        return h

    once()
    n_batches = max(1, -(-n_profiles // batch))
    start = time.perf_counter()
    for _ in range(n_batches):
        once()
    return n_batches * batch / (time.perf_counter() - start)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One (model, N) measurement; runs in its own process (see the module docstring)."""
    import torch

    from medgen.tasks.expression_inference.infer import bounded_heap

    bounded_heap()  # as medgen.tasks.expression_inference.infer.infer_targets does
    torch.set_num_threads(spec["threads"])
    predict, shapes, setup_s = build_predictor(spec["family"], spec["preset"], spec["seed"])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    times = stream(predict, Path(spec["input"]), Path(spec["output"]), spec["chunk"])
    result = {**spec, **times, "setup_s": setup_s, "shapes": shapes,
              "profiles_per_s": times["profiles"] / times["total"],
              "rss_after_setup_mib": rss_before,
              # Linux reports ru_maxrss in KiB; measured before the chain allocates anything
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "output_bytes": Path(spec["output"]).stat().st_size,
              "load_1min_after": os.getloadavg()[0]}  # > threads: shared with other jobs
    Path(spec["output"]).unlink()
    if spec["chain_profiles"]:
        batch = min(spec["chunk"], 4096)  # GeneInferenceModel's INFERENCE_BATCH caps a pass
        result["chain_batch"] = batch
        result["chain_profiles_per_s"] = matmul_chain(shapes, batch, spec["chain_profiles"])
    return result


# ---------------------------------------------------------------- training (subprocess)

def epoch_seconds(family: str, preset: str, size: tuple[int, int, int], epochs: int,
                  threads: int, seed: int) -> list[float]:
    """Wall seconds of each epoch of ``fit_in_memory`` on random-normal data of ``size``."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from medgen.train import fit_in_memory

    if family == "ggan":
        from medgen.models.ggan import PRESETS
        from medgen.models.ggan.plan import GGANPlan as Plan
    else:
        from medgen.models.dgex import PRESETS
        from medgen.models.dgex.plan import DGEXPlan as Plan
    hp = PRESETS[preset]
    n, n_landmarks, n_targets = size
    generator = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(n, n_landmarks, generator=generator),
                         torch.randn(n, n_targets, generator=generator))
    # as the cross-validation harness: shuffled, full batches once there is more than one
    loader = DataLoader(data, batch_size=hp["batch_size"], shuffle=True,
                        drop_last=n > hp["batch_size"])
    plan = Plan(hp, n_landmarks, n_targets)
    marks: list[float] = []
    # Lightning calls the module's epoch hooks by attribute: wrap them to time each epoch
    for hook in ("on_train_epoch_start", "on_train_epoch_end"):
        original = getattr(plan, hook)

        def timed(*a, _original=original, **k):
            marks.append(time.perf_counter())
            return _original(*a, **k)

        object.__setattr__(plan, hook, timed)
    fit_in_memory(plan, loader, epochs, seed, num_threads=threads)
    return [end - start for start, end in zip(marks[::2], marks[1::2], strict=True)]


def training_child(spec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for family, preset in (("ggan", "default"), ("dgex", "default")):
        for label, size in (("GPL96", GPL96_TRAIN), ("TCGA panel", TCGA_TRAIN)):
            epochs = epoch_seconds(family, preset, size, spec["epochs"], spec["threads"],
                                   spec["seed"])
            rows.append({"model": f"{family} {preset}", "data": label, "samples": size[0],
                         "landmarks": size[1], "targets": size[2], "epochs": epochs,
                         "s_per_epoch": float(np.median(epochs[1:] or epochs))})
    return rows


# ---------------------------------------------------------------- parent

def run_child(kind: str, spec: dict[str, Any], mmap_threshold: int | None = None) -> Any:
    """Run ``kind`` ('infer' or 'train') in a fresh interpreter; its last stdout line is JSON."""
    env = dict(os.environ)
    if mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)  # glibc reads it at start-up
    proc = subprocess.run([sys.executable, __file__, f"--{kind}-child", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} subprocess for {spec} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_input(path: Path, n: int, chunk: int, seed: int) -> float:
    """A random-normal landmark GCTX of n profiles, written in chunks; seconds taken."""
    import pandas as pd

    from medgen.data.io.gctx_stream import GctxWriter

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(index=[f"lm{i}" for i in range(N_LANDMARKS)])
    cols = pd.DataFrame({"cell_id": np.array(["A375", "MCF7", "PC3"])[np.arange(n) % 3]},
                        index=[f"profile{i:07d}" for i in range(n)])
    with GctxWriter(path, rows, cols) as out:
        for begin in range(0, n, chunk):
            size = min(chunk, n - begin)
            out.write(begin, rng.standard_normal((size, N_LANDMARKS), dtype=np.float32))
    return time.perf_counter() - start


def inference_rows(args, work: Path) -> list[dict[str, Any]]:
    inputs: dict[int, Path] = {}

    def input_of(n: int) -> Path:
        if n not in inputs:
            inputs[n] = work / f"landmarks_{n}.gctx"
            print(f"  (writing input: {n} profiles, {write_input(inputs[n], n, args.chunk, 0):.1f}"
                  " s, untimed)", flush=True)
        return inputs[n]

    rows = []
    small, large = args.n
    for family, preset in args.model_list:
        sizes = [small, large]
        note = ""
        for i in range(2):
            n = sizes[i]
            spec = {"family": family, "preset": preset, "n": n, "input": str(input_of(n)),
                    "output": str(work / f"{family}_{preset}_{n}.gctx"), "chunk": args.chunk,
                    "threads": args.threads, "seed": 0,
                    "chain_profiles": min(n, args.chain_profiles) if i == 0 else 0}
            r = run_child("infer", spec, args.mmap_threshold)
            r["model"] = f"{family} {preset}"
            if i == 1:
                r.update({k: rows[-1][k] for k in ("chain_profiles_per_s", "chain_batch")})
            r["fraction_of_chain"] = r["profiles_per_s"] / r["chain_profiles_per_s"]
            r["note"] = note
            rows.append(r)
            print(f"  {r['model']:14s} N={n:7d} {r['total']:7.1f} s "
                  f"{r['profiles_per_s']:8.0f} profiles/s, peak RSS {r['peak_rss_mib']:.0f} MiB",
                  flush=True)
            if i == 0:
                projected = large / r["profiles_per_s"]
                if projected > args.max_seconds:
                    # the large N that fits the budget, in whole chunks, at least 2 x small
                    fit = int(r["profiles_per_s"] * args.max_seconds) // args.chunk * args.chunk
                    sizes[1] = max(2 * small, min(large, fit))
                    note = (f"N={sizes[1]} not {large}: {large} projected at {projected:.0f} s "
                            f"> --max-seconds {args.max_seconds:.0f}")
        rows[-1]["rss_ratio_large_vs_small"] = rows[-1]["peak_rss_mib"] / rows[-2]["peak_rss_mib"]
    for path in inputs.values():
        path.unlink(missing_ok=True)
    return rows


def print_tables(rows: list[dict[str, Any]], training: list[dict[str, Any]], args) -> None:
    print(f"\nInference, 943 -> {N_TARGETS} genes, {args.threads} threads, chunks of "
          f"{args.chunk} profiles (GCTX in -> predict -> GCTX out, float32, uncompressed)")
    print(f"{'model':14s} {'hidden':>16s} {'N':>7s} {'s':>7s} {'prof/s':>8s} {'read':>6s} "
          f"{'pred':>6s} {'write':>6s} {'RSS MiB':>8s} {'chain/s':>8s} {'frac':>5s} {'load':>5s}")
    for r in rows:
        hidden = "x".join(str(o) for _, o in r["shapes"][:-1]) or "-"
        print(f"{r['model']:14s} {hidden:>16s} {r['profiles']:7d} {r['total']:7.1f} "
              f"{r['profiles_per_s']:8.0f} {r['read']:6.1f} {r['predict']:6.1f} "
              f"{r['write']:6.1f} {r['peak_rss_mib']:8.0f} {r['chain_profiles_per_s']:8.0f} "
              f"{r['fraction_of_chain']:5.2f} {r['load_1min_after']:5.1f}"
              + (f"  RSS x{r['rss_ratio_large_vs_small']:.3f} vs N={rows[rows.index(r) - 1]['n']}"
                 if "rss_ratio_large_vs_small" in r else "")
              + (f"  {r['note']}" if r["note"] else ""))
    print("read/pred/write: seconds in iter_gctx_columns / predict (incl. standardisation) / "
          "GctxWriter; chain/s: bare torch.mm chain of the same shapes (no bias, no "
          "activation, no I/O); frac = prof/s / chain/s; load: 1-min load average after the run "
          f"({os.cpu_count()} CPUs)")
    print(f"\nTraining (fit_in_memory, {args.threads} threads, random-normal data), seconds "
          "per epoch: median of epochs 2..k")
    print(f"{'model':14s} {'data':11s} {'samples':>7s} {'genes':>11s} {'s/epoch':>8s}  epochs (s)")
    for t in training:
        genes = f"{t['landmarks']}->{t['targets']}"
        print(f"{t['model']:14s} {t['data']:11s} {t['samples']:7d} {genes:>11s} "
              f"{t['s_per_epoch']:8.3f}  " + " ".join(f"{e:.2f}" for e in t["epochs"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs=2, default=[10_000, 100_000],
                        metavar=("SMALL", "LARGE"), help="profiles per inference run")
    # 2,048 rows keep torch.mm near its peak on 2 cores while a chunk's buffers (float64
    # standardisation of 9,520 targets included) stay around 0.3 GiB
    parser.add_argument("--chunk", type=int, default=2048, help="profiles per GCTX chunk")
    parser.add_argument("--chain-profiles", type=int, default=10_000,
                        help="profiles pushed through each bare matmul chain")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="time budget of one large-N run (D-GEX paper drops its N to fit)")
    parser.add_argument("--train-epochs", type=int, default=5)
    parser.add_argument("--mmap-threshold", type=int, default=None, metavar="BYTES",
                        help="run the inference subprocesses with MALLOC_MMAP_THRESHOLD_ fixed "
                             "(default: glibc's dynamic threshold)")
    parser.add_argument("--models", nargs="*", default=None, metavar="FAMILY:PRESET",
                        help="only these inference rows (e.g. ggan:default ridge:alpha=1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=None,
                        help="folder for the temporary GCTX files (default: the system temp)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N 1,000 / 4,000, chunks of 512, 2 epochs")
    parser.add_argument("--out", default="benchmarks/results/expression_inference.json")
    parser.add_argument("--infer-child", help=argparse.SUPPRESS)
    parser.add_argument("--train-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.infer_child:
        print(json.dumps(child(json.loads(args.infer_child))))
        return
    if args.train_child:
        print(json.dumps(training_child(json.loads(args.train_child))))
        return
    args.model_list = (MODELS if not args.models
                       else [tuple(m.split(":", 1)) for m in args.models])
    if args.quick:
        args.n, args.chunk, args.chain_profiles, args.train_epochs = [1000, 4000], 512, 1000, 2
        args.max_seconds = 20.0
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="medgen_bench_expr_", dir=args.work))
    start = time.perf_counter()
    try:
        print(f"inference: {len(args.model_list)} models x N={args.n}, one subprocess each",
              flush=True)
        rows = inference_rows(args, work)
        print("training ...", flush=True)
        training = run_child("train", {"epochs": args.train_epochs, "threads": args.threads,
                                       "seed": 0})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # a load average well above --threads means the timings were shared with other jobs
    load = [load_before, os.getloadavg()]
    print_tables(rows, training, args)
    print(f"\nload average (1, 5, 15 min) before / after: {load[0]} / {load[1]}; "
          f"wall {time.perf_counter() - start:.0f} s")
    from medgen import atomic, provenance

    atomic.write_json(Path(args.out), {
        "inference": rows, "training": training, "n_landmarks": N_LANDMARKS,
        "n_targets": N_TARGETS, "load_average_1_5_15_before_after": load,
        "args": vars(args), "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "provenance": provenance.collect(vars(args))})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
