"""A trained auto-context cascade found from one path, checked level by level (for
``medgen.apply``).

The workflow writes level k of a synthesis family to ``<models>/<family>/level<k>/model.pt``
(one Snakemake job per level). A user names either the last level's ``model.pt`` (level K:
the cascade is level 1..K, found in the sibling folders) or the family folder (its highest
``level<k>``). Each level's checkpoint must say it belongs to that cascade: same family,
target, sources, normalisation and hyperparameters, level number k, k - 1 context channels
and, for models trained since the checksums were recorded, the sha256 of each earlier level
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

LEVEL_DIR = re.compile(r"level(\d+)$")
# must agree between levels; hparams except the level count itself (max_epochs may differ)
SAME_DATA = ("target", "normalisation", "target_normalisation")


def checkpoint_level(saved: checkpoint.Checkpoint, path: str | os.PathLike = "") -> int:
    """The auto-context level k a synthesis checkpoint was trained as (its data signature's
    ``level``).

    Raises MedgenInputError for a checkpoint that records none (one written before the
    level was so named recorded it as ``stage``: retrain it); ``path`` is named in it.
    """
    if "level" not in saved.data:
        raise MedgenInputError(
            f"{path or 'the model'}: a {saved.family} model records no auto-context "
            "'level' in its data signature"
            + (" (it was written by an earlier medgen, which called it 'stage')"
               if "stage" in saved.data else "")
            + "; retrain it with this medgen")
    return int(saved.data["level"])


def last_level(path: str | os.PathLike) -> Path:
    """The ``model.pt`` ``path`` names: itself, or for a folder of ``level<k>/model.pt``
    the one of the highest k (MedgenInputError when the folder holds none)."""
    path = Path(path)
    if not path.is_dir():
        return path
    levels = sorted((int(m.group(1)), d) for d in path.iterdir()
                    if (m := LEVEL_DIR.match(d.name)) and (d / checkpoint.MODEL_FILE).is_file())
    if not levels:
        raise MedgenInputError(
            f"{path} is a folder without level<k>/{checkpoint.MODEL_FILE}; give the last "
            f"level's {checkpoint.MODEL_FILE} or the folder holding level1, level2, ...")
    return levels[-1][1] / checkpoint.MODEL_FILE


def level_paths(path: str | os.PathLike, last: checkpoint.Checkpoint) -> list[Path]:
    """Level 1..K ``model.pt`` paths of the cascade whose level K is ``path``."""
    path = Path(path)
    k_last = checkpoint_level(last, path)
    if k_last == 1:
        return [path]
    if path.parent.name != f"level{k_last}":
        raise MedgenInputError(
            f"{path} is level {k_last} of an auto-context cascade, so its earlier levels are "
            f"looked for in sibling folders level1..level{k_last - 1}, but it lies in "
            f"'{path.parent.name}', not 'level{k_last}': keep the training run's "
            "<family>/level<k>/model.pt layout")
    paths = [path.parent.parent / f"level{k}" / checkpoint.MODEL_FILE
             for k in range(1, k_last + 1)]
    for k, level in enumerate(paths, start=1):
        if not level.is_file():
            raise MedgenInputError(
                f"level {k} of the auto-context cascade is missing: {path} is level {k_last} "
                f"and needs {level} (every level 1..{k_last} runs on new data)")
    return paths


def _hparams(saved: checkpoint.Checkpoint) -> dict[str, Any]:
    return {k: v for k, v in saved.hparams.items() if k != "max_epochs"}


def check_cascade(paths: list[Path], levels: list[checkpoint.Checkpoint]) -> None:
    """MedgenInputError unless ``levels`` (level 1..K, read from ``paths``) form one
    cascade: each level is compared with the last one (the model the user named), so a
    message names the earlier level that does not fit and the last level."""
    last = levels[-1]
    # the last level's own inputs: the source modalities, then one context channel (K > 1)
    n_sources = int(last.data["channels"]) - (len(levels) > 1)
    sources = list(last.data["modalities"])[:n_sources]
    for k, (path, saved) in enumerate(zip(paths, levels), start=1):
        expected = {"family": last.family, "level": k,
                    "channels": len(sources) + (k > 1),
                    "sources": sources,
                    **{key: last.data.get(key) for key in SAME_DATA},
                    "hparams": _hparams(last)}
        found = {"family": saved.family, "level": checkpoint_level(saved, path),
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
                f"{path} (level {k}) does not belong to the cascade of {paths[-1]}: its "
                f"{key} is {have!r} where level {k} of that cascade needs {want!r}; keep "
                "the level folders of one training run together")
        recorded = saved.provenance.get("context_sha256") or []
        if recorded:
            actual = [sha256_file(p) for p in paths[:k - 1]]
            for j, (want, have) in enumerate(zip(recorded, actual), start=1):
                if want != have:
                    raise MedgenInputError(
                        f"{path} (level {k}) was trained on the output of another level {j} "
                        f"than {paths[j - 1]} (sha256 differs): the level folders mix "
                        "models of different training runs; retrain or keep them together")


def load_levels(path: str | os.PathLike) -> tuple[list[Path], list[checkpoint.Checkpoint]]:
    """The checked cascade ``path`` names (a last level's model.pt or a family folder):
    (level paths, checkpoints), level 1 first."""
    path = last_level(path)
    last = checkpoint.load(path, family=tuple(registry.names("synthesis")))
    paths = level_paths(path, last)
    levels = [checkpoint.load(p) for p in paths[:-1]] + [last]
    check_cascade(paths, levels)
    return paths, levels


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
