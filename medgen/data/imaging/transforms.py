"""Per-volume preprocessing as composed MONAI dictionary transforms.

Load (all modalities of one subject, checked for equal grids) -> reorient -> optional
resampling -> mask -> intensity normalisation inside the mask -> crop to the mask's box.
Keys of the dictionaries: ``image`` (C, X, Y, Z), ``mask`` (1, X, Y, Z), ``label``
(1, X, Y, Z, optional) and ``affine`` (4x4, kept as a plain tensor so the disk cache, which
stores tensors only, keeps it).
"""

from __future__ import annotations

import logging
from typing import Any

import nibabel as nib
import nibabel.processing
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    CropForegroundd,
    MapTransform,
    Orientationd,
    Spacingd,
)

from medgen.data.imaging import intensity
from medgen.data.imaging.readers import read_volume
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

IMAGE, MASK, LABEL, AFFINE = "image", "mask", "label", "affine"
FULL_MASK_FRACTION = 0.99  # a mask this large is no mask
BACKGROUND_SHARE = 0.05  # a constant held by this many voxels is background, not tissue
LARGE_MASK_FRACTION = 0.5  # a nonzero mask this large is checked for a non-zero background
MASKED_BACKGROUND_SHARE = 0.2  # one value on this share of a large mask is no tissue
AFFINE_ATOL = 1e-3  # mm; affines written by different tools differ in float rounding


class LoadSubjectd(MapTransform):
    """Read every modality (and mask/label) of one subject onto one grid.

    Input keys: ``subject``, one path per modality, optional ``mask_path``/``label_path``.
    Different shapes or affines fail, or are resampled onto the first modality's grid when
    ``on_mismatch == 'resample'`` (linear for images, nearest for mask and label).
    """

    def __init__(self, modalities: list[str], dicom_tilt: str, on_mismatch: str) -> None:
        super().__init__(keys=modalities)
        self.modalities = modalities
        self.dicom_tilt = dicom_tilt
        self.on_mismatch = on_mismatch

    def _onto(self, ref: tuple, arr: np.ndarray, aff: np.ndarray, what: str, order: int,
              subject: str) -> np.ndarray:
        same = arr.shape == ref[0].shape and np.allclose(aff, ref[1], atol=AFFINE_ATOL)
        if same:
            return arr
        if self.on_mismatch != "resample":
            raise MedgenInputError(
                f"subject '{subject}': {what} has shape {arr.shape} and affine differing from "
                f"the first modality ({ref[0].shape}); set anomaly.on_mismatch: resample "
                "to resample it onto the first modality's grid"
            )
        moved = nibabel.processing.resample_from_to(
            nib.Nifti1Image(arr, aff), (ref[0].shape, ref[1]), order=order, cval=0.0
        )
        return np.asarray(moved.dataobj, dtype=np.float32)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        subject = data["subject"]
        ref = read_volume(data[self.modalities[0]], self.dicom_tilt)
        channels = [ref[0]]
        for modality in self.modalities[1:]:
            arr, aff = read_volume(data[modality], self.dicom_tilt)
            channels.append(self._onto(ref, arr, aff, f"modality '{modality}'", 1, subject))
        affine = torch.as_tensor(ref[1], dtype=torch.float64)
        out = {"subject": subject, IMAGE: MetaTensor(np.stack(channels), affine=affine)}
        for key in (MASK, LABEL):
            if data.get(f"{key}_path"):
                arr, aff = read_volume(data[f"{key}_path"], self.dicom_tilt)
                arr = self._onto(ref, np.rint(arr), aff, key, 0, subject)
                out[key] = MetaTensor(arr[None], affine=affine)
        return out


def most_frequent(values: torch.Tensor) -> tuple[float, float]:
    """The most frequent value of a tensor and the fraction of elements that hold it."""
    unique, counts = torch.unique(values.reshape(-1), return_counts=True)
    k = int(torch.argmax(counts))
    return float(unique[k]), float(counts[k]) / values.numel()


