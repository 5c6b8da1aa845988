"""Pooling whose CUDA backward pass is deterministic, and the check for modules without one.

Training runs under Lightning's ``deterministic`` flag (``training.deterministic``, default
true), i.e. ``torch.use_deterministic_algorithms(True)``: torch then raises on a CUDA op
that has no deterministic kernel, e.g. "avg_pool3d_backward_cuda does not have a
deterministic implementation". Those ops are listed in the docstring of
``torch.use_deterministic_algorithms`` (torch 2.13): among modules 3D average pooling,
adaptive pooling, fractional max pooling, max-unpooling, reflection padding, (bi/tri)linear
upsampling, NLL and CTC losses, and max-mode ``EmbeddingBag``, when differentiated on CUDA.
``MaxPool3d``, 2D average pooling, nearest upsampling and replication padding are on its
other list: they switch to a deterministic kernel.

The modules here compute exactly what the raising ones do (same values, no parameters, so
architectures and checkpoints are unchanged) from ops whose backward is elementwise or a
matrix product: deterministic on every device.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

# Modules whose backward (or forward) raises in deterministic CUDA mode: the classes named
# in the "will throw a RuntimeError" list of torch.use_deterministic_algorithms (torch 2.13;
# a test keeps this tuple covering that list). AdaptiveMaxPool3d is not named there but its
# CUDA backward uses atomicAdd like the 2D one, and CrossEntropyLoss calls NLLLoss: both
# refused too, to be safe.
RAISING_MODULES: tuple[type[nn.Module], ...] = (
    nn.AvgPool3d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d, nn.FractionalMaxPool2d, nn.FractionalMaxPool3d,
    nn.MaxUnpool1d, nn.MaxUnpool2d, nn.MaxUnpool3d,
    nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d,
    nn.NLLLoss, nn.CrossEntropyLoss, nn.CTCLoss,
)
# F.interpolate modes whose backward raises (nn.Upsample and its subclasses use them)
RAISING_UPSAMPLING = ("linear", "bilinear", "bicubic", "trilinear")


def raises_in_deterministic_cuda(module: nn.Module) -> bool:
    """True when training ``module`` on CUDA under ``torch.use_deterministic_algorithms(True)``
    raises for want of a deterministic kernel (``RAISING_MODULES``, linear-mode upsampling,
    an ``EmbeddingBag`` in 'max' mode). Looks at this module only, not its children."""
    if isinstance(module, RAISING_MODULES):
        return True
    if isinstance(module, nn.Upsample):
        return module.mode in RAISING_UPSAMPLING
    if isinstance(module, nn.EmbeddingBag):
        return module.mode == "max"
    return False


def nondeterministic_modules(network: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(qualified name, module) of every submodule of ``network`` (itself included) that
    ``raises_in_deterministic_cuda``; nothing for a network that trains on a GPU in
    deterministic mode."""
    for name, module in network.named_modules():
        if raises_in_deterministic_cuda(module):
            yield name or "(the network itself)", module


class BlockMean(nn.Module):
    """Mean over non-overlapping 2^d blocks: (N, C, *S) -> (N, C, *(S // 2)) for d = 1..3
    spatial dims, the values of ``AvgPool{d}d(2)`` (odd sides drop their last row, as the
    pool does), as a reshape and a mean: its backward is a broadcast, deterministic on CUDA
    where ``avg_pool3d_backward_cuda`` raises."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]
        halves = [s // 2 for s in spatial]
        x = x[(..., *(slice(0, 2 * h) for h in halves))]
        blocks = [v for h in halves for v in (h, 2)]  # (S1/2, 2, S2/2, 2, ...)
        x = x.reshape(*x.shape[:2], *blocks)
        return x.mean(dim=tuple(range(3, 3 + 2 * len(spatial), 2)))


def adaptive_average_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in) matrix whose row i averages the input bins that
    ``AdaptiveAvgPool`` pools into output i: [floor(i * in / out), ceil((i + 1) * in / out))."""
    matrix = torch.zeros(size_out, size_in)
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -((-(i + 1) * size_in) // size_out)  # ceil
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class AdaptiveMean(nn.Module):
    """(N, C, *S) -> (N, C, *[size] * d): the values of ``AdaptiveAvgPool{d}d(size)``
    (d = 1..3 spatial dims, any input side, also one below ``size``), as one averaging
    matrix product per axis (the pool's box average factorises over axes). A matrix
    product's backward is deterministic on CUDA; ``adaptive_avg_pool3d_backward_cuda``
    raises under ``torch.use_deterministic_algorithms(True)``.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for axis in range(2, x.dim()):
            matrix = adaptive_average_matrix(x.shape[axis], self.size).to(x)
            x = torch.movedim(torch.movedim(x, axis, -1) @ matrix.T, -1, axis)
        return x

    def extra_repr(self) -> str:
        return f"size={self.size}"
