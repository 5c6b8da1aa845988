"""Networks and loss terms of the context-aware synthesis GAN (Nie et al., MICCAI 2017).

Generator: a 3D fully convolutional network, MONAI ``Convolution`` blocks (conv -> norm ->
ReLU) and a linear 1^3 output (normalised intensities are not bounded above: 'p99' keeps
lesions brighter than the 99th percentile above 1). With ``padding='valid'`` each k^3 layer
trims (k - 1) / 2 voxels per side, so the paper's 32^3 source gives a 16^3 target.

Discriminator: real vs synthetic target patches; 'cnn' is the paper's small 3D CNN (three
conv + max-pool stages, two fully connected layers), 'patch' MONAI's ``PatchDiscriminator``
(one logit per receptive field). Both train on a GPU in deterministic mode (no module whose
CUDA backward raises; ``medgen.nn.deterministic``).

Generator loss, per batch (x: source, y: target, G(x): synthetic target):

    L_G = l2 * ||G(x) - y||^2 + l1 * |G(x) - y| + gdl * GDL(G(x), y)
          + adversarial * BCE(D(G(x)), 1)

    GDL(a, b) = sum over axes d of mean | |grad_d a| - |grad_d b| |^2

(Mathieu et al., ICLR 2016; exponent 2 as Nie et al.). With a coverage map w (0 outside a
resampled target's field of view) the means run over covered voxels only (GDL: pairs of
covered neighbours), and D sees G(x) with y filled in outside the coverage, so nothing
there moves G.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Pool
from monai.networks.nets import PatchDiscriminator
from torch import nn

from medgen.checkpoint import Checkpoint
from medgen.models.synthesis import Synthesiser
from medgen.nn.deterministic import AdaptiveMean

NORMS = {"batch": "BATCH", "instance": "INSTANCE", "none": None}


class FCNGenerator(nn.Module):
    """Source (N, C, P, P, P) -> target (N, 1, P - 2 * margin, ...).

    Parameters
    ----------
    in_channels
        Source channels (modalities, plus the previous level's output in auto-context).
    channels
        Width of every hidden layer.
    kernels
        Kernel side of each hidden layer (odd).
    padding
        'valid' (no padding: the output shrinks by ``margin`` per side) or 'same'.
    norm
        'batch', 'instance' or 'none'.
    """

    def __init__(self, in_channels: int, channels: int, kernels: list[int], padding: str,
                 norm: str = "batch") -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"generator kernels must be odd, got {kernels}")
        layers: list[nn.Module] = []
        width = in_channels
        for k in kernels:
            layers.append(Convolution(3, width, channels, kernel_size=k, act="RELU",
                                      norm=NORMS[norm],
                                      padding=0 if padding == "valid" else k // 2))
            width = channels
        layers.append(Convolution(3, width, 1, kernel_size=1, conv_only=True))
        self.net = nn.Sequential(*layers)
        self.margin = sum(k // 2 for k in kernels) if padding == "valid" else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNDiscriminator(nn.Module):
    """Target patch (N, 1, S, S, S) -> logit (N,): three conv(3^3) + ReLU + max-pool(2)
    stages of ``channels``, 2x, 4x width, then FC 256 -> FC 1 (the paper's small 3D CNN;
    an adaptive average to 2^3 before the FC layers lets any patch size through).

    Trains on a GPU under ``training.deterministic: true``: ``MaxPool3d`` has a
    deterministic CUDA backward (torch 2.13), and the adaptive average is ``AdaptiveMean``
    (the values of ``AdaptiveAvgPool3d``, whose CUDA backward raises in deterministic mode).
    Neither has parameters: the architecture is the paper's, and checkpoints written with
    ``AdaptiveAvgPool3d`` load unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        pool = Pool[Pool.MAX, 3]
        layers: list[nn.Module] = []
        width = 1
        for scale in (1, 2, 4):
            layers += [Convolution(3, width, channels * scale, kernel_size=3, act="RELU",
                                   norm=None), pool(2)]
            width = channels * scale
        self.features = nn.Sequential(*layers, AdaptiveMean(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(width * 8, 256), nn.ReLU(), nn.Linear(256, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(y))[:, 0]


class PatchDiscriminatorLogits(nn.Module):
    """MONAI's ``PatchDiscriminator`` (3 layers) returning its logit map flattened (N, M)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = PatchDiscriminator(spatial_dims=3, channels=channels, in_channels=1,
                                      out_channels=1, num_layers_d=3)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)[-1].flatten(1)


def build_networks(hp: dict[str, Any], in_channels: int) -> tuple[FCNGenerator, nn.Module]:
    """(generator, discriminator) of a context_gan preset for ``in_channels`` sources."""
    generator = FCNGenerator(in_channels, hp["generator_channels"],
                             list(hp["generator_kernels"]), hp["padding"], hp["norm"])
    if hp["discriminator"] == "cnn":
        discriminator: nn.Module = CNNDiscriminator(hp["discriminator_channels"])
    elif hp["discriminator"] == "patch":
        discriminator = PatchDiscriminatorLogits(hp["discriminator_channels"])
    else:
        raise ValueError(f"discriminator must be 'cnn' or 'patch', got {hp['discriminator']!r}")
    return generator, discriminator


def centre(y: torch.Tensor, margin: int) -> torch.Tensor:
    """The central part of (N, C, X, Y, Z) without ``margin`` voxels per side."""
    if margin == 0:
        return y
    return y[..., margin:-margin, margin:-margin, margin:-margin]


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` over the voxels where ``weight`` (same shape, 0/1) is 1; the plain
    mean without ``weight``; 0 when nothing is covered."""
    if weight is None:
        return values.mean()
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def gradient_difference_loss(pred: torch.Tensor, target: torch.Tensor,
                             exponent: float = 2.0,
                             weight: torch.Tensor | None = None) -> torch.Tensor:
    """GDL (Mathieu et al. 2016) over the three spatial axes of (N, C, X, Y, Z) tensors:
    sum over axes of the mean of | |d pred| - |d target| |^exponent (forward differences);
    with ``weight`` (0/1, same shape) only differences between two covered voxels count."""
    total = pred.new_zeros(())
    for axis in (2, 3, 4):
        dp = pred.diff(dim=axis).abs()
        dt = target.diff(dim=axis).abs()
        pairs = None
        if weight is not None:
            n = weight.shape[axis]
            pairs = weight.narrow(axis, 0, n - 1) * weight.narrow(axis, 1, n - 1)
        total = total + weighted_mean((dp - dt).abs() ** exponent, pairs)
    return total


@dataclass
class GeneratorLoss:
    """Per-batch means of the generator's loss terms (unweighted) and their weighted sum."""

    l2: torch.Tensor
    l1: torch.Tensor
    gdl: torch.Tensor
    adversarial: torch.Tensor
    total: torch.Tensor


def fill_uncovered(fake: torch.Tensor, target: torch.Tensor,
                   weight: torch.Tensor | None) -> torch.Tensor:
    """``fake`` with ``target`` in its uncovered voxels (``weight`` 0): what the
    discriminator sees, so real and synthetic patches agree where the target is unknown."""
    return fake if weight is None else torch.where(weight > 0, fake, target)


def generator_loss(fake: torch.Tensor, target: torch.Tensor,
                   discriminator: nn.Module | None, hp: dict[str, Any],
                   weight: torch.Tensor | None = None) -> GeneratorLoss:
    """The generator's loss terms (module docstring) for synthetic ``fake`` and real
    ``target`` patches of equal shape; no adversarial term when ``discriminator`` is None.
    ``weight``: coverage (1 where the target is known, 0 outside its field of view), same
    shape; the terms then look at covered voxels only."""
    l2 = weighted_mean((fake - target) ** 2, weight)
    l1 = weighted_mean((fake - target).abs(), weight)
    gdl = (gradient_difference_loss(fake, target, weight=weight) if hp["gdl_weight"] > 0
           else fake.new_zeros(()))
    adversarial = fake.new_zeros(())
    if discriminator is not None and hp["adversarial_weight"] > 0:
        logit = discriminator(fill_uncovered(fake, target, weight))
        adversarial = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
    total = (hp["l2_weight"] * l2 + hp["l1_weight"] * l1 + hp["gdl_weight"] * gdl
             + hp["adversarial_weight"] * adversarial)
    return GeneratorLoss(l2, l1, gdl, adversarial, total)


def load_for_inference(saved: Checkpoint, device: str = "cpu") -> Synthesiser:
    """The generator of a context_gan ``model.pt`` (the family's ``load``), in eval mode."""
    generator, _ = build_networks(saved.hparams, int(saved.data["channels"]))
    generator.load_state_dict(saved.state["generator"])
    return Synthesiser(generator.to(device).eval(), generator.margin, dict(saved.data), device)
