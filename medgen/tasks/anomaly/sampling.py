"""Synthetic images from the generator of a trained AnoGAN / f-AnoGAN (issue 31 item 1):
latents drawn from the prior z ~ N(0, I) (what both GANs were trained on), decoded by the
generator in eval mode, and written in chunks to an ``.npz`` with a PNG grid and a JSON of
provenance beside it.

Units: the generator ends in tanh, in [-1, 1], and was trained on the prepared training
images x mapped to 2x - 1; the samples are mapped back, (G(z) + 1) / 2, so they are in the
units of the prepared ``train.npz`` images: each image normalised on its own by
``anomaly.normalisation`` (percentile, p99, ...) to about [0, 1]. The JSON says which.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgen import atomic, checkpoint, provenance, registry
from medgen.errors import MedgenInputError
from medgen.models.anomaly import geometry_of
from medgen.synthetic_output import check_count, check_room
from medgen.tasks.anomaly import GENERATIVE_FAMILIES

log = logging.getLogger(__name__)

CHUNK_IMAGES = 1024  # images generated and written at a time: 1024 x 64 x 64 x 4 B = 16 MB
GRID_IMAGES = 64  # images in the PNG grid (the first ones drawn)
IMAGES_KEY = "images"
SYNTHETIC_KEY = "synthetic"


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise MedgenInputError(f"{name} is {value!r}; expected a whole number > 0")
    return int(value)


def load_generator(model_path: str | os.PathLike, device: str = "cpu"
                   ) -> tuple[torch.nn.Module, checkpoint.Checkpoint]:
    """The generator of a trained anogan / fanogan ``model.pt`` (eval mode, on ``device``)
    and its checkpoint.

    Raises
    ------
    MedgenInputError
        Not a medgen model file, a model of another family or task (named), or of
        images that are not 2-D.
    """
    ckpt = checkpoint.load(model_path)
    if ckpt.family not in GENERATIVE_FAMILIES:
        task = registry.get(ckpt.family).task if ckpt.family in registry.FAMILIES else "?"
        raise MedgenInputError(
            f"{model_path} holds a {ckpt.family!r} model (task {task}); synthetic images "
            f"come from the generator of {' or '.join(map(repr, GENERATIVE_FAMILIES))}")
    channels, size, dims = geometry_of(ckpt.data)
    if dims != 2:
        raise MedgenInputError(f"{model_path}: a {ckpt.family} model of {dims}-D images; the "
                               "anomaly task's synthetic images are 2-D")
    # each family's own builder, so the generator is the one it trained (residual or DCGAN)
    if ckpt.family == "anogan":
        from medgen.models.anogan.module import build_networks
    else:
        from medgen.models.fanogan.module import build_networks
    generator = build_networks(ckpt.hparams, channels, size, dims)[0]
    generator.load_state_dict(ckpt.state["generator"])
    return generator.to(torch.device(device)).eval(), ckpt


def units(ckpt: checkpoint.Checkpoint) -> str:
    """What the sample values are, from the model's training config."""
    method = ckpt.config.get("anomaly", {}).get("normalisation", "unknown")
    return ("intensities of the prepared training images (train.npz): each image normalised "
            f"by anomaly.normalisation {method!r}; generator output (tanh, [-1, 1]) mapped "
            "back by (g + 1) / 2, so values lie in [0, 1]")


