"""Context-aware synthesis GAN (Nie et al., MICCAI 2017 "Medical Image Synthesis with
Context-Aware Generative Adversarial Networks"; TBME 2018): a 3D fully convolutional
generator maps source patches to target patches, trained with an adversarial term, L2 and
the image gradient difference loss (GDL); an auto-context cascade feeds each level the
source plus the previous level's synthetic target (``medgen.tasks.synthesis.auto_context``).

Task 'synthesis'; data module ``medgen.tasks.synthesis.loaders``; whole-volume
inference ``medgen.tasks.synthesis.inference``.

Presets (flat dicts of plain values):
- 'paper': 32^3 source -> 16^3 target with valid convolutions, as the paper's 3D code;
  MODELS.md gives the patch sizes, not the layer list: ours reaches the 8-voxel margin with
  kernels 7, 5, 5, 3 (32 channels). The paper's small 3D CNN discriminator. Weights: L2 1,
  GDL 1 (exponent 2), adversarial 0.5: the weight the 3D paper reports (0.05 is from the 2D
  code, whose slices and loss scale differ). Auto-context with 2 levels.
- 'default': the same loss, same-size output (padding 'same', six 3^3 layers of 16
  channels): every output voxel of a window is usable, so sliding-window inference needs no
  8-voxel margin and covers a BraTS volume in seconds on 2 CPU cores; MONAI's
  ``PatchDiscriminator``; adversarial weight 0.05, the smaller documented weight, because
  with 6 training subjects the reconstruction terms must set the intensities (the target
  allows at most 0.5 dB PSNR for sharper edges).
- 'l1_only': the default generator trained with L1 alone (no adversarial term, no GDL, one
  level): the ablation baseline.
- 'mr_to_ct': MR -> CT, the paper's own task (Nie et al. synthesise CT from MR, brain and
  pelvis). The 'default' geometry (same-size output, ``PatchDiscriminator``, fast
  whole-volume inference) with the paper's 3D loss weights (L2 1, GDL 1 exponent 2,
  adversarial 0.5, chosen for MR -> CT) and its 32 channels: bone/air edges are the
  sharpest in a CT, what the GDL and adversarial terms are for. Pair it with the data
  settings ``synthesis.target_normalisation: ct_window`` (Hounsfield window [-1024, 3071]
  -> [0, 1]) and ``synthesis.target_is_ct: true`` (targets outside ``ct_hu_range`` are
  refused): outputs are then written, and MAE reported, in Hounsfield units.

Every preset and override passes ``check_hparams`` when the config is validated: a patch
the generator's valid convolutions leave too little of, or smaller than the discriminator
can see, fails naming ``models.context_gan.params.patch_size``.

``select_on_val`` (True in 'default', 'l1_only' and 'mr_to_ct', False in 'paper'): export
the networks of the epoch with the lowest ``val_mae`` (mean absolute error on fixed patches
of the validation subject; ties: the earliest epoch) instead of the last epoch's. Why: on
BraTS T2 -> FLAIR the default GAN's val_mae fell to 0.075 around epoch 8, then drifted up to
~0.2 by epoch 40 as the discriminator won (loss_d 1.2 -> 0.38, training L2 0.024 -> 0.048):
the last epoch was a degraded generator. The kept epoch and its val_mae are in ``model.pt``'s
provenance (``model_selection``); the kept weights ride in every Lightning checkpoint, so a
resumed run exports what an uninterrupted one does. Without a validation subject the last
epoch is exported and the log says so. Selecting on the validation subject makes its own
evaluation numbers optimistic: the test subjects are the unbiased ones. 'paper' keeps the
last epoch, as the paper reports it.

``auto_context_levels`` is K; each level is trained as its own job on the prepared data
plus the previous level's whole-volume output (README, "Auto-context levels").
"""

from __future__ import annotations

from typing import Any

from medgen.errors import MedgenInputError
from medgen.family import FamilySpec, Stage

