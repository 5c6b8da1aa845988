"""The HTML report renders in a real browser (Debian's headless Chromium) without errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import skip_or_fail_in_ci

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=15000", *args],
        capture_output=True, text=True, timeout=180,
    )


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        message = "needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
        skip_or_fail_in_ci(message)
    return CHROMIUM


@pytest.mark.realdata
@pytest.mark.workflow
def test_report_renders_without_console_errors(chromium, real_run):
    report = real_run["report"]
    shot = report.with_suffix(".png")
    with tempfile.TemporaryDirectory() as profile:
        dom = _chromium("--dump-dom", report.as_uri(), profile=Path(profile))
        assert dom.returncode == 0, dom.stderr[-2000:]
        screenshot = _chromium("--window-size=1400,1000", f"--screenshot={shot}",
                               report.as_uri(), profile=Path(profile))
    console_errors = [
        line for line in (dom.stderr + screenshot.stderr).splitlines()
        if "CONSOLE" in line and re.search(r"error|uncaught", line, re.IGNORECASE)
    ]
    assert console_errors == []
    # The report is a JavaScript app: the rendered DOM must hold its content, not a shell.
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    assert "Tybalt" in text and "medgen" in text
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10, "screenshot is blank"
