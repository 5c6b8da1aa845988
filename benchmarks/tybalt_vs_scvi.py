"""Training speed and memory: medgen's Tybalt (paper preset) vs scvi-tools' SCVI, side by side.

    python benchmarks/tybalt_vs_scvi.py [--epochs 50] \
        [--out benchmarks/results/tybalt_vs_scvi.json]

Data (built here, seeded; NOT a real data set): the paper's scale, 10,459 samples x 5,000
features. The real TCGA BRCA + PRAD miRNA table (1,758 samples x 1,881 miRNAs) is library-size
normalised (CPM), log1p'd and min-max scaled to [0, 1]; then rows are resampled with
replacement to 10,459 samples and columns resampled with replacement to 5,000 features, and
Gaussian noise (sd 0.05) is added before clipping to [0, 1], so that no two features or
samples are exact copies. Both tools train on the same 90% (9,413 samples) and validate on the
same 10% every epoch (the paper held out 10%).

Each tool runs in its own subprocess so that peak RSS (ru_maxrss) is per tool:
- medgen: ``train_model('tybalt', ...)``, 'paper' preset (Lightning via ``medgen.train.fit``,
  including its per-epoch checkpoint writing, CSV logging and the final model.pt);
- scvi-tools: ``SCVI(n_latent=100, n_hidden=100, n_layers=1, gene_likelihood='normal')``,
  ``train(batch_size=50, train_size=0.9, check_val_every_n_epoch=1)``, no checkpoints
  (scvi-tools writes none by default).
Both use the same torch thread count. Seconds per epoch are the mean over the epochs of the
time from one epoch start to the next (training + validation + checkpoint), measured by a
callback; "train wall" is the whole training call including Lightning setup.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The shared data folder sits beside the checkouts; MEDGEN_SHARED_DATA overrides it.
DATA_DIR = Path(os.environ.get("MEDGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
N_SAMPLES, N_FEATURES = 10_459, 5_000  # Tybalt's TCGA pan-cancer matrix
NOISE_SD = 0.05
VAL_FRACTION = 0.1
SEED = 0


def tcga_dir() -> Path:
    path = DATA_DIR / "expression" / "tcga_mirna"
    if not path.exists():
        sys.exit(f"TCGA miRNA tables not found in {path} (set MEDGEN_SHARED_DATA)")
    return path


def build_data(path: Path) -> dict:
    """Write the resampled paper-scale h5ad; return a description of how it was made."""
    import anndata as ad
    import pandas as pd

    tables = [pd.read_parquet(tcga_dir() / f"{c}.parquet") for c in ("BRCA", "PRAD")]
    counts = pd.concat(tables).to_numpy(dtype=np.float64)
    x = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e6)
    lo, hi = x.min(axis=0), x.max(axis=0)
    x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    rng = np.random.default_rng(SEED)
    rows = rng.integers(0, x.shape[0], N_SAMPLES)
    cols = rng.integers(0, x.shape[1], N_FEATURES)
    x = x[np.ix_(rows, cols)] + rng.normal(0, NOISE_SD, (N_SAMPLES, N_FEATURES))
    x = np.clip(x, 0, 1).astype(np.float32)
    split = np.where(rng.permutation(N_SAMPLES) < round(VAL_FRACTION * N_SAMPLES), "val", "train")
    obs = pd.DataFrame({"split": split}, index=[f"s{i}" for i in range(N_SAMPLES)])
    var = pd.DataFrame(index=[f"f{j}" for j in range(N_FEATURES)])
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.uns["provenance_json"] = json.dumps({"benchmark": "resampled TCGA miRNA"})
    adata.write_h5ad(path)
    return {
        "source": "resampled from real TCGA BRCA+PRAD miRNA (CPM, log1p, min-max)",
        "real_shape": list(counts.shape),
        "n_samples": N_SAMPLES,
        "n_features": N_FEATURES,
        "rows": "resampled with replacement",
        "features": "real miRNA columns resampled with replacement (only 1,881 exist)",
        "noise_sd": NOISE_SD,
        "n_train": int((split == "train").sum()),
        "n_val": int((split == "val").sum()),
    }


# -- workers (run in subprocesses) ------------------------------------------------------------
def _epoch_timer():
    import lightning as L

    class EpochTimer(L.Callback):
        """Start time of every epoch and the end of fit: wall time per epoch."""

        def __init__(self) -> None:
            self.starts: list[float] = []
            self.end = 0.0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.starts.append(time.perf_counter())

        def on_fit_end(self, trainer, pl_module) -> None:
            self.end = time.perf_counter()

        def per_epoch(self) -> list[float]:
            marks = [*self.starts, self.end]
            return [b - a for a, b in zip(marks, marks[1:])]

    return EpochTimer()


def run_medgen(data: Path, epochs: int, threads: int, work: Path) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(REPO))
    from medgen.registry import resolve_hparams
    from medgen.train import train_model

    hparams = resolve_hparams("tybalt", "paper")
    training = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": epochs,
                "num_threads": threads, "progress_bar": False}
    timer = _epoch_timer()
    start = time.perf_counter()
    train_model("tybalt", data, hparams, training, SEED, work / "medgen", callbacks=[timer])
    wall = time.perf_counter() - start
    return {"train_wall_s": wall, "epoch_s": timer.per_epoch(),
            "checkpoints": "written every epoch (kept), plus model.pt"}


def run_scvi(data: Path, epochs: int, threads: int, work: Path) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import anndata as ad
    import scvi
    import torch

    torch.set_num_threads(threads)
    scvi.settings.seed = SEED
    timer = _epoch_timer()
    start = time.perf_counter()
    adata = ad.read_h5ad(data)
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata, n_hidden=100, n_latent=100, n_layers=1,
                            gene_likelihood="normal")
    model.train(max_epochs=epochs, batch_size=50, train_size=1 - VAL_FRACTION,
                accelerator="cpu", devices=1, check_val_every_n_epoch=1,
                enable_progress_bar=False, callbacks=[timer])
    wall = time.perf_counter() - start
    return {"train_wall_s": wall, "epoch_s": timer.per_epoch(), "checkpoints": "none"}


WORKERS = {"medgen": run_medgen, "scvi-tools": run_scvi}


def worker_main(args: argparse.Namespace) -> None:
    result = WORKERS[args.worker](Path(args.data), args.epochs, args.threads, Path(args.work))
    epoch_s = result["epoch_s"]
    result.update({
        "tool": args.worker,
        "epochs": len(epoch_s),
        "mean_epoch_s": float(np.mean(epoch_s)),
        "median_epoch_s": float(np.median(epoch_s)),
        "samples_per_s": args.n_train / float(np.mean(epoch_s)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    print("RESULT " + json.dumps(result))


# -- driver -----------------------------------------------------------------------------------
def run_tool(tool: str, data: Path, args: argparse.Namespace, n_train: int, work: Path) -> dict:
    return run_worker(
        ["--worker", tool, "--data", str(data), "--epochs", str(args.epochs), "--threads",
         str(args.threads), "--work", str(work), "--n-train", str(n_train)],
        tool,
    )


def run_worker(worker_args: list[str], what: str) -> dict:
    """Run this script as a worker subprocess (the driver stays small: Linux keeps a
    process's peak RSS across fork + exec, so a large driver would inflate the workers')."""
    cmd = [sys.executable, __file__, *worker_args]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/tybalt_vs_scvi.json"))
    # One thread each by default: on the shared 2-core machine (load average ~5) two OpenMP
    # threads per tool spin-wait against other jobs and ran ~20x slower for both tools.
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both tools")
    parser.add_argument("--worker", choices=[*sorted(WORKERS), "data"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--n-train", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "data":
        print("RESULT " + json.dumps(build_data(Path(args.data))))
        return
    if args.worker:
        worker_main(args)
        return

    with tempfile.TemporaryDirectory(prefix="tybalt_bench_") as tmp:
        tmp = Path(tmp)
        data = tmp / "paper_scale.h5ad"
        description = run_worker(["--worker", "data", "--data", str(data)], "data")
        load_before = load_average()
        results = {}
        for tool in WORKERS:
            print(f"running {tool} ({args.epochs} epochs) ...", flush=True)
            results[tool] = run_tool(tool, data, args, description["n_train"], tmp)
        load_after = load_average()

    med, ref = results["medgen"], results["scvi-tools"]
    ratio = med["mean_epoch_s"] / ref["mean_epoch_s"]
    header = (f"{'tool':<12}{'s/epoch':>10}{'train wall s':>14}{'samples/s':>12}"
              f"{'peak RSS MiB':>14}")
    print("\ndata: " + description["source"] + f"; {N_SAMPLES} x {N_FEATURES} "
          "(rows and features resampled with noise; not a real data set)")
    print(header)
    for tool, r in results.items():
        print(f"{tool:<12}{r['mean_epoch_s']:>10.3f}{r['train_wall_s']:>14.1f}"
              f"{r['samples_per_s']:>12.0f}{r['peak_rss_mib']:>14.0f}")
    print(f"ratio medgen/scvi-tools (s/epoch): {ratio:.3f}; "
          f"load average before {load_before}, after {load_after} on {os.cpu_count()} CPUs")
    report = {
        "data": description,
        "epochs": args.epochs,
        "threads": args.threads,
        "batch_size": 50,
        "results": results,
        "ratio_medgen_over_scvi_epoch_s": ratio,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": load_after},
    }
    out = Path(args.out)
    sys.path.insert(0, str(REPO))
    from medgen.atomic import write_json

    write_json(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
