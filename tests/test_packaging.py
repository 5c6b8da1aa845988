"""A wheel carries what ``medgen validate`` needs (schemas, the default config) as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT

# Not copied into the build folder: VCS data, environments, run outputs and build leftovers.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "results", "resources", ".snakemake", "build", "dist", "*.egg-info",
    "__pycache__", ".pytest_cache", ".ruff_cache", ".ci-junit.xml",
)


def _run(*command: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv with the medgen wheel installed; dependencies come from this
    interpreter's site-packages through a .pth file, so nothing is downloaded."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # build from a copy: pip wheel leaves build/ beside the sources
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=_NOT_SOURCE)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", tmp / "dist", source, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("medgen-*.whl")
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                   cwd=tmp).stdout.strip()
    # A path in a .pth file is added as it is: the .pth files inside it (this environment's
    # editable medgen) are not processed, so only the wheel can provide medgen.
    (Path(purelib) / "_medgen_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         wheel, cwd=tmp)
    return venv


@pytest.mark.slow
def test_medgen_validate_from_an_installed_wheel(wheel_venv, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # not the checkout, so `import medgen` cannot find it
    elsewhere.mkdir()
    imported = _run(wheel_venv / "bin" / "python", "-c", "import medgen; print(medgen.__file__)",
                    cwd=elsewhere).stdout.strip()
    assert Path(imported).is_relative_to(wheel_venv), imported

    medgen = wheel_venv / "bin" / "medgen"
    dataset = REPO_ROOT / "config" / "datasets" / "tcga_mirna.yaml"
    assert _run(medgen, "validate", dataset, cwd=elsewhere).stdout.strip() == f"{dataset}: valid"
    # No dataset config: the default config shipped in the wheel, a copy of config/config.yaml.
    default = _run(medgen, "validate", cwd=elsewhere).stdout.strip().removesuffix(": valid")
    assert Path(default).is_relative_to(wheel_venv), default
    assert Path(default).read_bytes() == (REPO_ROOT / "config" / "config.yaml").read_bytes()

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"training": {"max_epochs": "ten"}}))
    result = _run(medgen, "validate", bad, cwd=elsewhere, check=False)
    assert result.returncode == 2
    assert "config key 'training.max_epochs' is 'ten'" in result.stderr
