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
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from medgen import atomic, checkpoint, registry
from medgen.data.imaging import intensity
from medgen.family import resolve
from medgen.models.synthesis import Synthesiser


def load(path: str | os.PathLike, device: str = "cpu", data: dict[str, Any] | None = None
         ) -> Synthesiser:
    """A synthesis model from ``model.pt``: MedgenInputError for another task's model or a
    data signature (``data``) it was not trained for."""
    saved = checkpoint.load(path, family=tuple(registry.names("synthesis")), data=data)
    return resolve(registry.get(saved.family).load)(saved, device)


def cascade(models: list[Synthesiser], source: np.ndarray, mask: np.ndarray,
            **window: Any) -> list[np.ndarray]:
    """Auto-context (Nie et al. 2017): level 1 sees the source; level k the source plus
    level k-1's synthetic target as one more channel. Returns every level's output
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


def synthesise_subject(models: list[Synthesiser], source: np.ndarray, mask: np.ndarray,
                       manifest: dict[str, Any], subject: str, out_dir: str | os.PathLike,
                       **window: Any) -> tuple[list[np.ndarray], list[Path]]:
    """Run the auto-context cascade on one subject of a prepared folder and write each
    level's output as ``<subject>_level<k>.nii.gz`` (with its JSON sidecar) in the source's
    grid: the one per-subject loop body of the evaluation and of ``medgen apply``.

    Parameters
    ----------
    models
        Level 1..K, in order (``load`` each, or a baseline's generator).
    source, mask
        (C, X, Y, Z) normalised source channels and the (X, Y, Z) mask, cropped as the
        prepared folder holds them (``load_subject``).
    manifest
        The prepared folder's manifest (``read_manifest``): grid, crop box, target units.
    window
        ``Synthesiser.predict`` settings (window, overlap).

    Returns
    -------
    (outputs, paths): every level's output, (X, Y, Z) on the normalised scale, and the
    NIfTI written for each.
    """
    outputs = cascade(models, source, mask, **window)
    paths = write_subject(outputs, manifest, subject, mask, out_dir, [m.data for m in models])
    return outputs, paths


def write_subject(outputs: list[np.ndarray], manifest: dict[str, Any], subject: str,
                  mask: np.ndarray, out_dir: str | os.PathLike,
                  models: list[dict[str, Any]], names: list[str] | None = None
                  ) -> list[Path]:
    """Write one subject's level outputs (cropped arrays of a prepared folder) as
    ``<subject>_level<k>.nii.gz`` (or the file stems ``names``) in the source grid;
    Hounsfield units for 'ct_window' targets (``output_units``)."""
    from medgen.tasks.synthesis.prepare import uncrop

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
        stem = names[k - 1] if names else f"{subject}_level{k}"
        path = Path(out_dir) / f"{stem}.nii.gz"
        write_nifti(volume, np.asarray(info["affine"]), info["reference"], path,
                    {"subject": subject, "level": k, "units": units,
                     "target_params": info["target_params"], "models": models[:k]})
        paths.append(path)
    return paths


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar ``write_nifti`` left beside ``path``."""
    path = Path(path)
    return json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
