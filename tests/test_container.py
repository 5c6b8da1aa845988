"""The container (issue 33): Apptainer.def and Dockerfile install the pinned environment,
and the workflow's global container directive names the image.

Neither image can be built here (no apptainer or docker), so the definitions are checked
against constraints.txt and pyproject.toml, and their install steps are run as written:
the files they copy land in a temporary root, and a stand-in ``pip`` records its calls.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from medgen import planning
from medgen.errors import MedgenInputError
from medgen.smk import job_header

from conftest import REPO_ROOT

APPTAINER_DEF = REPO_ROOT / "Apptainer.def"
DOCKERFILE = REPO_ROOT / "Dockerfile"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SRC = "/opt/medgen"  # where both definitions put the sources they install from


def _pins() -> dict[str, str]:
    lines = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def parse_apptainer(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """The header keywords and the sections (name -> body) of an Apptainer definition."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^%(\w+)\s*$", line)
        if match:
            current = match.group(1)
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif line.strip() and not line.startswith("#"):
            key, value = line.split(":", 1)
            header[key.strip()] = value.strip()
    return header, {name: "\n".join(body) for name, body in sections.items()}


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """The instructions of a Dockerfile, continuation lines joined: (INSTRUCTION, rest)."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in joined.splitlines() if line.strip()]


def _copy(source: str, dest: str, root: Path) -> None:
    """A file or folder of the checkout copied to ``dest`` under ``root`` (no caches)."""
    origin = REPO_ROOT / source
    assert origin.exists(), f"the definition copies {source}, which the repository lacks"
    target = root / dest.lstrip("/")
    if dest.endswith("/"):
        target = target / origin.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if origin.is_dir():
        shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copyfile(origin, target)


def _recording_bin(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with stand-ins for pip and medgen that append their arguments to a log."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir(parents=True)
    recorder = (f"#!{sys.executable}\nimport json, os, sys\n"
                "call = [os.path.basename(sys.argv[0]), *sys.argv[1:]]\n"
                f"with open({str(log)!r}, 'a') as f:\n"
                "    f.write(json.dumps(call) + '\\n')\n")
    for name in ("pip", "medgen"):
        (bin_dir / name).write_text(recorder)
        (bin_dir / name).chmod(0o755)
    return bin_dir, log


def _run_steps(script: str, root: Path, tmp_path: Path, env: dict[str, str]) -> list[list[str]]:
    """Run a definition's install script with its sources under ``root``; the calls made
    to pip and medgen, with ``root`` taken off their paths again."""
    bin_dir, log = _recording_bin(tmp_path)
    result = subprocess.run(
        ["sh", "-c", script.replace(SRC, f"{root}{SRC}")], capture_output=True, text=True,
        env={**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    return [[arg.replace(str(root), "") for arg in json.loads(line)]
            for line in log.read_text().splitlines()]


def _apptainer_build(tmp_path: Path) -> tuple[dict, dict, list[list[str]], Path]:
    header, sections = parse_apptainer(APPTAINER_DEF.read_text())
    arguments = dict(line.strip().split("=", 1)
                     for line in sections["arguments"].splitlines() if line.strip())
    root = tmp_path / "apptainer"
    for line in sections["files"].splitlines():
        if line.strip() and not line.strip().startswith("#"):
            source, dest = line.split()
            _copy(source, dest, root)
    post = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: arguments[m.group(1)], sections["post"])
    calls = _run_steps(post, root, tmp_path / "apptainer-run", {})
    return header, sections, calls, root


def _docker_build(tmp_path: Path) -> tuple[list[tuple[str, str]], list[list[str]], Path]:
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    arguments = dict(rest.split("=", 1) for kind, rest in instructions if kind == "ARG")
    root = tmp_path / "docker"
    calls: list[list[str]] = []
    for kind, rest in instructions:
        if kind == "COPY":
            *sources, dest = shlex.split(rest)
            for source in sources:
                _copy(source, dest, root)
        elif kind == "RUN":
            calls += _run_steps(rest, root, tmp_path / f"docker-run{len(calls)}", arguments)
    return instructions, calls, root


def _expected_installs() -> list[list[str]]:
    return [
        ["pip", "install", "--no-cache-dir", "--no-deps", "--index-url", CPU_INDEX,
         f"torch=={_pins()['torch']}"],
        # the tracking extra too: a read-only image cannot add it later
        ["pip", "install", "--no-cache-dir", "-c", f"{SRC}/constraints.txt", f"{SRC}[tracking]"],
    ]


def test_the_pins_have_one_torch_for_python_3_11_and_no_torchvision_or_cuda_packages():
    pins = _pins()
    assert "torch==" + pins["torch"] in _pyproject()["project"]["dependencies"]
    assert _pyproject()["project"]["requires-python"] == ">=3.11,<3.12"
    assert not [name for name in pins if "torchvision" in name.lower()
                or name.lower().startswith("nvidia")]
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert "python=3.11" in environment["dependencies"]
    (pip,) = [item["pip"] for item in environment["dependencies"] if isinstance(item, dict)]
    assert pip[0] == "-c constraints.txt"
    for path in (APPTAINER_DEF, DOCKERFILE, REPO_ROOT / "environment.yml",
                 REPO_ROOT / "pyproject.toml"):
        assert "torchvision" not in path.read_text().lower(), path


def test_apptainer_definition_starts_from_python_3_11_and_labels_the_version(tmp_path):
    header, sections, _, _ = _apptainer_build(tmp_path)
    assert header == {"Bootstrap": "docker", "From": "python:3.11-slim"}
    labels = dict(line.split(None, 1) for line in sections["labels"].splitlines()
                  if line.strip())
    assert labels["org.opencontainers.image.version"] == _pyproject()["project"]["version"]
    assert labels["org.opencontainers.image.title"] == "medgen"
    # the image's own checks: the interpreter, pip's view of the requirements, the config
    for check in ("sys.version_info[:2] == (3, 11)", "pip check", "medgen validate"):
        assert check in sections["test"]


def test_apptainer_post_installs_torch_from_the_cpu_index_then_the_pins(tmp_path):
    # the %post script as apptainer runs it (argument defaults filled in), with a stand-in pip
    _, _, calls, root = _apptainer_build(tmp_path)
    assert calls == _expected_installs()
    assert (root / SRC.lstrip("/") / "constraints.txt").read_bytes() == (
        REPO_ROOT / "constraints.txt").read_bytes()


def test_dockerfile_runs_the_same_steps_as_the_apptainer_definition(tmp_path):
    instructions, calls, docker_root = _docker_build(tmp_path)
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert [call for call in calls if call[:2] == ["pip", "install"]] == _expected_installs()
    assert calls[-2:] == [["pip", "check"], ["medgen", "validate"]]
    labels = " ".join(rest for kind, rest in instructions if kind == "LABEL")
    version = _pyproject()["project"]["version"]
    assert f'org.opencontainers.image.version="{version}"' in labels
    _, _, _, apptainer_root = _apptainer_build(tmp_path)

    def tree(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert tree(docker_root) == tree(apptainer_root)  # the same sources in the same places


def test_the_copied_sources_build_a_wheel_with_the_default_config_and_schemas(tmp_path):
    # what `pip install /opt/medgen` gets in the image: only the files the definition copies
    _, _, _, root = _apptainer_build(tmp_path)
    source = root / SRC.lstrip("/")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("medgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("medgen/cli.py", "medgen/resources/config.yaml",
                 "medgen/schemas/config.schema.yaml"):
        assert name in names


def test_container_image_defaults_to_medgen_sif_and_follows_the_variable():
    assert planning.container_image({}) == "medgen.sif"
    image = "docker://registry.example.org/medgen:0.1.0"
    assert planning.container_image({"MEDGEN_CONTAINER": image}) == image
    # not asked for apptainer: a missing local image is no error (the directive is ignored)
    assert planning.container_image({"MEDGEN_CONTAINER": "/nowhere/medgen.sif"}) == (
        "/nowhere/medgen.sif")


@pytest.mark.parametrize("value", ["", "  ", "my image.sif"])
def test_container_image_refuses_an_empty_name_or_one_with_spaces(value):
    with pytest.raises(MedgenInputError, match="MEDGEN_CONTAINER is .*expected an image"):
        planning.container_image({"MEDGEN_CONTAINER": value})


def test_with_apptainer_a_local_image_must_exist_and_a_uri_is_left_to_apptainer(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MedgenInputError, match=(
            r"image medgen.sif does not exist in .*apptainer build medgen.sif Apptainer.def")):
        planning.container_image({}, ["apptainer"])
    (tmp_path / "medgen.sif").write_bytes(b"")
    assert planning.container_image({}, ["apptainer"]) == "medgen.sif"
    uri = "docker://registry.example.org/medgen:0.1.0"
    assert planning.container_image({"MEDGEN_CONTAINER": uri}, ["apptainer"]) == uri


def test_a_jobs_log_names_the_image_it_ran_in(monkeypatch):
    job = SimpleNamespace(rule="provenance", config={}, params=None, wildcards=None, threads=1)
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    assert "container=" not in job_header(job)[3]
    monkeypatch.setenv("APPTAINER_CONTAINER", "/work/medgen.sif")
    assert job_header(job)[3].endswith(" container=/work/medgen.sif")


@pytest.mark.workflow
def test_asking_for_apptainer_without_the_image_is_one_message_before_the_run(tmp_path):
    missing = tmp_path / "medgen.sif"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--sdm", "apptainer",
         "--config", f"results_dir={tmp_path / 'results'}"],
        cwd=REPO_ROOT, capture_output=True, text=True,
        env={**os.environ, "MEDGEN_CONTAINER": str(missing)})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"container: image {missing} does not exist in {REPO_ROOT}" in output, output
    assert "Traceback" not in output
