"""One command for a whole anomaly experiment on a dataset config (what the evaluation
numbers in the report come from; the Snakemake rules call the same functions one by one).

    python -m medgen.tasks.anomaly.experiment --config config/datasets/pneumoniamnist.yaml \
        --out results/pneumoniamnist_anomaly

prepare_images -> train_model (each active anomaly family, the conv AE) -> fit_pca ->
score_anomalies (val, test; every method and trivial baseline) -> evaluate_anomaly.

The config resolves as the workflow's does (``medgen.config.load``): config/config.yaml, then
the dataset config, then the command-line overrides, validated against the schema.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import yaml

import medgen.config
from medgen import atomic
from medgen.registry import family_hparams, names
from medgen.tasks.anomaly.evaluate import evaluate_anomaly
from medgen.tasks.anomaly.inference import score_splits
from medgen.tasks.anomaly.methods import TRIVIAL
from medgen.tasks.anomaly.prepare import prepare_images
from medgen.tasks.anomaly.scorers import fit_pca
from medgen.train import inference_device, train_model

log = logging.getLogger(__name__)


def run(config_path: str | Path, out_dir: str | Path, overrides: dict[str, Any] | None = None,
        families: list[str] | None = None) -> Path:
    cfg = medgen.config.load(config_path, overrides)
    imaging, training, seed = cfg["imaging"], cfg["training"], cfg["seed"]
    out_dir = Path(out_dir)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    splits = prepare_images(imaging["sample_sheet"], imaging, seed, out_dir / "data")
    timings["prepare_s"] = time.perf_counter() - t
    ev = imaging["evaluation"]

    models: dict[str, Path | None] = {}
    # the activated anomaly families (the default config also activates an expression
    # family, which this experiment does not train), then the trained baselines
    active = families if families is not None else [  # [] = baselines only
        f for f in names("anomaly", baselines=False) if cfg["models"][f]["activate"]]
    trained_baselines = [b for b in ev["baselines"] if b in names("anomaly")]
    for family in [*active, *trained_baselines]:
        t = time.perf_counter()
        models[family] = train_model(family, splits["train"], family_hparams(family, cfg),
                                     training, seed, out_dir / "models" / family, config=cfg)
        timings[f"train_{family}_s"] = time.perf_counter() - t
    if "pca" in ev["baselines"]:
        models["pca"] = fit_pca(splits["train"], ev["pca_components"],
                                out_dir / "models" / "pca.npz")
    for name in ev["baselines"]:
        if name in TRIVIAL:
            models[name] = None

    score_dirs = {}
    device = inference_device(training["accelerator"])
    for method, path in models.items():
        t = time.perf_counter()
        score_splits(method, path, out_dir / "data", out_dir / "scores" / method,
                     imaging["scoring"],
                     imaging["kind"], device)
        timings[f"score_{method}_s"] = time.perf_counter() - t
        score_dirs[method] = out_dir / "scores" / method
    metrics = evaluate_anomaly(score_dirs, out_dir / "data", imaging, out_dir / "report", seed)
    atomic.write_json(out_dir / "report" / "timings.json", timings)
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="dataset config YAML")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data-root", help="override imaging.data_root")
    parser.add_argument("--families", nargs="*",
                        help="families to train (default: activated; none given: baselines only)")
    parser.add_argument("--epochs", type=int, help="training.max_epochs for every family")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--set", nargs="*", default=[], metavar="models.fanogan.params.k=v",
                        help="extra overrides (YAML values)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    overrides: dict[str, Any] = {"training": {"progress_bar": False}}
    if args.data_root:
        overrides["imaging"] = {"data_root": args.data_root}
    if args.epochs:
        overrides["training"]["max_epochs"] = args.epochs
    if args.threads:
        overrides["training"]["num_threads"] = args.threads
    for item in args.set:
        key, _, value = item.partition("=")
        node = overrides
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    print(Path(run(args.config, args.out, overrides, args.families)).read_text())


if __name__ == "__main__":
    main()
