"""A trained auto-context cascade found from one path, checked stage by stage (for
``medgen.apply``).

The workflow writes stage k of a synthesis family to ``<models>/<family>/stage<k>/model.pt``
(one Snakemake job per stage). A user names either the last stage's ``model.pt`` (stage K:
the cascade is stage 1..K, found in the sibling folders) or the family folder (its highest
``stage<k>``). Each stage's checkpoint must say it belongs to that cascade: same family,
target, sources, normalisation and hyperparameters, stage number k, k - 1 context channels
and, for models trained since the checksums were recorded, the sha256 of each earlier stage
it was trained on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from medgen import checkpoint, registry
from medgen.data.imaging.intensity import CT_WINDOW
from medgen.errors import MedgenInputError
from medgen.provenance import sha256_file
from medgen.tasks.synthesis.loaders import PREPARATION_KEYS

STAGE_DIR = re.compile(r"stage(\d+)$")
# must agree between stages; hparams except the stage count itself (max_epochs may differ)
SAME_DATA = ("target", "normalisation", "target_normalisation")


def last_stage(path: str | os.PathLike) -> Path:
    """The ``model.pt`` ``path`` names: itself, or for a folder of ``stage<k>/model.pt``
    the one of the highest k (MedgenInputError when the folder holds none)."""
    path = Path(path)
    if not path.is_dir():
        return path
    stages = sorted((int(m.group(1)), d) for d in path.iterdir()
                    if (m := STAGE_DIR.match(d.name)) and (d / checkpoint.MODEL_FILE).is_file())
    if not stages:
        raise MedgenInputError(
            f"{path} is a folder without stage<k>/{checkpoint.MODEL_FILE}; give the last "
            f"stage's {checkpoint.MODEL_FILE} or the folder holding stage1, stage2, ...")
    return stages[-1][1] / checkpoint.MODEL_FILE


def stage_paths(path: str | os.PathLike, last: checkpoint.Checkpoint) -> list[Path]:
    """Stage 1..K ``model.pt`` paths of the cascade whose stage K is ``path``."""
    path = Path(path)
    k_last = int(last.data.get("stage", 1))
    if k_last == 1:
        return [path]
    if path.parent.name != f"stage{k_last}":
        raise MedgenInputError(
            f"{path} is stage {k_last} of an auto-context cascade, so its earlier stages are "
            f"looked for in sibling folders stage1..stage{k_last - 1}, but it lies in "
            f"'{path.parent.name}', not 'stage{k_last}': keep the training run's "
            "<family>/stage<k>/model.pt layout")
    paths = [path.parent.parent / f"stage{k}" / checkpoint.MODEL_FILE
             for k in range(1, k_last + 1)]
    for k, stage in enumerate(paths, start=1):
        if not stage.is_file():
            raise MedgenInputError(
                f"stage {k} of the auto-context cascade is missing: {path} is stage {k_last} "
                f"and needs {stage} (every stage 1..{k_last} runs on new data)")
    return paths


def _hparams(saved: checkpoint.Checkpoint) -> dict[str, Any]:
    return {k: v for k, v in saved.hparams.items() if k != "max_epochs"}


def check_cascade(paths: list[Path], stages: list[checkpoint.Checkpoint]) -> None:
    """MedgenInputError unless ``stages`` (stage 1..K, read from ``paths``) form one
    cascade: each stage is compared with the last one (the model the user named), so a
    message names the earlier stage that does not fit and the last stage."""
    last = stages[-1]
    # the last stage's own inputs: the source modalities, then one context channel (K > 1)
    n_sources = int(last.data["channels"]) - (len(stages) > 1)
    sources = list(last.data["modalities"])[:n_sources]
    for k, (path, saved) in enumerate(zip(paths, stages), start=1):
        expected = {"family": last.family, "stage": k,
                    "channels": len(sources) + (k > 1),
                    "sources": sources,
                    **{key: last.data.get(key) for key in SAME_DATA},
                    "hparams": _hparams(last)}
        found = {"family": saved.family, "stage": int(saved.data.get("stage", 1)),
                 "channels": int(saved.data["channels"]),
                 "sources": list(saved.data["modalities"])[:len(sources)],
                 **{key: saved.data.get(key) for key in SAME_DATA},
                 "hparams": _hparams(saved)}
        differs = [key for key in expected if expected[key] != found[key]]
        if differs:
            key = differs[0]
            have, want = found[key], expected[key]
            if key == "hparams":  # name only the hyperparameters that differ
                names = [n for n in sorted(set(have) | set(want), key=str)
                         if have.get(n) != want.get(n)]
                have = {n: found[key].get(n) for n in names}
                want = {n: expected[key].get(n) for n in names}
            raise MedgenInputError(
                f"{path} (stage {k}) does not belong to the cascade of {paths[-1]}: its "
                f"{key} is {have!r} where stage {k} of that cascade needs {want!r}; keep "
                "the stage folders of one training run together")
        recorded = saved.provenance.get("context_sha256") or []
        if recorded:
            actual = [sha256_file(p) for p in paths[:k - 1]]
            for j, (want, have) in enumerate(zip(recorded, actual), start=1):
                if want != have:
                    raise MedgenInputError(
                        f"{path} (stage {k}) was trained on the output of another stage {j} "
                        f"than {paths[j - 1]} (sha256 differs): the stage folders mix "
                        "models of different training runs; retrain or keep them together")


def load_stages(path: str | os.PathLike) -> tuple[list[Path], list[checkpoint.Checkpoint]]:
    """The checked cascade ``path`` names (a last stage's model.pt or a family folder):
    (stage paths, checkpoints), stage 1 first."""
    path = last_stage(path)
    last = checkpoint.load(path, family=tuple(registry.names("synthesis")))
    paths = stage_paths(path, last)
    stages = [checkpoint.load(p) for p in paths[:-1]] + [last]
    check_cascade(paths, stages)
    return paths, stages


def model_preparation(path: str | os.PathLike, saved: checkpoint.Checkpoint) -> dict[str, Any]:
    """How the model's training subjects were prepared (``normalisation``,
    ``target_normalisation``, ``ct_window``, ``mask``, ``resample_target``): its data
    signature's ``preparation``, else the synthesis section of its stored config.

    Raises
    ------
    MedgenInputError
        The model records neither and uses the 'ct_window' method (its window unknown).
    """
    stored = saved.data.get("preparation") or {
        k: v for k, v in saved.config.get("synthesis", {}).items() if k in PREPARATION_KEYS}
    prep = {"normalisation": saved.data["normalisation"],
            "target_normalisation": saved.data.get("target_normalisation"), **stored}
    if prep.get("ct_window") is None:
        if "ct_window" in (prep["normalisation"], prep["target_normalisation"]):
            raise MedgenInputError(
                f"{path} uses the 'ct_window' normalisation but records no window: cannot "
                "prepare new subjects as it saw them; retrain it with this medgen")
        prep["ct_window"] = list(CT_WINDOW)
    return prep
