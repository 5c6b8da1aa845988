"""Fetchers: syng-bts wheel extraction and offline error, resumable checksum-verified download."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from medgen.data import fetch
from medgen.data.fetch import download, extract_tables, fetch_syng_bts
from medgen.errors import MedgenInputError

PAYLOAD = bytes(range(256)) * 400  # 100 KiB, several read blocks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- syng-bts -------------------------------------------------------------------------------


@pytest.fixture
def wheel(tmp_path) -> tuple[Path, str]:
    """A small zip laid out like the syng-bts wheel."""
    path = tmp_path / "syng_bts-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("syng_bts/__init__.py", "")
        archive.writestr("syng_bts/data/transfer/BRCA.parquet", b"brca-bytes")
        archive.writestr("syng_bts/data/transfer/PRAD.parquet", b"prad-bytes")
        archive.writestr("syng_bts/data/other/COAD.parquet", b"not-a-transfer-table")
        # what pip checks when it downloads the wheel from a local folder (the workflow tests)
        info = "syng_bts-0.0.1.dist-info"
        archive.writestr(f"{info}/METADATA",
                         "Metadata-Version: 2.1\nName: syng-bts\nVersion: 0.0.1\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: medgen-tests\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path, _sha(path.read_bytes())


def test_extract_only_requested_tables(wheel, tmp_path):
    path, sha = wheel
    dest = tmp_path / "cache" / "syng_bts-0.0.1"
    paths = extract_tables(path, sha, ["BRCA"], dest)
    assert paths == {"BRCA": dest / "BRCA.parquet"}
    assert paths["BRCA"].read_bytes() == b"brca-bytes"
    assert sorted(p.name for p in dest.iterdir()) == ["BRCA.parquet", "SHA256SUMS.json"]
    manifest = json.loads((dest / "SHA256SUMS.json").read_text())
    assert manifest["BRCA.parquet"] == _sha(b"brca-bytes") and manifest["wheel_sha256"] == sha


def test_extract_checksum_mismatch(wheel, tmp_path):
    path, _ = wheel
    dest = tmp_path / "cache"
    with pytest.raises(MedgenInputError, match=r"syng_bts-0\.0\.1.*has sha256 .*expected 0{64}"):
        extract_tables(path, "0" * 64, ["BRCA"], dest)
    assert not dest.exists()


def test_extract_unknown_table_lists_available(wheel, tmp_path):
    path, sha = wheel
    dest = tmp_path / "cache"
    with pytest.raises(MedgenInputError, match=r"no table COAD .*available: BRCA, PRAD"):
        extract_tables(path, sha, ["BRCA", "COAD"], dest)
    assert not dest.exists()


def test_fetch_uses_pip_once_then_cache(wheel, tmp_path, monkeypatch):
    """pip is replaced by a fake that drops the local wheel; the second call must not run it."""
    path, sha = wheel
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        target = Path(command[command.index("-d") + 1])
        (target / path.name).write_bytes(path.read_bytes())
        return fetch.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    cache = tmp_path / "cache"
    first = fetch_syng_bts("0.0.1", sha, ["BRCA", "PRAD"], cache)
    assert first == {t: cache / "syng_bts-0.0.1" / f"{t}.parquet" for t in ("BRCA", "PRAD")}
    command = calls[0]
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert "syng-bts==0.0.1" in command
    assert fetch_syng_bts("0.0.1", sha, ["PRAD"], cache) == {"PRAD": first["PRAD"]}
    assert len(calls) == 1
    # A cached table that changed is fetched again.
    first["BRCA"].write_bytes(b"tampered")
    fetch_syng_bts("0.0.1", sha, ["BRCA"], cache)
    assert len(calls) == 2 and first["BRCA"].read_bytes() == b"brca-bytes"


def test_fetch_offline_error(tmp_path, monkeypatch):
    """A real pip run against an unreachable index fails fast with a clear message."""
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    cache = tmp_path / "cache"
    pattern = r"package index could not be reached.*source: files"
    with pytest.raises(MedgenInputError, match=pattern):
        fetch_syng_bts(
            "3.6.1", "0" * 64, ["BRCA"], cache, pip_options=["--retries", "0", "--timeout", "5"]
        )
    assert not cache.exists() or not any(cache.rglob("*.parquet"))


# --- download -------------------------------------------------------------------------------


class _Server:
    """A local HTTP server with Range support that records each request's Range header."""

    def __init__(self, payload: bytes, honour_range: bool = True):
        self.payload = payload
        self.requests: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.requests.append(self.headers.get("Range"))
                data, status = outer.payload, 200
                rng = self.headers.get("Range")
                if rng and honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    data, status = data[start:], 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/data/table.csv.gz"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_download_then_cached(tmp_path):
    with _Server(PAYLOAD) as server:
        path = download(server.url, PAYLOAD_SHA, tmp_path)
        assert path == tmp_path / "table.csv.gz" and path.read_bytes() == PAYLOAD
        assert server.requests == [None]
        again = download(server.url, PAYLOAD_SHA, tmp_path)
        assert again == path and server.requests == [None]  # no second request
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv.gz"]


def test_download_resumes_from_part(tmp_path):
    (tmp_path / "table.csv.gz.part").write_bytes(PAYLOAD[:30000])
    with _Server(PAYLOAD) as server:
        path = download(server.url, PAYLOAD_SHA, tmp_path)
        assert server.requests == ["bytes=30000-"]
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "table.csv.gz.part").exists()


