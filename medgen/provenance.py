"""Provenance written beside every output: config, seed, versions, git revision, checksums."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "medgen", "torch", "lightning", "monai", "numpy", "pandas", "scikit-learn",
    "scanpy", "anndata", "nibabel", "snakemake",
)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


SNAKEMAKE_MARKER = ".snakemake_timestamp"  # Snakemake writes it into folder outputs


def checksums(paths: list[str | os.PathLike]) -> dict[str, str]:
    """sha256 of each input file; folders (DICOM series, prepared image folders) hash their
    files in sorted order, without Snakemake's marker of a folder output."""
    sums: dict[str, str] = {}
    for path in paths:
        p = Path(path)
        if p.is_dir():
            for child in sorted(q for q in p.rglob("*")
                                if q.is_file() and q.name != SNAKEMAKE_MARKER):
                sums[str(child)] = sha256_file(child)
        elif p.exists():
            sums[str(p)] = sha256_file(p)
    return sums


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_revision() -> str:
    """The medgen checkout's revision (with '-dirty' for local changes), or 'unknown'."""
    repo = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def collect(
    config: dict[str, Any] | None = None,
    seed: int | None = None,
    inputs: list[str | os.PathLike] | None = None,
) -> dict[str, Any]:
    """Everything needed to say how an output was made.

    No timestamps or host names: two runs of the same config must write identical files.
    """
    return {
        "config": config or {},
        "seed": seed,
        "versions": package_versions(),
        "git_revision": git_revision(),
        "inputs": checksums(list(inputs or [])),
    }
