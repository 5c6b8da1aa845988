"""``prepare_images``: sample sheet -> per-split arrays the anomaly models train and score on.

Writes ``<out_dir>/{train,val,test}.npz`` and ``<out_dir>/volumes.json`` (geometry needed to
put slice residual maps back into the input's grid) and ``provenance.json``. ``train.npz``
holds the training units (normal images, slices or tumour-free patches); ``val.npz`` and
``test.npz`` hold every image or slice with its label y (0 normal, 1 anomalous, -1 between).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgen import atomic, provenance
from medgen.data.imaging.readers import read_npz2d
from medgen.data.imaging.sheet import SPLITS, SheetRow, read_sample_sheet
from medgen.data.imaging.transforms import (
    IMAGE,
    MASK,
    MaskedNormalised,
    unwrap_transform_error,
    volume_transforms,
)
from medgen.errors import MedgenInputError
from medgen.tasks.anomaly import slices as slicing
from medgen.tasks.anomaly.demo import mni152_demo_sheet
from medgen.tasks.anomaly.synthetic_anomalies import (
    check_healthy,
    insert_anomalies,
    synthetic_anomalies_on,
)

log = logging.getLogger(__name__)


class _ReadKeys(dict):
    """A config mapping that records which keys are read."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def transform_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings the volume transforms read (found by building them, so no list of keys
    can fall behind the transforms): what a cached volume depends on besides its files."""
    recorder = _ReadKeys(cfg)
    volume_transforms(recorder)
    return {key: cfg.get(key) for key in sorted(recorder.read)}


def prepared_modalities(data_dir: str | Path) -> list[str] | None:
    """The modalities (channel order) a prepared folder holds, from its provenance.json
    (None when the folder has none, e.g. hand-made test data)."""
    record = Path(data_dir) / "provenance.json"
    if not record.exists():
        return None
    imaging = json.loads(record.read_text()).get("config", {}).get("anomaly", {})
    return list(imaging["modalities"]) if "modalities" in imaging else None


def load_split(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _cache_token(row: SheetRow, cfg: dict[str, Any]) -> str:
    """Changes when an input file or a preprocessing setting changes (invalidates the cache)."""
    parts = [json.dumps(transform_settings(cfg), sort_keys=True, default=str)]
    for p in row.paths():
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        parts += [f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files if f.is_file()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def volume_dataset(rows: list[SheetRow], cfg: dict[str, Any], cache_dir: Path | None):
    """MONAI dataset of preprocessed subjects; PersistentDataset caches to disk."""
    from monai.data import Dataset, PersistentDataset

    items = [
        {
            "subject": r.subject,
            **{m: str(p) for m, p in r.images.items()},
            **({"mask_path": str(r.mask)} if r.mask else {}),
            **({"label_path": str(r.label)} if r.label else {}),
            "cache_token": _cache_token(r, cfg),
        }
        for r in rows
    ]
    transform = volume_transforms(cfg)
    if cache_dir is not None and cfg.get("cache", True):
        return PersistentDataset(items, transform=transform, cache_dir=cache_dir)
    return Dataset(items, transform=transform)


def load_volume(dataset, i: int) -> dict[str, Any]:
    try:
        return dataset[i]
    except Exception as err:  # MONAI wraps transform errors in RuntimeError
        raise unwrap_transform_error(err) from None


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _prepare_volumes(rows, cfg, seed, out_dir, cache_dir, apply=False) -> dict[str, Any]:
    dataset = volume_dataset(rows, cfg, cache_dir)
    rng = np.random.default_rng(seed)
    splits: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in SPLITS}
    geometry: dict[str, Any] = {}
    for i, row in enumerate(rows):
        volume = load_volume(dataset, i)
        table = slicing.volume_slices(volume, cfg)
        if row.split != "train" and synthetic_anomalies_on(cfg):
            table = _with_synthetic_anomalies(table, row, cfg["synthetic_anomalies"], seed)
        n = len(table["y"])
        table["subject"] = np.array([row.subject] * n)
        geometry[row.subject] = {
            "affine": np.asarray(volume["affine"]).tolist(),
            "shape": list(np.asarray(volume["image"]).shape[1:]),
            "reference": str(next(iter(row.images.values()))),
        }
        if row.split == "train":
            if cfg["unit"] == "patch":
                patches = slicing.normal_patches(table, cfg, rng)
                table = {
                    "images": patches, "y": np.zeros(len(patches), np.int8),
                    "subject": np.array([row.subject] * len(patches)),
                }
            else:
                normal = table["y"] == slicing.NORMAL
                table = {k: v[normal] for k, v in table.items()}
        splits[row.split].append(table)
    outputs = {}
    for split, parts in splits.items():
        if not parts:
            if split == "train" and not apply:
                raise MedgenInputError("the sample sheet has no subject in split 'train'")
            continue
        arrays = _concat(parts)
        if split == "train" and len(arrays["images"]) == 0:
            raise MedgenInputError("no normal training units: every slice/patch holds a label")
        atomic.save_npz(out_dir / f"{split}.npz", arrays)
        outputs[split] = out_dir / f"{split}.npz"
    atomic.write_json(out_dir / "volumes.json", {"slice_axis": cfg["slice_axis"],
                                                 "slice_size": cfg["slice_size"],
                                                 "subjects": geometry})
    return outputs


def _with_synthetic_anomalies(table: dict[str, np.ndarray], row: SheetRow,
                              settings: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """MOOD-style anomalies in the slices of a healthy evaluation subject (seeded by the
    run's seed and the subject's name, so val and test differ and reruns agree)."""
    check_healthy([row])
    subject_seed = int.from_bytes(hashlib.sha256(row.subject.encode()).digest()[:4], "little")
    out = insert_anomalies(table, settings, seed + subject_seed)
    log.info("subject %s: synthetic anomalies in %d of %d slices (%s)", row.subject,
             int(out["y"].sum()), len(out["y"]),
             ", ".join(f"{k} {int((out['anomaly_kind'] == k).sum())}" for k in settings["kinds"]))
    return out


def _to_size(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) -> (N, 1, size, size): zero-pad small differences, resize otherwise."""
    from monai.transforms import Resize

    tensor = torch.as_tensor(images)[:, None]
    h = images.shape[-1]
    if h == size:
        return tensor.numpy()
    if 0 < size - h <= 8:
        return slicing.pad_or_crop(tensor, size).numpy()
    resized = Resize(spatial_size=(size, size), mode="bilinear", anti_aliasing=True)
    return np.stack([np.asarray(resized(t)) for t in tensor]).astype(np.float32)