def test_download_restarts_when_range_ignored(tmp_path):
    (tmp_path / "table.csv.gz.part").write_bytes(b"garbage-prefix")
    with _Server(PAYLOAD, honour_range=False) as server:
        path = download(server.url, PAYLOAD_SHA, tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_download_complete_part_is_verified(tmp_path):
    (tmp_path / "table.csv.gz.part").write_bytes(PAYLOAD)
    with _Server(PAYLOAD) as server:
        path = download(server.url, PAYLOAD_SHA, tmp_path)  # server answers 416
    assert path.read_bytes() == PAYLOAD


def test_download_checksum_mismatch_removes_file(tmp_path):
    with _Server(PAYLOAD) as server:
        with pytest.raises(MedgenInputError, match=rf"table\.csv\.gz downloaded with sha256 "
                           rf"{PAYLOAD_SHA}, expected f{{64}}.*removed"):
            download(server.url, "f" * 64, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_changed_cache_is_replaced(tmp_path):
    (tmp_path / "named.bin").write_bytes(b"stale")
    with _Server(PAYLOAD) as server:
        path = download(server.url, PAYLOAD_SHA, tmp_path, filename="named.bin")
        assert server.requests == [None]
    assert path.read_bytes() == PAYLOAD


def test_download_unreachable_and_bad_scheme(tmp_path):
    with pytest.raises(MedgenInputError, match=r"could not reach http://127\.0\.0\.1:9/x\.csv"):
        download("http://127.0.0.1:9/x.csv", PAYLOAD_SHA, tmp_path, timeout=5)
    with pytest.raises(MedgenInputError, match=r"must start with http"):
        download("file:///etc/passwd", PAYLOAD_SHA, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- the workflow: checksums are checked inside a job, never while the DAG is built ---------


def _workflow_cache(wheel, tmp_path) -> tuple[Path, Path, Path]:
    """A cache holding the fixture wheel's tables (made outside Snakemake) and a config."""
    path, sha = wheel
    cache = tmp_path / "cache"
    extract_tables(path, sha, ["BRCA", "PRAD"], cache / "syng_bts-0.0.1")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cache_dir": str(cache), "results_dir": str(tmp_path / "results"), "run_name": "r",
        "expression": {"syng_bts": {"version": "0.0.1", "sha256": sha}},
    }))
    return cache / "syng_bts-0.0.1", config, tmp_path / "results" / "r" / "data"


def _snakemake(
    config: Path, *args: str, pip_wheels: Path | None = None, check: bool = True
) -> str:
    """Run snakemake from the repo; pip (if a job calls it) sees only ``pip_wheels``."""
    from conftest import REPO_ROOT

    pip_env = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_NO_CACHE_DIR": "1",
               "PIP_FIND_LINKS": str(pip_wheels or config.parent / "no-wheels")}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--cores", "1", "--configfile", str(config)],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, **pip_env},
    )
    assert result.returncode == 0 or not check, result.stdout + result.stderr
    return result.stdout


def _planned_rules(stdout: str) -> list[str]:
    return sorted(re.findall(r"^rule (\w+):", stdout, re.MULTILINE))


@pytest.mark.workflow
def test_dry_run_with_a_corrupt_cached_table_deletes_nothing(wheel, tmp_path):
    """-n, --lint and --report must not hash or remove cache files: a damaged table stays
    as it is, and the plan holds the job that will check (and rebuild) it."""
    folder, config, _ = _workflow_cache(wheel, tmp_path)
    damaged = folder / "PRAD.parquet"
    damaged.write_bytes(b"prad-byteZ")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    planned = _planned_rules(_snakemake(config, "-n"))
    assert "verify_syng_bts" in planned and "fetch_syng_bts" not in planned
    _snakemake(config, "--lint", check=False)  # exits 1: no conda env per rule (by design)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after == before  # still there, same bytes, untouched
    assert damaged.read_bytes() == b"prad-byteZ"


@pytest.mark.workflow
def test_corrupt_cached_table_is_detected_and_rebuilt_by_a_real_run(wheel, tmp_path):
    """The verify job reruns when a cached table changed, finds the damage and rebuilds it."""
    path, _ = wheel
    folder, config, data = _workflow_cache(wheel, tmp_path)
    target = str(data / "syng_bts_sha256.json")
    # Intact cache: verified without pip (pip would fail here: no wheels to find).
    _snakemake(config, target)
    record = json.loads((data / "syng_bts_sha256.json").read_text())
    assert record["tables"] == {"BRCA.parquet": _sha(b"brca-bytes"),
                                "PRAD.parquet": _sha(b"prad-bytes")}
    assert "Nothing to be done" in _snakemake(config, target, "-n")

    damaged = folder / "PRAD.parquet"
    damaged.write_bytes(b"prad-byteZ")
    assert _planned_rules(_snakemake(config, target, "-n")) == ["verify_syng_bts"]
    assert damaged.read_bytes() == b"prad-byteZ"  # the dry run left it alone
    _snakemake(config, target, pip_wheels=path.parent)
    assert damaged.read_bytes() == b"prad-bytes"  # rebuilt from the wheel
    assert (folder / "BRCA.parquet").read_bytes() == b"brca-bytes"
    log = (data.parent / "logs" / "verify_syng_bts.log").read_text()
    assert "does not match" in log and "downloading syng-bts 0.0.1" in log
    assert "Nothing to be done" in _snakemake(config, target, "-n")
