"""Checks of the ``synthesis`` config section that the schema cannot express, run when a
config is validated (before any job): HU ranges, a family to plan around, UNet baseline
sizes MONAI's UNet can run, a CT preset on the MR scale. Torch-free.
"""

from __future__ import annotations

import logging
from typing import Any

from medgen import registry
from medgen.errors import MedgenInputError

# the sliding window the 'unet_l1' baseline is applied with (a torch-free module)
from medgen.models.synthesis import WINDOW as SYNTHESIS_WINDOW

log = logging.getLogger(__name__)


def check_config(config: dict[str, Any]) -> None:
    """``TaskSpec.check_config`` of the synthesis task (only when 'synthesis' is in tasks).

    Raises
    ------
    MedgenInputError
        ``ct_window`` / ``ct_hu_range`` not [low, high]; an empty ``synthesis.families``
        outside apply mode; UNet baseline settings MONAI's UNet cannot run
        (``check_unet_baseline``). Warns (log) for the 'mr_to_ct' preset on the MR scale.
    """
    section = config.get("synthesis", {})
    if "synthesis" not in config.get("tasks", []):
        return
    for name in ("ct_window", "ct_hu_range"):
        if name in section and not section[name][0] < section[name][1]:
            raise MedgenInputError(
                f"config key 'synthesis.{name}' is {section[name]}; expected [low, high] "
                "Hounsfield units with low < high")
    if config.get("apply", {}).get("activate"):
        return  # apply mode trains nothing: its cascade is apply.model
    # the workflow plans the synthesis task (baselines included) only around a family
    families = section.get("families", [])
    if not families:
        raise MedgenInputError(
            "config key 'synthesis.families' is empty, but 'synthesis' is in tasks: without "
            "a family the workflow would plan nothing for synthesis (no baselines either); "
            f"list one (e.g. {registry.names('synthesis', baselines=False)}), or take "
            "synthesis out of tasks (to apply a trained model: apply.activate: true and "
            "apply.model)")
    if "unet_l1" in section.get("evaluation", {}).get("baselines", []):
        check_unet_baseline(section["evaluation"]["unet"])
    # the preset sets the model only; valid, but an MR -> CT model on the MR scale is
    # rarely what was meant (README, "Cross-modality synthesis")
    for family in families:
        entry = config.get("models", {}).get(family, {})
        if (entry.get("preset") == "mr_to_ct"
                and section.get("target_normalisation") != "ct_window"):
            log.warning(
                "models.%s.preset is 'mr_to_ct' but synthesis.target_normalisation is %r: "
                "the preset sets model weights only; for a CT target set "
                "synthesis.target_normalisation: ct_window and synthesis.target_is_ct: true",
                family, section.get("target_normalisation"))


def _nearest_multiple(value: int, step: int, minimum: int) -> int:
    low = value // step * step
    high = low + step
    return high if low < max(step, minimum) or value - low > high - value else low


def check_unet_baseline(unet: dict[str, Any], key: str = "synthesis.evaluation.unet") -> None:
    """Refuse settings of the L1 UNet baseline ('unet_l1') that MONAI's UNet cannot run.

    The UNet halves its input once per level after the first (strides of 2), then
    concatenates each upsampled map with the skip connection: a side not divisible by
    2 ** (levels - 1) leaves maps one voxel apart and torch fails at the last job ("Sizes
    of tensors must match"); a side of 2 ** (levels - 1) leaves 1 voxel at the bottom, which
    instance normalisation refuses. It trains on ``patch_size`` patches and is applied with
    ``SYNTHESIS_WINDOW`` windows (not ``synthesis.inference.window``): both must fit.

    Parameters
    ----------
    unet
        The resolved ``synthesis.evaluation.unet`` section (``channels``, ``patch_size``).
    key
        Config path of ``unet``, named in the message.

    Raises
    ------
    MedgenInputError
        ``channels`` with fewer than 2 levels, or more than ``SYNTHESIS_WINDOW`` allows;
        ``patch_size`` not a multiple of 2 ** (levels - 1), or below 2 ** levels (the
        nearest valid size is named).
    """
    channels = list(unet["channels"])
    levels = len(channels)
    most = SYNTHESIS_WINDOW.bit_length() - 1  # 2 ** most == SYNTHESIS_WINDOW
    if not 2 <= levels <= most:
        raise MedgenInputError(
            f"config key '{key}.channels' is {channels} ({levels} level(s)); expected 2 to "
            f"{most} widths: MONAI's UNet needs at least 2 levels, and halving its "
            f"{SYNTHESIS_WINDOW}-voxel inference windows {most} times or more leaves 1 voxel "
            "(or remove 'unet_l1' from synthesis.evaluation.baselines)")
    step, patch = 2 ** (levels - 1), int(unet["patch_size"])
    if patch % step or patch < 2 * step:
        raise MedgenInputError(
            f"config key '{key}.patch_size' is {patch}, but the UNet of {levels} levels "
            f"(channels {channels}) halves its input {levels - 1} times: expected a multiple "
            f"of {step} of at least {2 * step}, e.g. {_nearest_multiple(patch, step, 2 * step)}")