MIN_PATCH_DISCRIMINATOR = 32  # MONAI PatchDiscriminator (3 layers): below, one logit or none
MIN_CNN_DISCRIMINATOR = 8  # three 2x max-pools of the paper's CNN
MIN_OUTPUT = 4  # voxels per side left after valid convolutions
# What medgen.models.context_gan.module builds, spelt out: family modules stay torch-free so
# that Snakemake parses and config validation are quick (a test keeps them equal)
NORMS = ("batch", "instance", "none")  # module.NORMS
PADDINGS = ("same", "valid")  # FCNGenerator
DISCRIMINATORS = ("patch", "cnn")  # build_networks
# >= 1, lr > 0 (FamilySpec.check_positive; the training stage's max_epochs is added)
_POSITIVE = ("samples_per_volume", "batch_size", "auto_context_levels", "generator_channels",
             "discriminator_channels", "lr")
_LOSS_WEIGHTS = ("l1_weight", "l2_weight", "gdl_weight", "adversarial_weight")

_DEFAULT: dict[str, Any] = {
    "patch_size": 32,
    "padding": "same",
    "generator_channels": 16,
    "generator_kernels": [3, 3, 3, 3, 3, 3],
    "norm": "batch",
    "discriminator": "patch",        # MONAI PatchDiscriminator
    "discriminator_channels": 16,
    "l1_weight": 0.0,
    "l2_weight": 1.0,
    "gdl_weight": 1.0,
    "adversarial_weight": 0.05,
    "auto_context_levels": 2,
    "samples_per_volume": 64,        # patches per training subject per epoch
    "lr": 0.0002,
    "beta1": 0.5,
    "batch_size": 8,
    "max_epochs": 40,
    "select_on_val": True,           # export the epoch of lowest val_mae (docstring: why)
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        **_DEFAULT,
        "padding": "valid",              # 32^3 -> 16^3
        "generator_channels": 32,
        "generator_kernels": [7, 5, 5, 3],
        "discriminator": "cnn",          # the paper's small 3D CNN
        "discriminator_channels": 32,
        "adversarial_weight": 0.5,
        "batch_size": 16,
        "lr": 0.0001,
        "max_epochs": 100,
        "select_on_val": False,          # the paper keeps its last iterate
    },
    "default": dict(_DEFAULT),
    "l1_only": {**_DEFAULT, "l1_weight": 1.0, "l2_weight": 0.0, "gdl_weight": 0.0,
                "adversarial_weight": 0.0, "auto_context_levels": 1},
    "mr_to_ct": {
        **_DEFAULT,
        "generator_channels": 32,        # the paper's width
        "discriminator_channels": 32,
        "adversarial_weight": 0.5,       # the 3D paper's weight, chosen for MR -> CT
    },
}


def output_side(hparams: dict[str, Any]) -> int:
    """Side of the generator's output patch: ``patch_size`` less (k - 1) / 2 per side for
    each k^3 layer with 'valid' padding (unchanged with 'same')."""
    margin = (sum(int(k) // 2 for k in hparams["generator_kernels"])
              if hparams["padding"] == "valid" else 0)
    return int(hparams["patch_size"]) - 2 * margin


def check_values(hparams: dict[str, Any], key: str = "models.context_gan.params") -> None:
    """Refuse single values the networks or the trainer cannot use (their types are checked
    by ``medgen.registry.resolve_hparams``).

    Raises
    ------
    MedgenInputError
        Naming ``<key>.<name>`` and the expected range: a count of ``FAMILY.positive_keys``
        below 1 or ``lr`` <= 0 (``FamilySpec.check_positive``: plans built from code are
        checked too); ``beta1`` outside [0, 1); a loss weight < 0, or l1_weight and
        l2_weight both 0 (no reconstruction term: nothing sets the intensities); ``norm``,
        ``padding`` or ``discriminator`` not one of ``NORMS``, ``PADDINGS``,
        ``DISCRIMINATORS``; ``generator_kernels`` empty or with a kernel < 1 or even.
    """
    def refuse(name: str, expected: str) -> None:
        raise MedgenInputError(
            f"config key '{key}.{name}' is {hparams[name]!r}; expected {expected}")

    FAMILY.check_positive(hparams, key)
    if not 0 <= hparams["beta1"] < 1:
        refuse("beta1", "Adam's beta1 in [0, 1)")
    for name in _LOSS_WEIGHTS:
        if not hparams[name] >= 0:
            refuse(name, "a weight >= 0 (0 switches the term off)")
    if hparams["l1_weight"] + hparams["l2_weight"] == 0:
        raise MedgenInputError(
            f"config keys '{key}.l1_weight' and '{key}.l2_weight' are both 0: no "
            "reconstruction term, so nothing sets the synthetic intensities; expected "
            "l1_weight > 0 or l2_weight > 0")
    for name, choices in (("norm", NORMS), ("padding", PADDINGS),
                          ("discriminator", DISCRIMINATORS)):
        if hparams[name] not in choices:
            refuse(name, f"one of: {', '.join(choices)}")
    kernels = list(hparams["generator_kernels"])
    if not kernels or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0
                          for k in kernels):
        refuse("generator_kernels",
               "a non-empty list of odd kernel sides >= 1 (one per hidden layer; an even "
               "kernel has no centre voxel)")


