"""Shared fixtures: the real data folder and a validated expression config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medgen.config import deep_update, load_schema, validate

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder ../shared/data; real-data tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs ../shared/data (real data) at {SHARED_DATA.resolve()}; not found")
    return SHARED_DATA.resolve()


def expression_config(**overrides: Any) -> dict[str, Any]:
    """The ``expression:`` section with schema defaults filled, then ``overrides``."""
    schema = load_schema()["properties"]["expression"]
    return validate(deep_update({}, overrides), schema=schema)


@pytest.fixture
def expr_cfg():
    """Factory for validated expression configs (keyword overrides, nested dicts merge)."""
    return expression_config
