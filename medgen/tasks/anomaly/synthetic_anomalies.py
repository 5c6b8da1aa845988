"""Synthetic anomalies inserted into healthy evaluation slices, as the Medical
Out-of-Distribution Analysis (MOOD) challenge builds its test cases (Zimmerer et al.,
MOOD 2020-2023): seeded blobs of a few sizes inside the brain/body mask that change the
image in one of three ways, each with its pixel mask:

- ``intensity``: a smooth intensity shift (brighter or darker by ``intensity_shift`` of the
  slice's in-mask intensity range);
- ``noise``: the blob's pixels replaced by Gaussian noise with the slice's in-mask mean and
  standard deviation (texture gone, brightness kept);
- ``deformation``: the tissue inside the blob pushed outwards from its centre (a local
  "sink/source" warp, as MOOD's deformation cases): intensities barely change, shapes do.

A ``fraction`` of the slices (seeded choice) get exactly one anomaly; the rest stay as they
were. The label maps mark the changed pixels, so pixel-level AUROC/AUPRC and Dice can be
computed against them, and y says which slices hold one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import map_coordinates

from medgen.errors import MedgenInputError

KINDS = ("intensity", "noise", "deformation")


def _blob(shape: tuple[int, int], centre: np.ndarray, radius: float, rng: np.random.Generator
          ) -> np.ndarray:
    """A soft ellipse (weights in [0, 1], 1 inside) with random axes and orientation."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    a, b = radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.7, 1.3)
    dy, dx = yy - centre[0], xx - centre[1]
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / a
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / b
    distance = np.sqrt(u**2 + v**2)
    return np.clip(1.5 - distance, 0, 1).astype(np.float32)  # 1 inside, soft 0.5-radius rim


def _deform(image: np.ndarray, centre: np.ndarray, radius: float) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Push pixels within ``radius`` away from ``centre`` (C, H, W); returns the warped
    image and the changed region."""
    h, w = image.shape[-2:]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    dy, dx = yy - centre[0], xx - centre[1]
    r = np.sqrt(dy**2 + dx**2)
    inside = r < radius
    # sample from closer to the centre: r_src = r * (r / radius)^0.5 expands the middle
    scale = np.where(inside, np.sqrt(np.clip(r / radius, 1e-6, 1)), 1.0)
    coords = np.stack([centre[0] + dy * scale, centre[1] + dx * scale])
    warped = np.stack([map_coordinates(channel, coords, order=1, mode="nearest")
                       for channel in image])
    return warped.astype(np.float32), inside


def insert_anomalies(table: dict[str, np.ndarray], settings: dict[str, Any], seed: int
                     ) -> dict[str, np.ndarray]:
    """One synthetic anomaly in a seeded ``fraction`` of the slices of ``table``.

    Parameters
    ----------
    table
        Slices of one split (``medgen.tasks.anomaly.slices.volume_slices`` layout): images
        (n, C, S, S), masks and labels_map (n, S, S), y (n,).
    settings
        ``anomaly.synthetic_anomalies``: fraction, kinds (subset of KINDS), radii (pixels),
        intensity_shift (fraction of the in-mask intensity range).
    seed
        Seeds which slices, where, which kind, which size; the same seed gives the same
        anomalies.

    Returns
    -------
    A new table: images changed, labels_map = the changed pixels (inside the mask), y = 1
    for slices with an anomaly (0 otherwise), ``anomaly_kind`` ('' where none) and
    ``anomaly_fraction`` updated.
    """
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in table.items()}
    n = len(out["images"])
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(n, int(round(settings["fraction"] * n)), replace=False)] = True
    kinds = np.full(n, "", dtype=object)
    for i in np.flatnonzero(chosen):
        mask = out["masks"][i].astype(bool)
        image = out["images"][i]
        if not mask.any():
            chosen[i] = False
            continue
        values = image[:, mask]
        # centres on tissue: masks from 'nonzero' also hold faint voxels around the brain,
        # where an anomaly would be invisible
        tissue = mask & (image[0] > np.percentile(values[0], 25))
        inside = np.argwhere(tissue if tissue.any() else mask)
        radius = float(rng.choice(settings["radii"]))
        kind = str(rng.choice(settings["kinds"]))
        centre = inside[rng.integers(len(inside))].astype(np.float32)
        low, high = np.percentile(values, 1), np.percentile(values, 99)
        if kind == "deformation":
            warped, region = _deform(image, centre, radius)
            changed = region & mask
            out["images"][i] = np.where(changed[None], warped, image)
        else:
            weight = _blob(mask.shape, centre, radius, rng) * mask
            if kind == "intensity":
                sign = rng.choice([-1.0, 1.0])
                replacement = image + sign * settings["intensity_shift"] * (high - low)
            else:
                mean, sd = values.mean(axis=1), values.std(axis=1)
                replacement = (mean[:, None, None]
                               + sd[:, None, None] * rng.standard_normal(image.shape))
            out["images"][i] = (1 - weight) * image + weight * replacement.astype(np.float32)
            changed = weight >= 0.5
        out["labels_map"][i] = changed.astype(np.uint8)
        kinds[i] = kind
    out["y"] = chosen.astype(np.int8)
    out["anomaly_kind"] = kinds.astype(str)
    # reshape(n, -1) cannot infer the pixel count of a subject with no slice: name it
    pixels = int(np.prod(out["masks"].shape[1:]))
    mask_pixels = np.maximum(out["masks"].reshape(n, pixels).sum(axis=1), 1)
    out["anomaly_fraction"] = (out["labels_map"].reshape(n, pixels).sum(axis=1) / mask_pixels
                               ).astype(np.float32)
    return out


def synthetic_anomalies_on(cfg: dict[str, Any]) -> bool:
    """Synthetic anomalies go into the evaluation slices of the MNI152 demo (healthy by
    construction) always, and of other data only when the config activates them: a dataset
    config that inherits the demo's settings must never get fake lesions unasked.
    ``cfg``: the ``anomaly`` config section."""
    return cfg["kind"] == "mni152_demo" or bool(
        cfg.get("synthetic_anomalies", {}).get("activate"))


def check_healthy(rows) -> None:
    """Refuse synthetic anomalies for evaluation subjects with a label map: they are for
    healthy data, and the label map would be mixed with the inserted masks. ``rows``: sample
    sheet rows (``SheetRow``) of the evaluation splits; called when the workflow plans and
    again when a subject is prepared.

    Raises
    ------
    MedgenInputError
        Names the first such subject and its label file.
    """
    for row in rows:
        if row.label is not None:
            raise MedgenInputError(
                f"anomaly.synthetic_anomalies is on, but subject '{row.subject}' has a label "
                f"map ({row.label}): synthetic anomalies are for healthy data; switch them "
                "off or drop the label column")