def check_hparams(hparams: dict[str, Any], key: str = "models.context_gan.params") -> None:
    """Refuse hyperparameters the networks cannot train with, before any job runs.

    The discriminator sees the generator's output patch (``output_side``). MONAI's
    3-layer ``PatchDiscriminator`` halves it twice and ends with two 4^3 convolutions:
    below 24 voxels torch fails deep inside the forward pass, below 32 it gives a single
    logit (no longer a patch discriminator), so 'patch' needs at least 32. The paper's CNN
    pools three times (at least 8). Without an adversarial term the discriminator is never
    run and its size does not matter.

    Parameters
    ----------
    hparams
        Resolved context_gan hyperparameters (a preset plus overrides).
    key
        Config path of the overrides, named in the message.

    Raises
    ------
    MedgenInputError
        A value out of range, named with the expected range (``check_values``); the output
        patch smaller than ``MIN_OUTPUT`` or than the discriminator needs.
    """
    check_values(hparams, key)
    patch, side = int(hparams["patch_size"]), output_side(hparams)
    if side < MIN_OUTPUT:
        raise MedgenInputError(
            f"config key '{key}.patch_size' is {patch}: the 'valid' convolutions of "
            f"generator_kernels {list(hparams['generator_kernels'])} trim {patch - side} "
            f"voxels, leaving {side}; expected patch_size >= {patch - side + MIN_OUTPUT}")
    if hparams["adversarial_weight"] <= 0:
        return
    need = {"patch": MIN_PATCH_DISCRIMINATOR, "cnn": MIN_CNN_DISCRIMINATOR}.get(
        hparams["discriminator"])
    if need is not None and side < need:
        which = ("MONAI's PatchDiscriminator (discriminator: 'patch')"
                 if hparams["discriminator"] == "patch" else "the paper's CNN discriminator")
        raise MedgenInputError(
            f"config key '{key}.patch_size' is {patch}, so the discriminator sees "
            f"{side}^3 patches; {which} needs at least {need}^3: expected patch_size >= "
            f"{patch - side + need}, or adversarial_weight 0 (no discriminator)")

FAMILY = FamilySpec(
    name="context_gan",
    task="synthesis",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.context_gan.plan:ContextGANPlan"),),
    load="medgen.models.context_gan.module:load_for_inference",
    description="Context-aware synthesis GAN (Nie et al. 2017): 3D FCN + adversarial + "
                "gradient difference loss, auto-context cascade.",
    resources={"mem_mb": 8000, "runtime": 240},
    check=check_hparams,
    positive=_POSITIVE,
    limitations=(
        "Trained on co-registered pairs of one protocol: sources from another scanner or "
        "protocol are normalised per subject as in training, but intensities outside the "
        "training range are extrapolated.",
        "A synthesised image can miss or invent a lesion; voxel metrics do not show which.",
    ),
)

__all__ = ["DISCRIMINATORS", "FAMILY", "NORMS", "PADDINGS", "PRESETS", "check_hparams",
           "check_values", "output_side"]
