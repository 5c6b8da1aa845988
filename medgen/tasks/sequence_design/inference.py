"""Trained sequence-design models as the task uses them: a generator (dna_gan:
``sample(n, seed)`` -> (n, L, 4) base probabilities) or a predictor (sequence_predictor:
``predict(onehot (n, L, 4))`` -> (n,) measurements, ``predict_tensor`` differentiable)."""

from __future__ import annotations

import os
from typing import Any

from medgen import checkpoint, registry
from medgen.family import resolve


def load(path: str | os.PathLike, device: str = "cpu", data: dict[str, Any] | None = None,
         family: str | tuple[str, ...] | None = None):
    """The model of ``model.pt`` ready for inference: MedgenInputError for another task's
    model (naming its family), another family than ``family`` when given, or a data
    signature (``data``, e.g. ``{'length': 50}``) it was not trained for."""
    families = family or tuple(registry.names("sequence_design"))
    saved = checkpoint.load(path, family=families, data=data)
    return resolve(registry.get(saved.family).load)(saved, device)
