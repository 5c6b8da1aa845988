"""Model registry: family name -> implementation and presets.

Explicit and small (as MONAI's factories): a typo in a config fails with the list of valid
names. Implementations are imported lazily so that validating a config stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from medgen.errors import MedgenInputError

# family name -> module that defines PRESETS (dict of preset name -> hyperparameters)
FAMILIES: dict[str, str] = {
    "tybalt": "medgen.models.tybalt",
    "anogan": "medgen.models.anogan",
    "fanogan": "medgen.models.fanogan",
}


def family_module(family: str) -> ModuleType:
    if family not in FAMILIES:
        raise MedgenInputError(
            f"unknown model family '{family}'; valid families: {', '.join(sorted(FAMILIES))}"
        )
    return importlib.import_module(FAMILIES[family])


def presets(family: str) -> dict[str, dict[str, Any]]:
    return family_module(family).PRESETS


def resolve_hparams(family: str, preset: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preset's hyperparameters with ``params`` applied key by key.

    An unknown preset or key fails with the valid choices, so typos never pass silently.
    """
    available = presets(family)
    if preset not in available:
        raise MedgenInputError(
            f"config key 'models.{family}.preset' is {preset!r}; "
            f"expected one of: {', '.join(available)}"
        )
    hparams = dict(available[preset])
    for key, value in (params or {}).items():
        if key not in hparams:
            raise MedgenInputError(
                f"unknown config key 'models.{family}.params.{key}'; "
                f"valid keys: {', '.join(sorted(hparams))}"
            )
        expected = type(hparams[key])
        if hparams[key] is not None and not _compatible(value, expected):
            raise MedgenInputError(
                f"config key 'models.{family}.params.{key}' is {value!r} "
                f"({type(value).__name__}); expected {expected.__name__}"
            )
        hparams[key] = value
    return hparams


def _compatible(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
