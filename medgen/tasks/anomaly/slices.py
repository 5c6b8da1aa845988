"""2D slices and patches from preprocessed volumes, labelled from the label (tumour) map.

A slice or patch is anomalous when the fraction of its mask pixels carrying a label > 0
exceeds ``anomaly_fraction``; it is normal (tumour-free) only when no pixel has a label > 0;
units in between get y = -1 and are left out of slice-level metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.transforms import ResizeWithPadOrCrop

NORMAL, ANOMALOUS, AMBIGUOUS = 0, 1, -1


def unit_labels(anomalous_pixels: np.ndarray, mask_pixels: np.ndarray, threshold: float
                ) -> np.ndarray:
    fraction = anomalous_pixels / np.maximum(mask_pixels, 1)
    y = np.full(len(fraction), AMBIGUOUS, dtype=np.int8)
    y[anomalous_pixels == 0] = NORMAL
    y[fraction > threshold] = ANOMALOUS
    return y


def pad_or_crop(stack: torch.Tensor, size: int) -> torch.Tensor:
    """Centre pad/crop the last two axes of (N, ..., H, W) to (size, size) (MONAI transform)."""
    lead = stack.shape[:-2]
    flat = stack.reshape(-1, *stack.shape[-2:])  # channel axis = every leading axis
    out = ResizeWithPadOrCrop(spatial_size=(size, size))(flat)
    return torch.as_tensor(out).reshape(*lead, size, size)


def volume_slices(volume: dict[str, Any], cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """All slices of one preprocessed subject along ``slice_axis`` with enough mask.

    Returns images (n, C, S, S), masks and label maps (n, S, S), the slice index in the
    cropped volume, the mask fraction of the padded slice, the label fraction inside the
    mask and y.
    """
    axis = cfg["slice_axis"]
    size = cfg["slice_size"]
    image = torch.as_tensor(volume["image"]).float()
    mask = torch.as_tensor(volume["mask"]).float()
    label = (torch.as_tensor(volume["label"]).float() if "label" in volume
             else torch.zeros_like(mask))
    # (C, X, Y, Z) -> (n_slices, C, a, b)
    move = lambda t: t.movedim(axis + 1, 0)  # noqa: E731
    images = pad_or_crop(move(image), size)
    masks = pad_or_crop(move(mask)[:, 0], size)
    labels = pad_or_crop((move(label)[:, 0] > 0).float(), size) * masks
    mask_pixels = masks.sum(dim=(1, 2)).numpy()
    keep = mask_pixels / size**2 >= cfg["min_mask_fraction"]
    anomalous_pixels = labels.sum(dim=(1, 2)).numpy()
    index = np.flatnonzero(keep)
    return {
        "images": images[keep].numpy().astype(np.float32),
        "masks": masks[keep].numpy().astype(np.uint8),
        "labels_map": labels[keep].numpy().astype(np.uint8),
        "index": index.astype(np.int32),
        "mask_fraction": (mask_pixels[keep] / size**2).astype(np.float32),
        "anomaly_fraction": (anomalous_pixels[keep] / np.maximum(mask_pixels[keep], 1)
                             ).astype(np.float32),
        "y": unit_labels(anomalous_pixels[keep], mask_pixels[keep], cfg["anomaly_fraction"]),
    }


def normal_patches(slices: dict[str, np.ndarray], cfg: dict[str, Any], rng: np.random.Generator
                   ) -> np.ndarray:
    """Tumour-free patches (no label > 0) of image_size with enough mask, seeded subsample."""
    size, stride = cfg["image_size"], cfg["patch_stride"]
    images = torch.as_tensor(slices["images"])
    if images.shape[-1] < size:
        return np.zeros((0, images.shape[1], size, size), dtype=np.float32)
    unfold = lambda t: t.unfold(-2, size, stride).unfold(-2, size, stride)  # noqa: E731
    patches = unfold(images)  # (n, C, ph, pw, size, size)
    masks = unfold(torch.as_tensor(slices["masks"]).float())  # (n, ph, pw, size, size)
    labels = unfold(torch.as_tensor(slices["labels_map"]).float())
    ok = (masks.mean(dim=(-1, -2)) >= cfg["patch_min_mask_fraction"]) & (
        labels.sum(dim=(-1, -2)) == 0
    )
    picked = patches.permute(0, 2, 3, 1, 4, 5)[ok]  # (k, C, size, size)
    if len(picked) > cfg["max_patches_per_subject"]:
        choice = np.sort(rng.choice(len(picked), cfg["max_patches_per_subject"], replace=False))
        picked = picked[torch.as_tensor(choice)]
    return picked.numpy().astype(np.float32)
