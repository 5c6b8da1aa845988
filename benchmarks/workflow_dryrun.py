"""How long `snakemake -n` takes on a 1,000-subject imaging sample sheet with every family on,
as one run and as 5 replicates (replicates.seeds), side by side.

    python benchmarks/workflow_dryrun.py [--subjects 1000] [--repeats 3] [--seeds 5]

The sheet lists 1,000 subjects whose images are the real BraTS volumes of ../shared/data
(repeated under distinct subject IDs: the dry run checks every listed file exists, it never
reads them). Expression (Tybalt) runs on the shared TCGA tables; AnoGAN and f-AnoGAN with
the conv AE, PCA and a trivial score on the sheet. Prints a table and writes JSON (target:
under 20 s, replicates included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BRATS = (REPO.parent / "shared" / "data" / "imaging" / "brats").resolve()
TCGA = (REPO.parent / "shared" / "data" / "expression" / "tcga_mirna").resolve()


def write_inputs(folder: Path, n_subjects: int) -> Path:
    subjects = sorted(p.name for p in BRATS.iterdir() if p.is_dir())
    lines = ["subject\tsplit\tflair\tt2\tlabel"]
    splits = ["train"] * 6 + ["val"] * 1 + ["test"] * 3
    for i in range(n_subjects):
        source = subjects[i % len(subjects)]
        files = [f"{source}/{source}_{m}.nii.gz" for m in ("flair", "t2", "seg")]
        lines.append("\t".join([f"subject{i:05d}", splits[i % len(splits)], *files]))
    sheet = folder / "samples.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    config = {
        "results_dir": str(folder / "results"),
        "run_name": "dryrun",
        "expression": {"source": "files", "files": [
            {"path": str(TCGA / "BRCA.parquet"), "group": "BRCA"},
            {"path": str(TCGA / "PRAD.parquet"), "group": "PRAD"}]},
        "tasks": ["expression", "anomaly"],
        "expression_families": None,
        "anomaly": {"families": ["anogan", "fanogan"], "kind": "volumes",
                    "sample_sheet": str(sheet), "data_root": str(BRATS),
                    "modalities": ["flair", "t2"], "unit": "patch",
                    "evaluation": {"baselines": ["pca", "convae", "mask_fraction"]}},
    }
    config["expression"]["families"] = ["tybalt"]
    del config["expression_families"]
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5, help="replicates of the second plan")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/workflow_dryrun.json"))
    args = parser.parse_args()
    if not BRATS.is_dir():
        sys.exit(f"needs the real BraTS volumes at {BRATS}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = write_inputs(Path(tmp), args.subjects)
        replicated = Path(tmp) / "replicates.yaml"
        replicated.write_text(yaml.safe_dump({"replicates": {"seeds": list(range(args.seeds))}}))
        plans = {"one run": [str(config)], f"{args.seeds} replicates": [str(config),
                                                                     str(replicated)]}
        seconds = {name: [] for name in plans}
        jobs = {}
        for _ in range(args.repeats):  # alternate the plans: load drifts hit both alike
            for name, configs in plans.items():
                start = time.perf_counter()
                result = subprocess.run(
                    [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile",
                     *configs], cwd=REPO, capture_output=True, text=True)
                seconds[name].append(time.perf_counter() - start)
                if result.returncode != 0:
                    sys.exit(result.stdout + result.stderr)
                jobs[name] = int(result.stdout.split("Job stats:")[1].split("total")[1].split()[0])
    for name in plans:
        median = statistics.median(seconds[name])
        rows.append({"plan": name, "jobs": jobs[name],
                     "seconds": [round(s, 2) for s in seconds[name]],
                     "median_s": round(median, 2), "meets_target": median < 20.0})
    one = rows[0]["median_s"]
    summary = {
        "subjects": args.subjects, "families": ["tybalt", "anogan", "fanogan", "convae"],
        "plans": rows, "replicates_over_one_run": round(rows[1]["median_s"] / one, 2),
        "target_s": 20.0, "meets_target": all(r["meets_target"] for r in rows),
    }
    print(f"{'plan':>13} {'subjects':>9} {'jobs':>5} {'median s':>9} {'runs (s)':>24} "
          f"{'target':>7}")
    for row in rows:
        print(f"{row['plan']:>13} {args.subjects:>9} {row['jobs']:>5} {row['median_s']:>9} "
              f"{str(row['seconds']):>24} {'<20 s':>7}")
    print(f"replicates / one run: x{summary['replicates_over_one_run']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")

if __name__ == "__main__":
    main()
