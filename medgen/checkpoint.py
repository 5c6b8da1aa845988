"""One ``model.pt`` format for every family (as scvi-tools saves its data registry with the
weights): what was trained, on what, how, and by which code.

A checkpoint holds plain types and tensors only and is read with
``torch.load(..., weights_only=True)``; nothing in it is ever unpickled as code. Loading
checks the family and the data signature (genes, or channels and image geometry), so a
model is never applied to data it was not trained for.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from medgen import atomic
from medgen.errors import MedgenInputError

MODEL_FILE = "model.pt"
FORMAT_VERSION = 2
FORMAT_KEY = "medgen_checkpoint"  # marks this format; its value is the version
# Earlier files, no longer read (no release shipped them; retrain): Tybalt's had
# {"format": 1, "state_dict", "genes", ...}; the anomaly families' had {"family", "state",
# "channels", "image_size"} and no version at all.
OLD_FORMATS = {0: "the anomaly families' unversioned format (before format 2)",
               1: "Tybalt's format 1 (before format 2)"}


@dataclass
class Checkpoint:
    """A trained model as stored in ``model.pt``.

    Attributes
    ----------
    family
        Registry name of the family that trained it.
    hparams
        Resolved hyperparameters (preset + overrides).
    state
        Network name -> state dict (e.g. {'generator': ..., 'critic': ..., 'encoder': ...}).
    data
        Data signature: what the inputs must look like. Expression: ``genes`` (ordered),
        ``condition_on``, ``condition_categories``; imaging: ``channels``, ``image_size``,
        ``spatial_dims`` (and ``modalities`` when known).
    config
        The resolved config the model was trained with.
    provenance
        Package versions, git revision, input checksums, seed.
    seed
        The training seed.
    format
        Format version the file was written with (only ``FORMAT_VERSION`` is read).
    """

    family: str
    hparams: dict[str, Any]
    state: dict[str, dict[str, torch.Tensor]]
    data: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    format: int = FORMAT_VERSION


def _plain(value: Any) -> Any:
    """JSON round trip: provenance and config must be plain types for weights_only loading."""
    return json.loads(json.dumps(value, default=str))


def save(checkpoint: Checkpoint, path: str | os.PathLike) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (a crash never leaves half a file)."""
    payload = asdict(checkpoint)
    payload.pop("format")
    payload[FORMAT_KEY] = FORMAT_VERSION
    payload["state"] = {name: {k: v.detach().cpu().clone() for k, v in sd.items()}
                        for name, sd in checkpoint.state.items()}
    for key in ("config", "provenance", "data", "hparams"):
        payload[key] = _plain(payload[key])
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load(
    path: str | os.PathLike,
    family: str | tuple[str, ...] | None = None,
    data: dict[str, Any] | None = None,
) -> Checkpoint:
    """Read ``model.pt``; check its family and, for each key of ``data``, its data signature.

    Parameters
    ----------
    path
        A ``model.pt`` of format ``FORMAT_VERSION``.
    family
        The family (or families) the caller can use; None accepts any.
    data
        Signature of the data about to be used (keys as in ``Checkpoint.data``); only the
        keys given are compared.

    Raises
    ------
    MedgenInputError
        Missing or unreadable file, another family, other genes / channels / geometry, or a
        file of another format (the message names its format: a later one, or one of the
        ``OLD_FORMATS`` before 2, which are no longer read).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MedgenInputError(f"model file {path} does not exist") from None
    except Exception as err:  # unpickling refuses non-plain objects, or a corrupt file
        raise MedgenInputError(
            f"{path} is not a medgen model file (torch cannot read it as a weights-only "
            f"PyTorch archive: {type(err).__name__}); give the model.pt a training run wrote"
        ) from None
    if not isinstance(payload, dict):
        raise MedgenInputError(f"{path} is not a medgen model file (no dict inside)")
    checkpoint = _upgrade(payload, path)
    wanted = (family,) if isinstance(family, str) else family
    if wanted is not None and checkpoint.family not in wanted:
        raise MedgenInputError(
            f"{path} holds a model of family {checkpoint.family!r}; expected "
            f"{' or '.join(repr(f) for f in wanted)}"
        )
    for key, value in (data or {}).items():
        if key in checkpoint.data and _differs(checkpoint.data[key], value):
            raise MedgenInputError(_mismatch(path, key, checkpoint.data[key], value))
    return checkpoint


def _upgrade(payload: dict[str, Any], path: Path) -> Checkpoint:
    version = payload.get(FORMAT_KEY)
    if version == FORMAT_VERSION:
        fields = {k: payload[k] for k in ("family", "hparams", "state", "data", "config",
                                          "provenance", "seed")}
        return Checkpoint(**fields)
    if version is not None:
        raise MedgenInputError(
            f"{path} was written by a medgen with checkpoint format {version}; this medgen "
            f"reads formats up to {FORMAT_VERSION}: upgrade medgen or retrain"
        )
    old = (1 if payload.get("format") == 1 and "state_dict" in payload
           else 0 if "state" in payload and "image_size" in payload else None)
    if old is not None:
        raise MedgenInputError(
            f"{path} is a {payload.get('family', 'medgen')} model file in {OLD_FORMATS[old]}; "
            f"this medgen reads checkpoint format {FORMAT_VERSION} only: retrain the model "
            "with this medgen (the run's config reproduces it)")
    raise MedgenInputError(
        f"{path} is not a medgen model file: no '{FORMAT_KEY}' version and not one of the "
        f"earlier formats ({'; '.join(OLD_FORMATS.values())})"
    )


def _differs(stored: Any, given: Any) -> bool:
    if isinstance(stored, (list, tuple)) or isinstance(given, (list, tuple)):
        return list(stored) != list(given)
    return stored != given


def _mismatch(path: Path, key: str, stored: Any, given: Any) -> str:
    if isinstance(stored, (list, tuple)) and isinstance(given, (list, tuple)):
        missing = [v for v in stored if v not in set(given)][:5]
        extra = [v for v in given if v not in set(stored)][:5]
        return (
            f"{path} was trained on {len(stored)} {key} but the data have {len(given)} "
            f"{key} or another order (first missing: {missing}, first extra: {extra}); "
            "apply it with the same preprocessing as training"
        )
    return f"{path} was trained with {key} = {stored!r}; the data have {key} = {given!r}"
