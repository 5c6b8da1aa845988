"""Apply a trained anomaly model to new images: the model's own preparation, scores and
residual maps, and the evaluation when the new images carry both classes."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgen import checkpoint, model_card
from medgen.errors import MedgenInputError
from medgen.synthetic_output import check_count, sampling_requested
from medgen.tasks.anomaly import GENERATIVE_FAMILIES
from medgen.tasks.anomaly.evaluate import evaluate_anomaly
from medgen.tasks.anomaly.inference import score_splits
from medgen.tasks.anomaly.methods import TRIVIAL
from medgen.tasks.anomaly.prepare import prepare_images

log = logging.getLogger(__name__)


SAMPLES_NPZ = "samples.npz"  # apply mode's output when sampling



def check_new_data(config: dict[str, Any], model_path: str | os.PathLike) -> None:
    """Refuse an apply config whose ``anomaly`` section does not name new images the model
    can score, before anything runs: no sample sheet (the default config's demo or the
    training data would be scored instead), a model trained on the built-in MNI152 demo
    (its images come from the template, not from a sheet), or a sheet without the model's
    modality columns. In sampling mode (``anomaly.sampling.n_samples``) only a model
    without a generator is refused.

    Raises
    ------
    MedgenInputError
        Naming the key, the sheet or the model and what to give instead.
    """
    ckpt = checkpoint.load(model_path)
    if sampling_requested(config, "anomaly"):
        # images from the generator: no new images to prepare (a demo model samples too)
        if ckpt.family not in GENERATIVE_FAMILIES:
            raise MedgenInputError(
                f"config key 'anomaly.sampling.n_samples' is set, but {model_path} is a "
                f"{ckpt.family} model, which does not generate images; sampling takes "
                f"{' or '.join(GENERATIVE_FAMILIES)} models")
        check_count(int(config["anomaly"]["sampling"]["n_samples"]), "images")
        return
    trained = ckpt.config.get("anomaly") or {}
    if trained.get("kind") == "mni152_demo":
        raise MedgenInputError(
            f"{model_path} was trained on the built-in MNI152 demo (anomaly.kind "
            "mni152_demo), whose images come from the template, not from a sample sheet: "
            "it cannot be applied to new images; train a model on your own images (a "
            "dataset config with anomaly.kind volumes or npz2d) and apply that")
    sheet = config["anomaly"]["sample_sheet"]
    if not sheet:
        raise MedgenInputError(
            "config key 'anomaly.sample_sheet' is empty: to apply a model, name the new "
            "images' sample sheet there (subject and one column per modality: "
            f"{', '.join(trained.get('modalities', []))})")
    modalities = trained.get("modalities") or []
    if Path(sheet).is_file():
        header = Path(sheet).read_text(errors="replace").splitlines()[:1]
        columns = header[0].split("\t") if header else []
        missing = [m for m in modalities if m not in columns]
        if missing:
            raise MedgenInputError(
                f"sample sheet {sheet} lacks the column(s) {', '.join(missing)} that "
                f"{model_path} was trained on (modalities {modalities}); it has: "
                f"{', '.join(columns)}")


def apply_anomaly(model_path: str | os.PathLike, config: dict[str, Any],
                  out_dir: str | os.PathLike, device: str = "cpu") -> Path:
    """Score the images of the ``anomaly`` section's sample sheet with a trained anomaly
    model, prepared with the model's own imaging settings (every subject as evaluation
    data).

    Writes ``data/`` and ``scores/<family>/`` under ``out_dir``; when the new images carry
    both classes, the evaluation's ``report/`` too: the model beside the trivial scores its
    training run evaluated, each at the operating point calibrated on that run's val split
    (``deployed_operating_points``). Returns the metrics file, or the test scores TSV when
    there is nothing to rank. With ``anomaly.sampling.n_samples``: writes that many images
    of the model's generator to ``out_dir/samples.npz`` (+ .json, .png;
    ``medgen.tasks.anomaly.sampling.sample_images``, seeded by ``config["seed"]``) instead,
    and returns its path.

    Raises
    ------
    MedgenInputError
        Unreadable model; a model without imaging settings (not trained by the workflow);
        images that do not fit the model.
    """
    out_dir = Path(out_dir)
    if sampling_requested(config, "anomaly"):
        from medgen.tasks.anomaly.sampling import sample_images

        out = out_dir / SAMPLES_NPZ
        sample_images(model_path, config["anomaly"]["sampling"]["n_samples"], out,
                      seed=config.get("seed", 0), device=device)
        return out
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
    points = deployed_operating_points(model_path, imaging)
    score_dirs = {ckpt.family: scores}
    # the trivial scores beside the model, at their own operating points, where the
    # training run scored them: a deployed model is judged against the same bar
    for method in [m for m in points if m in TRIVIAL]:
        score_dirs[method] = out_dir / "scores" / method
        score_splits(method, None, data_dir, score_dirs[method], imaging["scoring"],
                     imaging["kind"], device)
    return evaluate_anomaly(score_dirs, data_dir, imaging, out_dir / "report",
                            config["seed"], operating_points=points)


def deployed_operating_points(model_path: str | os.PathLike, imaging: dict[str, Any]
                              ) -> dict[str, dict[str, Any]]:
    """Method -> operating point for an apply run: the model's and its run's baselines',
    from the model card beside ``model_path`` (calibrated on the training run's val split;
    ``medgen.model_card.stored``). Empty, with a WARNING saying why, when there is no card
    written for this model, or when the apply config's median filter or scoring settings
    differ from those the thresholds were calibrated under (thresholds would not fit the
    scores): then thresholded metrics are NaN and AUROC/AUPRC still hold."""
    card = model_card.stored(model_path)
    evaluated = (card or {}).get("evaluation") or {}
    points = evaluated.get("operating_points") or {}
    family = card["model"]["method"] if card else None
    if not points or not points.get("model"):
        log.warning("%s has no model card with an operating point beside it (written when "
                    "the training run evaluates the model): sensitivity, specificity and Dice "
                    "at a threshold are not reported, AUROC and AUPRC are", model_path)
        return {}
    mine = {family: points["model"], **points["baselines"]}
    ev = imaging["evaluation"]
    # the config's value is compared (a list of candidates: each method keeps the size its
    # training run chose on val); cards older than the candidates hold the size only
    trained = {"median_filter": points["model"].get("median_filter_setting",
                                                    points["model"]["median_filter"]),
               "scoring": points["model"]["scoring"]}
    changed = [key for key, now in (("median_filter", ev["median_filter"]),
                                    ("scoring", dict(imaging["scoring"])))
               if trained[key] != now]
    if changed:
        log.warning("the apply config's anomaly %s differ from the training run's (%s); its "
                    "thresholds do not fit these scores: sensitivity, specificity and Dice "
                    "at a threshold are not reported", " and ".join(changed),
                    ", ".join(f"{k} {trained[k]!r}" for k in changed))
        return {}
    log.info("operating points from %s's model card (its training run's val split): %s",
             family, ", ".join(f"{m} image {p['image_threshold']:.4g}"
                               + (f" / pixel {p['pixel_threshold']:.4g}"
                                  if p["pixel_threshold"] is not None else "")
                               for m, p in mine.items()))
    return mine
