"""``prepare_synthesis``: sample sheet -> a prepared folder of normalised paired volumes.

The folder (what every synthesis family trains on, and what auto-context level k reads
with one more source channel) holds:

- ``<subject>.npz``: ``source`` (C, x, y, z) and ``target`` (1, x, y, z) float32 on the
  network's intensity scale, ``mask`` (1, x, y, z) uint8 and, with a tumour label,
  ``label`` (1, x, y, z) int16, and ``coverage`` (1, x, y, z) uint8 when a resampled
  target's field of view misses part of the mask (0: outside it; the training loss and the
  metrics leave those voxels out); cropped to the mask's box plus a margin, uncompressed
  so that epochs never decode gzip again;
- ``pairs.json``: per subject its split, crop box, full shape, affine, files and the
  normalisation parameters of every channel (``medgen.data.imaging.intensity``), so
  outputs can be put back into the source grid and scanner units; ``grid``: how each file
  came onto the source grid (same grid, reoriented, resampled; the target's coverage of
  the mask and the voxels excluded); the modalities, the
  auto-context level and the settings used.

The folder is written under a temporary name and renamed when complete: an error on the
last subject leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgen import atomic
from medgen.atomic import save_npz
from medgen.data.imaging import intensity
from medgen.errors import MedgenInputError
from medgen.tasks.synthesis.pairs import PairVolume, SynthesisPair, load_pair

MANIFEST = "pairs.json"
CROP_MARGIN = 8  # voxels around the mask's box: context for patches centred at its edge


def mask_box(mask: np.ndarray, margin: int = CROP_MARGIN) -> list[list[int]]:
    """[[start, stop] per axis] of the nonzero voxels of ``mask`` (X, Y, Z), widened by
    ``margin`` and clipped to the volume."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append([max(int(hits[0]) - margin, 0),
                    min(int(hits[-1]) + 1 + margin, mask.shape[axis])])
    return box


def crop(array: np.ndarray, box: list[list[int]]) -> np.ndarray:
    """``array`` (..., X, Y, Z) cut to ``box``."""
    return array[(..., *(slice(a, b) for a, b in box))]


def normalise_pair(volume: PairVolume, method: str, ct_window: list[float] | None = None,
                   target_method: str | None = None,
                   pair: SynthesisPair | None = None) -> dict[str, Any]:
    """Normalised arrays and parameters of one pair (every channel measured on its own,
    inside the mask).

    Returns {'source': (C, X, Y, Z), 'target': (1, X, Y, Z) or None, 'source_params':
    [params per channel], 'target_params': params or None}.

    Raises
    ------
    MedgenInputError
        A channel ``intensity.fit`` cannot normalise; the message names the subject, the
        channel's role (source modality or target) and, given ``pair``, its file.
    """
    window = tuple(ct_window) if ct_window else intensity.CT_WINDOW
    names = list(pair.sources) if pair else [f"channel {c}" for c in range(len(volume.source))]

    def fit(channel: np.ndarray, role: str, path: Path | None, how: str,
            where: np.ndarray | None = None) -> dict[str, Any]:
        try:
            return intensity.fit(channel, volume.mask if where is None else where, how, window)
        except MedgenInputError as err:
            where = f" ({path})" if path else ""
            raise MedgenInputError(
                f"subject '{volume.subject}', {role}{where}: {err}") from None

    source_params = [fit(c, f"source '{name}'", pair.sources[name] if pair else None, method)
                     for c, name in zip(volume.source, names)]
    source = np.stack([intensity.apply(c, p, volume.mask)
                       for c, p in zip(volume.source, source_params)])
    target = target_params = None
    if volume.target is not None:
        role = f"target '{pair.target_name}'" if pair else "target"
        # measured where the target is known: voxels outside its field of view are padding
        known = volume.mask if volume.coverage is None else volume.mask * volume.coverage
        target_params = fit(volume.target, role, pair.target if pair else None,
                            target_method or method, known)
        target = intensity.apply(volume.target, target_params, volume.mask)[None]
    return {"source": source, "target": target, "source_params": source_params,
            "target_params": target_params}


