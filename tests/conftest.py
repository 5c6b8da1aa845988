"""Shared fixtures: the real data folder (../shared/data, never modified) and configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from medgen.config import deep_update, load_schema, validate

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips (or fails under MEDGEN_REQUIRE_SHARED_DATA=1) if absent."""
    if not SHARED_DATA.is_dir():
        message = (
            f"needs ../shared/data (real data) at {SHARED_DATA}; it is not there. "
            "CI always has it and fails on this skip."
        )
        if os.environ.get("MEDGEN_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA


def expression_config(**overrides: Any) -> dict[str, Any]:
    """The ``expression:`` section with schema defaults filled, then ``overrides``."""
    schema = load_schema()["properties"]["expression"]
    return validate(deep_update({}, overrides), schema=schema)


@pytest.fixture
def expr_cfg():
    """Factory for validated expression configs (keyword overrides, nested dicts merge)."""
    return expression_config
