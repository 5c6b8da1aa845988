"""Shared fixtures. Real data lives in ../shared/data beside the project (never modified)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


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
