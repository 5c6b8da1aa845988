"""Context-aware synthesis GAN (Nie et al., MICCAI 2017 "Medical Image Synthesis with
Context-Aware Generative Adversarial Networks"; TBME 2018): a 3D fully convolutional
generator maps source patches to target patches, trained with an adversarial term, L2 and
the image gradient difference loss (GDL); an auto-context cascade feeds each stage the
source plus the previous stage's synthetic target (``medgen.evaluate.auto_context``).

Task 'synthesis'; data module ``medgen.data.imaging.synthesis_loaders``; whole-volume
inference ``medgen.evaluate.synthesis_inference``.

Presets (flat dicts of plain values):
- 'paper': 32^3 source -> 16^3 target with valid convolutions, as the paper's 3D code;
  MODELS.md gives the patch sizes, not the layer list: ours reaches the 8-voxel margin with
  kernels 7, 5, 5, 3 (32 channels). The paper's small 3D CNN discriminator. Weights: L2 1,
  GDL 1 (exponent 2), adversarial 0.5: the weight the 3D paper reports (0.05 is from the 2D
  code, whose slices and loss scale differ). Auto-context with 2 stages.
- 'default': the same loss, same-size output (padding 'same', six 3^3 layers of 16
  channels): every output voxel of a window is usable, so sliding-window inference needs no
  8-voxel margin and covers a BraTS volume in seconds on 2 CPU cores; MONAI's
  ``PatchDiscriminator``; adversarial weight 0.05, the smaller documented weight, because
  with 6 training subjects the reconstruction terms must set the intensities (the target
  allows at most 0.5 dB PSNR for sharper edges).
- 'l1_only': the default generator trained with L1 alone (no adversarial term, no GDL, one
  stage): the ablation baseline.

``auto_context_stages`` is K; each stage is trained as its own job on the prepared data
plus the previous stage's whole-volume output (README, "Auto-context stages").
"""

from __future__ import annotations

from typing import Any

from medgen.family import FamilySpec, Stage

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
    "auto_context_stages": 2,
    "samples_per_volume": 64,        # patches per training subject per epoch
    "lr": 0.0002,
    "beta1": 0.5,
    "batch_size": 8,
    "max_epochs": 40,
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
    },
    "default": dict(_DEFAULT),
    "l1_only": {**_DEFAULT, "l1_weight": 1.0, "l2_weight": 0.0, "gdl_weight": 0.0,
                "adversarial_weight": 0.0, "auto_context_stages": 1},
}

FAMILY = FamilySpec(
    name="context_gan",
    task="synthesis",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.context_gan.plan:ContextGANPlan"),),
    load="medgen.evaluate.synthesis_inference:load_synthesiser",
    description="Context-aware synthesis GAN (Nie et al. 2017): 3D FCN + adversarial + "
                "gradient difference loss, auto-context cascade.",
    resources={"mem_mb": 8000, "runtime": 240},
)

__all__ = ["FAMILY", "PRESETS"]
