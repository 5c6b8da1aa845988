"""How long `snakemake -n` takes on a 1,000-subject imaging sample sheet with every family on.

    python benchmarks/workflow_dryrun.py [--subjects 1000] [--repeats 3]

The sheet lists 1,000 subjects whose images are the real BraTS volumes of ../shared/data
(repeated under distinct subject IDs: the dry run checks every listed file exists, it never
reads them). Expression (Tybalt) runs on the shared TCGA tables; AnoGAN and f-AnoGAN are
activated. Prints a table and writes JSON (target: under 20 s).
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
        "imaging": {"activate": True, "kind": "volumes", "sample_sheet": str(sheet),
                    "data_root": str(BRATS), "modalities": ["flair", "t2"], "unit": "patch",
                    "evaluation": {"baselines": ["pca", "convae", "mask_fraction"]}},
        "models": {family: {"activate": True} for family in ("tybalt", "anogan", "fanogan")},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/workflow_dryrun.json"))
    args = parser.parse_args()
    if not BRATS.is_dir():
        sys.exit(f"needs the real BraTS volumes at {BRATS}")
    with tempfile.TemporaryDirectory() as tmp:
        config = write_inputs(Path(tmp), args.subjects)
        seconds, jobs = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile",
                 str(config)], cwd=REPO, capture_output=True, text=True)
            seconds.append(time.perf_counter() - start)
            if result.returncode != 0:
                sys.exit(result.stdout + result.stderr)
            jobs = int(result.stdout.split("Job stats:")[1].split("total")[1].split()[0])
    summary = {
        "subjects": args.subjects, "families": ["tybalt", "anogan", "fanogan"], "jobs": jobs,
        "seconds": [round(s, 2) for s in seconds],
        "median_s": round(statistics.median(seconds), 2),
        "target_s": 20.0, "meets_target": statistics.median(seconds) < 20.0,
    }
    print(f"{'subjects':>9} {'jobs':>5} {'median s':>9} {'runs (s)':>24} {'target':>7}")
    print(f"{args.subjects:>9} {jobs:>5} {summary['median_s']:>9} "
          f"{str(summary['seconds']):>24} {'<20 s':>7}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
