"""The synthesis task's model interface: what every synthesis family's inference object is.

A :class:`Synthesiser` holds a trained generator of normalised source windows -> normalised
target and runs it over a whole volume with MONAI's ``SlidingWindowInferer`` (overlapping
windows, Gaussian blending), as MODELS.md asks for whole-volume inference of patch-trained
3D networks. Families (``medgen.models.<name>.module``) return one from their ``load``;
the synthesis task's inference, evaluation and apply step (``medgen.tasks.synthesis``) and
its baselines run every model the same way. torch is imported when a volume is predicted,
not with this module: config validation reads ``WINDOW`` from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgen.errors import MedgenInputError

WINDOW = 64  # voxels per window side: a few hundred windows cover a BraTS brain
OVERLAP = 0.25  # with Gaussian blending; raised when valid convolutions need more
SW_BATCH_SIZE = 2  # windows per forward pass: bounds memory on CPU


@dataclass
class Synthesiser:
    """A trained generator and what its inputs must look like.

    Attributes
    ----------
    network
        Normalised source (N, C, S, S, S) -> normalised target (N, 1, S - 2 margin, ...).
    margin
        Voxels per side a window loses (valid convolutions; 0 for 'same').
    data
        The checkpoint's data signature (channels, modalities, target, normalisation).
    """

    network: Any  # a torch.nn.Module
    margin: int
    data: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    @property
    def channels(self) -> int:
        return int(self.data["channels"])

    def predict(self, source: np.ndarray, mask: np.ndarray, window: int = WINDOW,
                overlap: float = OVERLAP, sw_batch_size: int = SW_BATCH_SIZE) -> np.ndarray:
        """Synthetic target (X, Y, Z) float32 on the normalised scale, 0 outside ``mask``.

        Parameters
        ----------
        source
            (C, X, Y, Z) normalised source channels (``medgen.data.imaging.intensity``).
        mask
            (X, Y, Z) brain/body mask; windows without a mask voxel are skipped.
        window
            Window side (voxels) including the valid-convolution margin.
        overlap
            Fraction of a window shared with its neighbour (at least what covers every
            voxel with a valid prediction).

        Raises
        ------
        MedgenInputError
            Wrong number of channels.
        """
        # imported here: config validation reads WINDOW from this module without torch
        import torch
        import torch.nn.functional as F
        from monai.inferers import SlidingWindowInferer

        if source.ndim != 4 or source.shape[0] != self.channels:
            raise MedgenInputError(
                f"the model takes {self.channels} source channel(s) "
                f"({self.data.get('modalities')}), got an array of shape {source.shape}")
        m = self.margin
        if window <= 2 * m + 4:
            window = 2 * m + 16
        # valid predictions cover window - 2m of each window: the step may not exceed it
        overlap = max(overlap, min(2 * m / window + 1e-3, 0.95))
        x = torch.as_tensor(np.concatenate([source, mask[None].astype(np.float32)]))[None]
        x = F.pad(x, [m] * 6)  # zero context beyond the volume edge, as in training crops
        self.network.eval()

        def predictor(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            n, c = windows.shape[0], self.channels
            value = torch.zeros((n, 1, *windows.shape[2:]), device=windows.device)
            valid = torch.zeros_like(value)
            inner = (slice(None), slice(None), *[slice(m, s - m) for s in windows.shape[2:]])
            valid[inner] = 1.0
            occupied = windows[:, c].flatten(1).amax(1) > 0
            if occupied.any():
                value[(occupied, *inner[1:])] = self.network(windows[occupied, :c]).float()
            return value, valid

        inferer = SlidingWindowInferer(roi_size=[window] * 3, sw_batch_size=sw_batch_size,
                                       overlap=overlap, mode="gaussian",
                                       sw_device=self.device, device="cpu")
        with torch.no_grad():
            value, valid = inferer(x, predictor)
        out = (value / valid.clamp_min(1e-6))[0, 0]
        if m:
            out = out[m:-m, m:-m, m:-m]
        return np.where(mask != 0, out.numpy(), 0.0).astype(np.float32)