class MakeMaskd(MapTransform):
    """Brain/body mask: nonzero in any channel, the given mask, a threshold, or 'background'
    (any channel differs from its most frequent value); never empty.

    A 'nonzero' mask that covers (nearly) the whole volume is refused when the volume has a
    constant non-zero background (z-normalised BraTS releases: background -0.8, say), which
    would make every voxel "in-mask" and cropping a no-op; otherwise it is logged.
    """

    def __init__(self, method: str, threshold: float) -> None:
        super().__init__(keys=[IMAGE])
        self.method = method
        self.threshold = threshold

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        image = data[IMAGE]
        if self.method == "given":
            if MASK not in data:
                raise MedgenInputError(
                    f"subject '{data['subject']}': anomaly.mask is 'given' but the sample "
                    "sheet has no mask for it"
                )
            mask = data[MASK] > 0
        elif self.method == "threshold":
            mask = image[:1] > self.threshold
        elif self.method == "background":
            background = torch.tensor([most_frequent(c)[0] for c in image], dtype=image.dtype)
            # zero-padded slabs around a constant-background volume are background too
            mask = ((image != background.reshape(-1, *[1] * (image.ndim - 1)))
                    & (image != 0)).any(dim=0, keepdim=True)
        else:
            mask = (image != 0).any(dim=0, keepdim=True)
            self._check_whole_volume(data["subject"], image, mask)
        if not bool(mask.any()):
            raise MedgenInputError(
                f"subject '{data['subject']}': the {self.method} mask is empty "
                "(all-zero image or mask file?)"
            )
        data[MASK] = mask.to(torch.uint8)
        return data

    @staticmethod
    def _check_whole_volume(subject: str, image: torch.Tensor, mask: torch.Tensor) -> None:
        covered = float(mask.float().mean())
        if covered < LARGE_MASK_FRACTION:
            return
        inside = mask[0].bool() if mask.dim() == image.dim() else mask.bool()
        # every channel: one modality with a constant non-zero background is enough to
        # make the nonzero mask the whole box; zero-padded slabs can hide part of it
        for c in range(image.shape[0]):
            value, share = most_frequent(image[c][inside])
            if value != 0 and share * covered >= BACKGROUND_SHARE and (
                    covered >= FULL_MASK_FRACTION or share >= MASKED_BACKGROUND_SHARE):
                raise MedgenInputError(
                    f"subject '{subject}': the nonzero mask covers {covered:.0%} of the "
                    f"volume, and channel {c} holds the constant {value:.4g} on {share:.0%} "
                    "of it: a background that is not 0 (a z-normalised volume?); set "
                    "anomaly.mask: background (background = each volume's most frequent "
                    "value) or anomaly.mask: given with a mask column in the sample sheet"
                )
        if covered < FULL_MASK_FRACTION:
            return
        log.warning("subject '%s': the nonzero mask covers %.1f%% of the volume, so cropping "
                    "to it does nothing; anomaly.mask: given, threshold or background may fit "
                    "better", subject, 100 * covered)


class MaskedNormalised(MapTransform):
    """Intensity normalisation per channel using mask voxels only; zero outside the mask.

    The anomaly task's use of the one normaliser, ``medgen.data.imaging.intensity``:
    each channel is fitted on its own mask voxels (``intensity.fit``, a near-constant
    channel allowed) and scaled (``intensity.apply``). 'none' keeps the stored scale
    inside the mask.
    """

    def __init__(self, method: str, lower: float, upper: float, window: list[float]) -> None:
        super().__init__(keys=[IMAGE])
        self.method, self.percentiles, self.window = method, (lower, upper), window

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        image = data[IMAGE].float()
        inside = data[MASK][0].bool()
        out = torch.zeros_like(image)
        for c in range(image.shape[0]):
            if self.method == "none":
                out[c] = torch.where(inside, image[c], 0.0)
                continue
            params = intensity.fit(image[c], inside, self.method, self.window,
                                   self.percentiles, allow_constant=True)
            out[c] = torch.as_tensor(intensity.apply(image[c], params, inside))
        data[IMAGE] = out
        return data


class StoreAffined(MapTransform):
    """Copy the image's affine into a plain tensor and drop metadata (cache-safe)."""

    def __init__(self) -> None:
        super().__init__(keys=[IMAGE])

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        data[AFFINE] = torch.as_tensor(data[IMAGE].affine, dtype=torch.float64).clone()
        for key in (IMAGE, MASK, LABEL):
            if key in data:
                data[key] = torch.as_tensor(data[key]).clone()
        return data


def volume_transforms(cfg: dict[str, Any]) -> Compose:
    """The deterministic preprocessing chain for one subject, from the imaging config."""
    keys = [IMAGE, MASK, LABEL]
    steps: list[Any] = [
        LoadSubjectd(cfg["modalities"], cfg["dicom_tilt"], cfg["on_mismatch"]),
    ]
    if cfg["reorient"] == "RAS":
        steps.append(Orientationd(
            keys=keys, axcodes="RAS", allow_missing_keys=True,
            labels=(("L", "R"), ("P", "A"), ("I", "S")),
        ))
    if cfg.get("target_spacing"):
        steps.append(Spacingd(
            keys=keys, pixdim=cfg["target_spacing"], mode=("bilinear", "nearest", "nearest"),
            allow_missing_keys=True,
        ))
    steps.append(MakeMaskd(cfg["mask"], cfg["mask_threshold"]))
    steps.append(MaskedNormalised(
        cfg["normalisation"], cfg["lower_percentile"], cfg["upper_percentile"], cfg["ct_window"]
    ))
    if cfg["crop_to_mask"]:
        steps.append(CropForegroundd(keys=keys, source_key=MASK, allow_missing_keys=True))
    steps.append(StoreAffined())
    return Compose(steps)


def unwrap_transform_error(err: BaseException) -> BaseException:
    """MONAI wraps errors raised inside transforms; surface our MedgenInputError unchanged."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, MedgenInputError):
            return cause
        cause = cause.__cause__
    return err
