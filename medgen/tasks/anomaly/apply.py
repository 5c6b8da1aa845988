"""Apply a trained anomaly model to new images: the model's own preparation, scores and
residual maps, and the evaluation when the new images carry both classes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from medgen import checkpoint
from medgen.errors import MedgenInputError
from medgen.tasks.anomaly.evaluate import evaluate_anomaly
from medgen.tasks.anomaly.inference import score_splits
from medgen.tasks.anomaly.prepare import prepare_images


def apply_anomaly(model_path: str | os.PathLike, config: dict[str, Any],
                  out_dir: str | os.PathLike, device: str = "cpu") -> Path:
    """Score the images of the ``anomaly`` section's sample sheet with a trained anomaly
    model, prepared with the model's own imaging settings (every subject as evaluation
    data).

    Writes ``data/`` and ``scores/<family>/`` under ``out_dir``; when the new images carry
    both classes, the evaluation's ``report/`` too. Returns the metrics file, or the test
    scores TSV when there is nothing to rank.

    Raises
    ------
    MedgenInputError
        Unreadable model; a model without imaging settings (not trained by the workflow);
        images that do not fit the model.
    """
    out_dir = Path(out_dir)
    ckpt = checkpoint.load(model_path)
    trained = ckpt.config.get("anomaly")
    if not trained:
        raise MedgenInputError(
            f"{model_path} holds no anomaly settings (it was not trained through the "
            "workflow): cannot prepare new images as it saw them")
    new = config["anomaly"]
    # preprocessing as in training; only where the new images are comes from this config
    imaging = {**trained, "sample_sheet": new["sample_sheet"], "data_root": new["data_root"],
               "scoring": new["scoring"], "evaluation": new["evaluation"]}
    data_dir = out_dir / "data"
    prepare_images(imaging["sample_sheet"], imaging, config["seed"], data_dir, apply=True)
    scores = out_dir / "scores" / ckpt.family
    score_splits(ckpt.family, model_path, data_dir, scores, imaging["scoring"],
                 imaging["kind"], device)
    y = np.load(data_dir / "test.npz")["y"]
    if len(np.unique(y[y >= 0])) < 2:  # no labels, or one class only: nothing to rank
        return scores / "scores_test.tsv"
    return evaluate_anomaly({ckpt.family: scores}, data_dir, imaging, out_dir / "report",
                            config["seed"])
