"""Checks of the ``anomaly`` config section that the schema cannot express, run when a
config is validated (before any job): image sides the networks can be built for, clip
percentiles, the median filter's window. Torch-free: planning a run must not import torch.
"""

from __future__ import annotations

from typing import Any

from medgen.errors import MedgenInputError

VOLUME_KINDS = ("volumes", "mni152_demo")  # sliced into 2D; 'npz2d' is 2D already


def model_side_key(imaging: dict[str, Any]) -> str:
    """The ``anomaly`` key that sets the side of the training images, which the anomaly
    networks are built for: ``slice_size`` for whole slices of volumes (unit 'slice'),
    else ``image_size`` (patches cut from the slices, or 'npz2d' images resized to it)."""
    if imaging.get("kind") in VOLUME_KINDS and imaging.get("unit") == "slice":
        return "slice_size"
    return "image_size"


def check_image_sizes(imaging: dict[str, Any]) -> None:
    """Refuse image sides the anomaly branch cannot train on, before any job runs.

    The DCGAN-style generators and critics (``medgen.nn.dcgan.n_doublings``) double a 4 x 4
    map up to the training side, so it must be a power of two >= 8; with unit 'patch' the
    patches (``image_size``) are cut from slices of ``slice_size``, so they must fit.

    Parameters
    ----------
    imaging
        The resolved ``anomaly`` section (defaults filled).

    Raises
    ------
    MedgenInputError
        The side of ``model_side_key`` is not a power of two >= 8 (the nearest valid sides
        are named); ``image_size`` larger than ``slice_size`` with unit 'patch' on volumes.
    """
    key = model_side_key(imaging)
    side = imaging.get(key)
    if side is None:
        return
    if side < 8 or side & (side - 1):
        low = 1 << (side.bit_length() - 1) if side > 8 else 8
        near = [low, 2 * low] if side > 8 else [8]
        why = (" (unit 'slice': the networks train on whole slices of slice_size)"
               if key == "slice_size" else "")
        raise MedgenInputError(
            f"config key 'anomaly.{key}' is {side}; expected a power of two >= 8 (e.g. "
            f"{' or '.join(map(str, near))}): the generators and critics double a 4 x 4 map "
            f"up to the training images' side{why}")
    if imaging.get("kind") in VOLUME_KINDS and imaging.get("unit") == "patch":
        size, slice_size = imaging["image_size"], imaging["slice_size"]
        if size > slice_size:
            raise MedgenInputError(
                f"config key 'anomaly.image_size' is {size}, larger than anomaly.slice_size "
                f"{slice_size}; expected image_size <= slice_size: unit 'patch' cuts patches "
                "of image_size from slices of slice_size, so none would fit (raise slice_size "
                "or lower image_size)")


def _check_percentiles(imaging: dict[str, Any]) -> None:
    # equal or swapped clip percentiles leave (almost) nothing between them: binary images
    low, high = imaging.get("lower_percentile"), imaging.get("upper_percentile")
    if low is not None and high is not None and not low < high:
        raise MedgenInputError(
            f"config key 'anomaly.lower_percentile' is {low}, not below "
            f"anomaly.upper_percentile {high}; expected lower_percentile < upper_percentile")


def _check_median_filter(imaging: dict[str, Any]) -> None:
    # an even window has no centre pixel: the filtered maps shift half a pixel off the masks
    setting = imaging.get("evaluation", {}).get("median_filter", 0)
    sizes = setting if isinstance(setting, list) else [setting]
    if isinstance(setting, list) and (not setting or len(set(setting)) != len(setting)):
        raise MedgenInputError(
            f"config key 'anomaly.evaluation.median_filter' is {setting}; expected one size or "
            "a non-empty list of different sizes to choose among on the val split")
    for size in sizes:
        if size and size % 2 == 0:
            raise MedgenInputError(
                f"config key 'anomaly.evaluation.median_filter' is {setting}; expected 0 (no "
                "filter) or an odd size (1, 3, 5, ...), or a list of them: an even window has "
                "no centre pixel")


def check_config(config: dict[str, Any]) -> None:
    """``TaskSpec.check_config`` of the anomaly task: the resolved config's ``anomaly``
    section (checked whether or not the task is listed, as the defaults always fill it).

    Raises
    ------
    MedgenInputError
        An image side the networks cannot take (``check_image_sizes``), lower_percentile
        not below upper_percentile, an even median-filter window.
    """
    imaging = config.get("anomaly", {})
    check_image_sizes(imaging)
    _check_percentiles(imaging)
    _check_median_filter(imaging)
