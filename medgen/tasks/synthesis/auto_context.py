"""Auto-context (Nie et al., MICCAI 2017; Tu & Bai, TPAMI 2010): the data of level k.

Level k (k >= 2) trains on the source modalities plus level k-1's synthetic target,
inferred over the whole volume of every subject (training ones included, as in the
paper) by the finished level k-1. ``context_inputs`` builds that as a prepared folder of
the same layout as ``prepare_synthesis``'s with one more source channel, so each level is
an ordinary training job of the family on its own folder:

    prepared (level 1) --train--> level1/model.pt
    prepared + level1/model.pt --context_inputs--> level2 data --train--> level2/model.pt
    level2 data + level2/model.pt --context_inputs--> level3 data ...

A rerun after a crash starts from the last finished level, and a cluster schedules the
levels as separate jobs. Level k's output on its own training subjects is better than on
new subjects (it has seen them); auto-context accepts that bias, as the paper did.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from medgen import atomic
from medgen.atomic import save_npz
from medgen.errors import MedgenInputError
from medgen.models.synthesis import Synthesiser
from medgen.provenance import sha256_file
from medgen.tasks.synthesis.prepare import MANIFEST, load_subject, read_manifest


def context_inputs(prepared: str | os.PathLike, model: Synthesiser,
                   model_path: str | os.PathLike, out_dir: str | os.PathLike,
                   **window: Any) -> Path:
    """The prepared folder of the next auto-context level.

    Parameters
    ----------
    prepared
        The prepared folder level k-1 was trained on (level 1: ``prepare_synthesis``'s).
    model
        Level k-1's trained generator (``synthesis_inference.load``).
    model_path
        Its ``model.pt``, recorded in the new manifest.
    out_dir
        The new folder; written under a temporary name, renamed when complete.
    window
        ``Synthesiser.predict`` settings (window, overlap).

    Returns
    -------
    ``out_dir``: each subject's ``source`` is the original sources (C, x, y, z) plus level
    k-1's output as channel C + 1; targets, masks and labels unchanged.

    Raises
    ------
    MedgenInputError
        A model trained on other channels than the folder holds.
    """
    prepared, out_dir = Path(prepared), Path(out_dir)
    manifest = read_manifest(prepared)
    if model.channels != len(manifest["sources"]):
        raise MedgenInputError(
            f"{model_path} takes {model.channels} source channel(s) but {prepared} holds "
            f"{len(manifest['sources'])} ({manifest['sources']}): give the model trained "
            f"on {prepared}")
    n_sources = len(manifest["original_sources"])
    level = manifest["level"]
    with atomic.atomic_dir(out_dir) as tmp:
        for subject in manifest["subjects"]:
            arrays = load_subject(prepared, subject)
            context = model.predict(arrays["source"], arrays["mask"][0], **window)
            arrays["source"] = np.concatenate(
                [arrays["source"][:n_sources], context[None]]).astype(np.float32)
            save_npz(tmp / f"{subject}.npz", arrays)
        atomic.write_json(tmp / MANIFEST, {
            **manifest,
            "sources": [*manifest["original_sources"],
                        f"{manifest['target']}_level{level}"],
            "level": level + 1,
            "context_models": [*manifest["context_models"], str(model_path)],
            # identifies the earlier levels wherever the run folder moves (medgen.apply)
            "context_sha256": [*manifest.get("context_sha256", []), sha256_file(model_path)],
        })
    return out_dir