@torch.no_grad()
def generate(generator: torch.nn.Module, z: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Images (n, C, S, S) float32 in the training images' units from latents (n, latent)."""
    x = generator(torch.as_tensor(z, dtype=torch.float32, device=torch.device(device)))
    return ((x + 1) / 2).cpu().numpy().astype(np.float32)


def _chunks(count: int, size: int):
    for start in range(0, count, size):
        yield min(size, count - start)


def sidecar_paths(out_path: str | os.PathLike) -> tuple[Path, Path]:
    """The JSON and PNG grid written beside ``out_path`` (same name, other suffix)."""
    out = Path(out_path)
    return out.with_suffix(".json"), out.with_suffix(".png")


def sample_images(
    model_path: str | os.PathLike,
    n: int,
    out_path: str | os.PathLike,
    seed: int = 0,
    chunk_images: int = CHUNK_IMAGES,
    device: str = "cpu",
) -> dict[str, Any]:
    """Draw N synthetic images from the generator of a trained AnoGAN / f-AnoGAN.

    Parameters
    ----------
    model_path
        ``model.pt`` of an anogan or fanogan training run.
    n
        The number of images (> 0).
    out_path
        The ``.npz`` written (atomically): ``images`` float32 (N, C, S, S) in the training
        images' units (module docstring) and ``synthetic`` (True). Beside it
        ``<name>.json`` (``synthetic`` True, ``units``, ``shape``, ``model`` path, sha256
        and family, ``seed``, ``provenance``) and ``<name>.png`` (a grid of the first
        ``GRID_IMAGES`` images, channel 0).
    seed
        Seeds the latent draws (numpy, one stream in order): the same seed gives the same
        images whatever ``chunk_images``.
    chunk_images
        Images generated and written at a time: memory stays bounded for any N (the
        images go to a memory-mapped ``.npy`` and are then streamed into the ``.npz``).
    device
        Torch device of the generator.

    Returns
    -------
    {'n': N, 'shape': [N, C, S, S], 'units': ..., 'family': ...}.

    Raises
    ------
    MedgenInputError
        N or ``chunk_images`` not a whole number > 0, N above
        ``medgen.synthetic_output.MAX_SAMPLES`` or more than the disk holds, not a medgen
        model file, a model of another family or task.
    """
    total = check_count(_count(n, "number of images"), "images")
    chunk_images = _count(chunk_images, "chunk_images")
    generator, ckpt = load_generator(model_path, device)
    channels, size, _ = geometry_of(ckpt.data)
    # float32 images, written once as .npy and copied into the archive: both at once
    check_room(out_path, 2 * total * channels * size * size * 4, "the images")
    latent_dim = int(ckpt.hparams["latent_dim"])
    shape = (total, channels, size, size)
    unit_text = units(ckpt)
    log.info("sampling %d images %s from the generator of %s (%s, latent %d, z ~ N(0, I)), "
             "seed %d, in chunks of %d; values: %s", total, shape[1:], model_path,
             ckpt.family, latent_dim, seed, chunk_images, unit_text)
    out_path = Path(out_path)
    json_path, png_path = sidecar_paths(out_path)
    rng = np.random.default_rng(seed)
    grid = []
    with atomic.atomic_path(out_path) as tmp:
        npy = tmp.with_name(tmp.name + ".npy")
        try:
            images = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=shape)
            start = 0
            for count in _chunks(total, chunk_images):
                block = generate(generator, rng.standard_normal((count, latent_dim)), device)
                images[start:start + count] = block
                if start < GRID_IMAGES:
                    grid.append(block[:GRID_IMAGES - start])
                start += count
            images.flush()
            del images
            # streamed from the file into the archive: never the whole array in memory
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.write(npy, f"{IMAGES_KEY}.npy")
                with archive.open(f"{SYNTHETIC_KEY}.npy", "w") as handle:
                    np.lib.format.write_array(handle, np.array(True))
        finally:
            npy.unlink(missing_ok=True)
    model_sha = provenance.sha256_file(model_path)
    atomic.write_json(json_path, {
        SYNTHETIC_KEY: True,
        "units": unit_text,
        "shape": list(shape),
        "model": {"path": str(model_path), "sha256": model_sha, "family": ckpt.family,
                  "latent_dim": latent_dim, "prior": "z ~ N(0, I)"},
        "seed": int(seed),
        "file": out_path.name,
        "provenance": provenance.collect(config={"n": total, "seed": seed,
                                                 "chunk_images": chunk_images},
                                         seed=seed, inputs=[model_path]),
    })
    from medgen.tasks.anomaly.figures import image_grid  # matplotlib only when drawing

    image_grid(png_path, {f"{ckpt.family} (synthetic)": np.concatenate(grid)},
               title=f"{total} synthetic images of {ckpt.family}, seed {seed} (first "
                     f"{min(total, GRID_IMAGES)})", columns=16)
    log.info("wrote %s (+ %s, %s): %d synthetic images (model sha256 %s)", out_path,
             json_path.name, png_path.name, total, model_sha[:12])
    return {"n": total, "shape": list(shape), "units": unit_text, "family": ckpt.family}


def read_samples(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """The images of a sample file and the JSON beside it."""
    json_path, _ = sidecar_paths(path)
    with np.load(path, allow_pickle=False) as archive:
        images = archive[IMAGES_KEY]
    return images, json.loads(json_path.read_text())