def prepare_synthesis(pairs: list[SynthesisPair], cfg: dict[str, Any],
                      out_dir: str | os.PathLike, require_train: bool = True) -> Path:
    """Read, check, normalise and cache every pair; returns ``out_dir``.

    Parameters
    ----------
    pairs
        From ``medgen.tasks.synthesis.pairs.read_pairs``.
    cfg
        The ``synthesis`` config section (``normalisation``, ``target_normalisation``,
        ``ct_window``, and what ``load_pair`` reads).
    out_dir
        The prepared folder (replaced when it exists).
    require_train
        False for new subjects a trained model is applied to (``medgen.apply``).

    Raises
    ------
    MedgenInputError
        Any bad pair (``load_pair``), or no training subject.
    """
    if require_train and not any(p.split == "train" for p in pairs):
        raise MedgenInputError("synthesis: the sample sheet has no subject in split 'train'")
    out_dir = Path(out_dir)
    with atomic.atomic_dir(out_dir) as tmp:
        subjects = {}
        for pair in pairs:
            volume = load_pair(pair, cfg)
            arrays = normalise_pair(volume, cfg["normalisation"], cfg.get("ct_window"),
                                    cfg.get("target_normalisation") or None, pair)
            box = mask_box(volume.mask)
            out = {"source": crop(arrays["source"], box),
                   "mask": crop(volume.mask[None], box)}
            if arrays["target"] is not None:
                out["target"] = crop(arrays["target"], box)
            if volume.label is not None:
                out["label"] = crop(volume.label[None], box)
            if volume.coverage is not None:
                out["coverage"] = crop(volume.coverage[None], box)
            save_npz(tmp / f"{pair.subject}.npz", out)
            subjects[pair.subject] = {
                "split": pair.split, "box": box, "shape": list(volume.mask.shape),
                "affine": volume.affine.tolist(), "reference": str(volume.reference),
                "sources": {k: str(v) for k, v in pair.sources.items()},
                "target": str(pair.target) if pair.target else None,
                "source_params": arrays["source_params"],
                "target_params": arrays["target_params"], "grid": volume.grid,
            }
        atomic.write_json(tmp / MANIFEST, {
            "sources": list(pairs[0].sources), "original_sources": list(pairs[0].sources),
            "target": pairs[0].target_name,
            "level": 1, "context_models": [], "settings": dict(cfg), "subjects": subjects})
    return out_dir


def read_manifest(prepared: str | os.PathLike) -> dict[str, Any]:
    """``pairs.json`` of a prepared folder (MedgenInputError when it is not one, or one
    prepared before the auto-context level was recorded as ``level``)."""
    path = Path(prepared) / MANIFEST
    if not path.is_file():
        raise MedgenInputError(
            f"{prepared} is not a prepared synthesis folder (no {MANIFEST}); run "
            "prepare_synthesis on the sample sheet first")
    manifest = json.loads(path.read_text())
    if "level" not in manifest:  # written before the auto-context level was so named
        raise MedgenInputError(
            f"{prepared} was prepared by an earlier medgen ({MANIFEST} records no "
            "auto-context 'level'): delete it and rerun prepare_synthesis")
    return manifest


def load_subject(prepared: str | os.PathLike, subject: str) -> dict[str, np.ndarray]:
    """The cached arrays of one subject (``source``, ``mask``, ``target``/``label``/
    ``coverage`` when present)."""
    with np.load(Path(prepared) / f"{subject}.npz", allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def uncrop(array: np.ndarray, box: list[list[int]], shape: list[int],
           fill: float = 0.0) -> np.ndarray:
    """Put ``array`` (..., x, y, z) cut to ``box`` back into a volume of ``shape``."""
    out = np.full((*array.shape[:-3], *shape), fill, dtype=array.dtype)
    out[(..., *(slice(a, b) for a, b in box))] = array
    return out


def scored_mask(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(X, Y, Z) bool: where a subject's target is known inside its mask (``mask`` less
    the voxels outside a resampled target's field of view, ``coverage``) of its cached
    ``arrays`` (``load_subject``): what baselines fit on and metrics score."""
    mask = arrays["mask"][0] != 0
    return mask & (arrays["coverage"][0] != 0) if "coverage" in arrays else mask
