"""Whole-volume inference of trained synthesis models (task 'synthesis').

A generator trained on patches runs over a whole volume with MONAI's
``SlidingWindowInferer`` (overlapping windows, Gaussian blending), as MODELS.md asks for
Nie et al.'s dense patch inference. Generators with valid convolutions (the 'paper'
preset: 32^3 -> 16^3) predict only the centre of each window; the predictor returns the
prediction and a validity map, both blended with the same Gaussian weights, and their
ratio averages the valid predictions only. Windows without a mask voxel are not run.
Outputs are written as NIfTI with the source's affine and header, CPU or GPU.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import SlidingWindowInferer

from medgen import atomic, checkpoint, registry
from medgen.data.imaging import intensity
from medgen.errors import MedgenInputError
from medgen.family import resolve
from medgen.models.context_gan.module import build_networks

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

    network: torch.nn.Module
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


def load_synthesiser(saved: checkpoint.Checkpoint, device: str = "cpu") -> Synthesiser:
    """The generator of a context_gan ``model.pt`` (the family's ``load``), in eval mode."""
    generator, _ = build_networks(saved.hparams, int(saved.data["channels"]))
    generator.load_state_dict(saved.state["generator"])
    return Synthesiser(generator.to(device).eval(), generator.margin, dict(saved.data), device)


def load(path: str | os.PathLike, device: str = "cpu", data: dict[str, Any] | None = None
         ) -> Synthesiser:
    """A synthesis model from ``model.pt``: MedgenInputError for another task's model or a
    data signature (``data``) it was not trained for."""
    saved = checkpoint.load(path, family=tuple(registry.names("synthesis")), data=data)
    return resolve(registry.get(saved.family).load)(saved, device)


def cascade(models: list[Synthesiser], source: np.ndarray, mask: np.ndarray,
            **window: Any) -> list[np.ndarray]:
    """Auto-context (Nie et al. 2017): stage 1 sees the source; stage k the source plus
    stage k-1's synthetic target as one more channel. Returns every stage's output
    (X, Y, Z), normalised scale."""
    outputs: list[np.ndarray] = []
    for model in models:
        inputs = source if not outputs else np.concatenate([source, outputs[-1][None]])
        outputs.append(model.predict(inputs, mask, **window))
    return outputs


def write_nifti(volume: np.ndarray, affine: np.ndarray, reference: str | os.PathLike,
                path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write (X, Y, Z) float32 as NIfTI with ``affine`` and, when ``reference`` is a NIfTI
    file, its header (units, orientation codes, description); atomically, with a JSON
    sidecar of ``meta`` (units, normalisation parameters, models)."""
    path = Path(path)
    header = None
    try:
        ref = nib.load(str(reference))
        if isinstance(ref, nib.Nifti1Image):
            header = ref.header.copy()
    except Exception:  # another format (DICOM folder, MetaImage): a fresh header
        header = None
    image = nib.Nifti1Image(np.asarray(volume, np.float32), np.asarray(affine), header)
    image.set_data_dtype(np.float32)
    image.header["scl_slope"], image.header["scl_inter"] = 1.0, 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(path) as tmp:
        nib.save(image, str(tmp) + ".nii.gz")
        os.replace(str(tmp) + ".nii.gz", tmp)
    if meta is not None:
        atomic.write_json(path.with_name(path.name.split(".")[0] + ".json"), meta)
    return path


def output_units(params: dict[str, Any] | None, normalisation: str) -> tuple[bool, str]:
    """(invert?, units) of a written output: 'ct_window' is inverted to Hounsfield units
    (its window is fixed); MR scales are measured on each target, unknown at inference, so
    MR outputs stay on the normalised scale."""
    if normalisation == "ct_window":
        return True, "HU"
    return False, f"normalised ({normalisation}; see target_params to invert)"


def synthesise_prepared(models: list[Synthesiser], prepared: str | os.PathLike,
                        out_dir: str | os.PathLike, subjects: list[str] | None = None,
                        **window: Any) -> dict[str, list[Path]]:
    """Run the cascade on subjects of a prepared folder; write per subject and stage
    ``<subject>_stage<k>.nii.gz`` in the source's grid (and a JSON sidecar).

    Returns subject -> paths, one per stage.
    """
    from medgen.data.imaging.synthesis_prepare import load_subject, read_manifest

    manifest = read_manifest(prepared)
    n_sources = len(manifest["original_sources"])
    written: dict[str, list[Path]] = {}
    for subject in subjects or list(manifest["subjects"]):
        arrays = load_subject(prepared, subject)
        outputs = cascade(models, arrays["source"][:n_sources], arrays["mask"][0], **window)
        written[subject] = write_subject(outputs, manifest, subject, arrays["mask"][0],
                                         out_dir, [m.data for m in models])
    return written


def write_subject(outputs: list[np.ndarray], manifest: dict[str, Any], subject: str,
                  mask: np.ndarray, out_dir: str | os.PathLike,
                  models: list[dict[str, Any]], names: list[str] | None = None
                  ) -> list[Path]:
    """Write one subject's stage outputs (cropped arrays of a prepared folder) as
    ``<subject>_stage<k>.nii.gz`` (or the file stems ``names``) in the source grid;
    Hounsfield units for 'ct_window' targets (``output_units``)."""
    from medgen.data.imaging.synthesis_prepare import uncrop

    settings = manifest["settings"]
    method = settings.get("target_normalisation") or settings["normalisation"]
    info = manifest["subjects"][subject]
    invert, units = output_units(info["target_params"], method)
    full_mask = uncrop(mask, info["box"], info["shape"])
    paths = []
    for k, out in enumerate(outputs, start=1):
        volume = uncrop(out, info["box"], info["shape"])
        if invert:
            params = info["target_params"] or intensity.fit(
                np.zeros(1), np.ones(1), "ct_window",
                settings.get("ct_window") or intensity.CT_WINDOW)
            volume = intensity.invert(volume, params, full_mask)
        stem = names[k - 1] if names else f"{subject}_stage{k}"
        path = Path(out_dir) / f"{stem}.nii.gz"
        write_nifti(volume, np.asarray(info["affine"]), info["reference"], path,
                    {"subject": subject, "stage": k, "units": units,
                     "target_params": info["target_params"], "models": models[:k]})
        paths.append(path)
    return paths


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar ``write_nifti`` left beside ``path``."""
    path = Path(path)
    return json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