def normalise_images(images: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Per-image intensity normalisation of (N, 1, H, W) images (config 'normalisation').

    Each image is scaled on its own, as each volume is: X-rays from different machines and
    exposures differ in brightness and contrast more than normal and diseased lungs do.
    """
    method = cfg["normalisation"]
    if method == "none":
        return images
    if method == "ct_window":
        raise MedgenInputError(
            "config key 'anomaly.normalisation': 'ct_window' needs Hounsfield units; 2D "
            "'npz2d' images take 'percentile', 'p99', 'brasyn', 'zscore' or 'none'"
        )
    normalise = MaskedNormalised(method, cfg["lower_percentile"], cfg["upper_percentile"],
                                 cfg["ct_window"])
    whole = torch.ones((1, *images.shape[-2:]), dtype=torch.uint8)
    return np.stack([
        normalise({IMAGE: torch.as_tensor(image), MASK: whole})[IMAGE].numpy()
        for image in images
    ]).astype(np.float32)


def _prepare_npz(rows, cfg, out_dir, apply=False) -> dict[str, Any]:
    splits: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in SPLITS}
    for row in rows:
        if not row.npz_split:
            raise MedgenInputError(
                f"sample sheet: subject '{row.subject}' has an .npz image but no npz_split"
            )
        path = next(iter(row.images.values()))
        images, labels = read_npz2d(path, row.npz_split)
        scale = 255.0 if images.max() > 1.5 else 1.0  # MedMNIST stores uint8
        if row.split == "train" and cfg["npz_train_label"] is not None:
            keep = labels == cfg["npz_train_label"]
            images, labels = images[keep], labels[keep]
        n = len(images)
        raw = (images / scale).astype(np.float32)[:, None]
        arrays = {
            # normalised before padding, so that pad zeros do not count as dark pixels
            "images": _to_size(normalise_images(raw, cfg)[:, 0], cfg["image_size"]),
            # trivial scores (brightness, ...) look at the image as stored, not normalised
            "raw_images": _to_size(raw[:, 0], cfg["image_size"]),
            "y": (labels != 0).astype(np.int8) if labels.min() >= 0 else labels.astype(np.int8),
            "subject": np.array([f"{row.subject}:{i}" for i in range(n)]),
            "index": np.arange(n, dtype=np.int32),
        }
        splits[row.split].append(arrays)
    if not splits["train"] and not apply:  # before writing anything: nothing half-written
        raise MedgenInputError("the sample sheet has no subject in split 'train'")
    outputs = {}
    for split, parts in splits.items():
        if parts:
            atomic.save_npz(out_dir / f"{split}.npz", _concat(parts))
            outputs[split] = out_dir / f"{split}.npz"
    return outputs


def prepare_images(
    sample_sheet: str | Path | None,
    imaging_cfg: dict[str, Any],
    seed: int,
    out_dir: str | Path,
    cache_dir: str | Path | None = None,
    apply: bool = False,
    splits: tuple[str, ...] = SPLITS,
) -> dict[str, Path]:
    """Read, preprocess and split the images of a sample sheet; returns split -> .npz path.

    Parameters
    ----------
    sample_sheet
        TSV sample sheet (ignored for kind 'mni152_demo', which builds its own).
    imaging_cfg
        The resolved ``anomaly`` config section.
    seed
        Seed for group-based splits and patch subsampling.
    out_dir
        Folder for ``{train,val,test}.npz``, ``volumes.json`` and ``provenance.json``.
    cache_dir
        Disk cache of preprocessed volumes (default ``<out_dir>/cache``).
    apply
        New data for a trained model: every subject is evaluation data ('test', whatever
        the sheet says), and no training split is needed.
    splits
        Prepare only these splits' subjects (the workflow prepares the training units and
        the evaluation data as separate outputs, so new test subjects never touch
        training); a training split is required only when 'train' is among them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = dict(imaging_cfg)
    if cfg["kind"] == "mni152_demo":
        sample_sheet = mni152_demo_sheet(out_dir / "mni152", slice_axis=cfg["slice_axis"])
        cfg["modalities"] = ["t1"]
    if sample_sheet is None:
        raise MedgenInputError("config key 'anomaly.sample_sheet' is required for this kind")
    rows = read_sample_sheet(
        sample_sheet, cfg["modalities"], cfg.get("split"), seed, cfg.get("data_root"),
        new_data=apply,
    )
    rows = [row for row in rows if row.split in splits]
    optional_train = apply or "train" not in splits
    if cfg["kind"] == "npz2d":
        outputs = _prepare_npz(rows, cfg, out_dir, optional_train)
    else:
        cache = Path(cache_dir) if cache_dir else out_dir / "cache"
        outputs = _prepare_volumes(rows, cfg, seed, out_dir, cache, optional_train)
    inputs = [p for r in rows for p in r.paths()]
    atomic.write_json(out_dir / "provenance.json", provenance.collect(
        {"anomaly": cfg, "splits": {r.subject: r.split for r in rows}}, seed, inputs))
    return outputs
