"""What a task's data module hands the trainer: loaders, sizes, a data signature and a
content hash (the hash makes a rerun on changed data start training afresh)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainingData:
    """Training inputs of one family, whatever its task.

    Attributes
    ----------
    train, val
        DataLoaders (``val`` None when the task validates nothing during training).
    dims
        Sizes the plans build their networks for (e.g. ``n_genes``, or ``channels`` and
        ``image_size``).
    signature
        What inference data must match (stored as ``Checkpoint.data``).
    content_hash
        sha256 of the training data's content: part of the resume signature.
    provenance
        What the data's own provenance says (kept in the checkpoint).
    """

    train: Any
    val: Any
    dims: dict[str, Any]
    signature: dict[str, Any]
    content_hash: str
    provenance: dict[str, Any] = field(default_factory=dict)


def content_hash(*parts: Any) -> str:
    """sha256 over numpy arrays (dtype, shape and bytes) and JSON-like values, in order."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()
