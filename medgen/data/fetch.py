"""Fetch expression data once into a cache: the syng-bts wheel's tables, or a URL.

Both fetchers verify a sha256 before anything lands in the cache and write through a
temporary file, so a cache entry is either complete and verified or absent.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from medgen.atomic import atomic_path, write_json
from medgen.errors import MedgenInputError
from medgen.provenance import sha256_file

logger = logging.getLogger(__name__)

SYNG_BTS_TABLE_DIR = "syng_bts/data/transfer"
CACHE_MANIFEST = "SHA256SUMS.json"
_CHUNK = 1 << 16


def _read_manifest(folder: Path) -> dict[str, str] | None:
    manifest_path = folder / CACHE_MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _cached_tables(folder: Path, tables: Sequence[str]) -> dict[str, Path] | None:
    """The cached tables if every one is present and matches the manifest, else None.

    Hashes every table: call it from a job (the fetch rule's), never while Snakemake builds
    its DAG, so that ``snakemake -n``, ``--lint`` and ``--report`` read and change nothing.
    """
    manifest = _read_manifest(folder)
    if manifest is None:
        return None
    paths = {table: folder / f"{table}.parquet" for table in tables}
    for path in paths.values():
        if not path.is_file():
            logger.info("cached %s is missing; fetching the wheel again", path)
            return None
        if manifest.get(path.name) != sha256_file(path):
            logger.warning("cached %s does not match %s; fetching the wheel again to rebuild it",
                           path, folder / CACHE_MANIFEST)
            return None
    return paths


def extract_tables(
    wheel: str | os.PathLike, sha256: str, tables: Sequence[str], dest_dir: str | os.PathLike
) -> dict[str, Path]:
    """Verify a syng-bts wheel and copy only ``syng_bts/data/transfer/{TABLE}.parquet`` out.

    Parameters
    ----------
    wheel
        The downloaded ``.whl`` (a zip file).
    sha256
        Its expected sha256.
    tables
        Table names (e.g. BRCA, PRAD).
    dest_dir
        Folder that receives ``{TABLE}.parquet`` and a checksum manifest.

    Raises
    ------
    MedgenInputError
        On a checksum mismatch, a file that is not a zip, or a table the wheel lacks (the
        message lists the tables it has).
    """
    wheel, dest_dir = Path(wheel), Path(dest_dir)
    actual = sha256_file(wheel)
    if actual != sha256:
        raise MedgenInputError(
            f"{wheel.name} has sha256 {actual}, expected {sha256} "
            "(expression.syng_bts.sha256); refusing to use it"
        )
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile:
        raise MedgenInputError(f"{wheel} is not a wheel (zip) file") from None
    with archive:
        names = set(archive.namelist())
        members = {t: f"{SYNG_BTS_TABLE_DIR}/{t}.parquet" for t in tables}
        missing = [t for t, m in members.items() if m not in names]
        if missing:
            available = sorted(
                Path(n).stem for n in names
                if n.startswith(SYNG_BTS_TABLE_DIR + "/") and n.endswith(".parquet")
            )
            raise MedgenInputError(
                f"{wheel.name} has no table {', '.join(missing)} under {SYNG_BTS_TABLE_DIR}/; "
                f"available: {', '.join(available) or '(none)'}"
            )
        paths: dict[str, Path] = {}
        for table, member in members.items():
            dest = dest_dir / f"{table}.parquet"
            with archive.open(member) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            paths[table] = dest
    manifest_path = dest_dir / CACHE_MANIFEST
    manifest = _read_manifest(dest_dir) or {}
    manifest.update({p.name: sha256_file(p) for p in paths.values()})
    manifest["wheel_sha256"] = sha256
    write_json(manifest_path, manifest)
    return paths


def fetch_syng_bts(
    version: str,
    sha256: str,
    tables: Sequence[str],
    cache_dir: str | os.PathLike,
    pip_options: Sequence[str] = (),
) -> dict[str, Path]:
    """TCGA miRNA count tables from the syng-bts wheel on PyPI, cached.

    Runs ``python -m pip download --no-deps --only-binary=:all: syng-bts==VERSION`` into a
    temporary folder, checks the wheel's sha256 and keeps only the requested tables in
    ``cache_dir/syng_bts-VERSION/``. A second call whose tables are cached (and match the
    cache's checksums) downloads nothing; a cached table that is missing or no longer matches
    its checksum is rebuilt from a fresh download (written atomically over the damaged one).

    Parameters
    ----------
    version, sha256
        The wheel's version and expected sha256.
    tables
        Table names under ``syng_bts/data/transfer/`` (e.g. ["BRCA", "PRAD"]).
    cache_dir
        The cache root.
    pip_options
        Extra ``pip download`` options (e.g. ``["--retries", "0", "--timeout", "5"]``).

    Returns
    -------
    dict
        Table name -> cached parquet path.
    """
    folder = Path(cache_dir) / f"syng_bts-{version}"
    cached = _cached_tables(folder, tables)
    if cached is not None:
        logger.info("syng-bts %s tables %s found in the cache %s", version, list(tables), folder)
        return cached
    with tempfile.TemporaryDirectory(prefix="medgen-syng-bts-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            f"syng-bts=={version}", "-d", tmp, *pip_options,
        ]
        logger.info("downloading syng-bts %s with pip", version)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR")]
            detail = lines[-1] if lines else f"exit status {result.returncode}"
            raise MedgenInputError(
                f"could not download syng-bts=={version} with pip: the package index could "
                f"not be reached or has no such wheel (pip: {detail}). Offline, set "
                "expression.source: files and list local tables under expression.files "
                "(e.g. the BRCA/PRAD parquet files from a machine with network access)"
            )
        wheels = sorted(Path(tmp).glob("syng_bts-*.whl"))
        if len(wheels) != 1:
            raise MedgenInputError(
                f"pip download of syng-bts=={version} gave {len(wheels)} wheels; expected 1"
            )
        return extract_tables(wheels[0], sha256, tables, folder)


def verify_syng_bts(
    version: str,
    sha256: str,
    tables: Sequence[str],
    cache_dir: str | os.PathLike,
    checksums_out: str | os.PathLike,
    pip_options: Sequence[str] = (),
) -> dict[str, Path]:
    """Check the cached syng-bts tables, rebuild damaged ones, record what was verified.

    The workflow's verify_syng_bts job: its inputs are the cached tables, so Snakemake runs
    it again whenever a table changes after the last verification (a newer file). It calls
    :func:`fetch_syng_bts`, which hashes every table against the cache's manifest and fetches
    the wheel again when one does not match, then writes ``checksums_out`` (table file name
    -> sha256, and the wheel's sha256) for the steps that read the tables.

    Returns
    -------
    dict
        Table name -> cached parquet path, every one verified.
    """
    paths = fetch_syng_bts(version, sha256, tables, cache_dir, pip_options)
    manifest = _read_manifest(Path(cache_dir) / f"syng_bts-{version}") or {}
    write_json(checksums_out, {
        "syng_bts_version": version,
        "wheel_sha256": manifest.get("wheel_sha256", sha256),
        "tables": {path.name: manifest[path.name] for path in paths.values()},
    })
    return paths


def _filename(url: str, filename: str | None) -> str:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise MedgenInputError(f"URL {url!r} (expression.url.url) must start with http(s)://")
    name = filename or Path(urllib.parse.unquote(parsed.path)).name
    if not name or name in (".", ".."):
        raise MedgenInputError(f"URL {url} names no file; give a file name for the cache")
    return name


def download(
    url: str,
    sha256: str,
    dest_dir: str | os.PathLike,
    filename: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` once into ``dest_dir``, resumably, and verify its sha256.

    A file already in the cache with the right checksum is returned without a request. An
    interrupted download leaves ``<name>.part``, which the next call resumes with an HTTP
    Range request (or restarts if the server ignores ranges).

    Parameters
    ----------
    url
        http(s) address.
    sha256
        Expected sha256 of the complete file.
    dest_dir
        Cache folder.
    filename
        Name in the cache (default: the URL's last path component).
    timeout
        Socket timeout in seconds.

    Raises
    ------
    MedgenInputError
        When the server cannot be reached or answers with an error (the ``.part`` file is
        kept for resuming), or the checksum does not match (the bad file is removed).
    """
    dest_dir = Path(dest_dir)
    dest = dest_dir / _filename(url, filename)
    if dest.is_file():
        if sha256_file(dest) == sha256:
            logger.info("%s is cached and verified", dest)
            return dest
        logger.warning("cached %s does not match its sha256; downloading it again", dest)
        dest.unlink()
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            # The .part already holds everything the server has: verify it below.
            response = None
        else:
            raise MedgenInputError(
                f"downloading {url} failed: HTTP {err.code} {err.reason}"
            ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise MedgenInputError(f"could not reach {url}: {reason}") from None
    if response is not None:
        with response:
            resumed = offset > 0 and response.status == 206
            if offset and not resumed:
                logger.info("server ignored the range request; restarting %s", url)
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            try:
                with open(part, "ab" if resumed else "wb") as out, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name,
                    disable=None,
                ) as bar:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
            except OSError as err:
                raise MedgenInputError(
                    f"downloading {url} was interrupted ({err}); run again to resume from "
                    f"{part}"
                ) from None
    actual = sha256_file(part)
    if actual != sha256:
        part.unlink(missing_ok=True)
        raise MedgenInputError(
            f"{url} downloaded with sha256 {actual}, expected {sha256} "
            "(expression.url.sha256); the file was removed"
        )
    os.replace(part, dest)
    return dest
