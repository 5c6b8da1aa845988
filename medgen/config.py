"""Load, default-fill and validate a medgen config against medgen/schemas/config.schema.yaml.

The same function serves Snakemake (common.smk) and the ``medgen`` CLI, so a bad key fails
the same way everywhere: one message naming the key and what was expected.
"""

from __future__ import annotations

import copy
import reprlib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from medgen import registry
from medgen.errors import MedgenInputError
from medgen.family import resolve

REPO_ROOT = Path(__file__).resolve().parents[1]


def package_file(*parts: str) -> Path:
    """A data file shipped inside the medgen package (works from a checkout and a wheel)."""
    return Path(str(resources.files("medgen").joinpath(*parts)))


# The schemas are package data; workflow/schemas/ holds symlinks to them for the workflow
# catalog. The default config is config/config.yaml, the file Snakemake reads; a wheel ships
# a copy of it made at build time (setup.py), which only an installed package has.
SCHEMA_PATH = package_file("schemas", "config.schema.yaml")
_PACKAGED_DEFAULT_CONFIG = package_file("resources", "config.yaml")
DEFAULT_CONFIG_PATH = (
    _PACKAGED_DEFAULT_CONFIG if _PACKAGED_DEFAULT_CONFIG.is_file()
    else REPO_ROOT / "config" / "config.yaml"
)


# A config holds a few hundred values; YAML aliases can make a 400-byte file expand to
# billions (each level repeating the one before), so the expanded size is capped.
MAX_CONFIG_VALUES = 100_000
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 60, 60, 6, 6


def short_repr(value: Any) -> str:
    """repr of a config value, truncated so that an error message stays one line."""
    text = _SHORT.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_expanded_size(data: Any, where: str, limit: int = MAX_CONFIG_VALUES) -> None:
    """Count the values of ``data`` as expanded (an aliased node counts each time it is
    used), stopping at ``limit``.

    Raises
    ------
    MedgenInputError
        More than ``limit`` values: an alias bomb, or not a config.
    """
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            raise MedgenInputError(
                f"{where} expands to more than {limit} values (YAML aliases repeating "
                "anchors?); a medgen config holds a few hundred: write the values out"
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def expanded_nodes(node: yaml.Node, memo: dict[int, int] | None = None) -> int:
    """Number of nodes of a composed YAML graph once aliases and merge keys are expanded
    (each shared node counted every time it is used), from the graph itself: linear in its
    size, however large the expansion."""
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    if isinstance(node, yaml.MappingNode):
        total = 1 + sum(expanded_nodes(k, memo) + expanded_nodes(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total = 1 + sum(expanded_nodes(v, memo) for v in node.value)
    else:
        total = 1
    memo[id(node)] = total
    return total


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (never yaml.load) with a clear error for bad files.

    Raises
    ------
    MedgenInputError
        Missing file, a folder, not UTF-8, invalid YAML, not a mapping, or more than
        MAX_CONFIG_VALUES values once aliases are expanded.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        # size the node graph before building it: aliases and merge keys (<<) share nodes
        # there, so a bomb is caught before it takes minutes and gigabytes to expand
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None and expanded_nodes(root) > MAX_CONFIG_VALUES:
            raise MedgenInputError(
                f"config file {path} expands to more than {MAX_CONFIG_VALUES} values (YAML "
                "aliases or merge keys repeating anchors?); a medgen config holds a few "
                "hundred: write the values out")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise MedgenInputError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise MedgenInputError(
            f"config file {path} is a folder; expected a YAML file") from None
    except UnicodeDecodeError as err:
        raise MedgenInputError(
            f"config file {path} is not UTF-8 text (byte {err.object[err.start]:#x} at "
            f"offset {err.start}); expected a UTF-8 encoded YAML file") from None
    except yaml.YAMLError as err:
        raise MedgenInputError(f"config file {path} is not valid YAML: {err}") from None
    check_expanded_size(data, f"config file {path}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MedgenInputError(
            f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def load_schema() -> dict[str, Any]:
    """The config schema, with one ``models.<name>`` entry per registered family."""
    return with_registered_families(load_yaml(SCHEMA_PATH))


def with_registered_families(schema: dict[str, Any]) -> dict[str, Any]:
    """Fill the schema's choices from the registries (the one list of tasks, families and
    presets): ``tasks`` from ``registry.TASKS``; each task section's ``families`` from the
    task's configurable families; ``properties.models.properties`` with one
    ``definitions.model_entry`` per configurable family, with its description and its
    presets as the choices of ``preset``."""
    entry = schema["definitions"]["model_entry"]
    families = {}
    for name in registry.configurable():
        spec = registry.get(name)
        block = copy.deepcopy(entry)
        block["description"] = spec.description
        block["properties"]["preset"]["enum"] = list(spec.presets)
        families[name] = block
    schema["properties"]["models"]["properties"] = families
    schema["properties"]["tasks"]["items"]["enum"] = list(registry.TASKS)
    for task in registry.TASKS:
        section = schema["properties"][registry.task(task).section]
        section["properties"]["families"]["items"]["enum"] = registry.names(
            task, baselines=False)
    return schema


# keys of the old config shape -> what replaced them (one message each, before validation)
RENAMED_SECTIONS = {
    "imaging": "config key 'imaging' is now 'anomaly' (the anomaly-detection task; its "
               "outputs are in results/<run_name>/anomaly/): rename the section, and its "
               "'intensity' key 'normalisation'",
    "evaluation": "config key 'evaluation' is now 'expression.evaluation' (it configures "
                  "the expression task only): move it there",
}


def check_old_keys(config: dict[str, Any]) -> None:
    """Refuse keys of the config shape before tasks were chosen by lists, naming the new key.

    Raises
    ------
    MedgenInputError
        ``imaging`` (now ``anomaly``), a top-level ``evaluation`` (now
        ``expression.evaluation``), or an ``activate`` switch of a task section or of a
        ``models.<family>`` entry (now the ``tasks`` and ``<task>.families`` lists).
    """
    for key, message in RENAMED_SECTIONS.items():
        if key in config:
            raise MedgenInputError(message)
    for task in registry.TASKS:
        section = registry.task(task).section
        if isinstance(config.get(section), dict) and "activate" in config[section]:
            raise MedgenInputError(
                f"config key '{section}.activate' is gone: what runs is chosen by lists; "
                f"list the task in 'tasks' (e.g. tasks: [{task}]; a dataset config's list "
                "replaces the default's)")
    for family, entry in (config.get("models") or {}).items():
        if isinstance(entry, dict) and "activate" in entry:
            try:
                where = f"'{registry.task(registry.get(family).task).section}.families'"
            except MedgenInputError:
                where = "its task's 'families'"
            raise MedgenInputError(
                f"config key 'models.{family}.activate' is gone: what runs is chosen by "
                f"lists; list the family in {where} (and its task in 'tasks')")


def deep_update(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return base with override merged in key by key (how --configfile layers on defaults)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_update(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def fill_defaults(schema: dict[str, Any], instance: Any) -> Any:
    """Insert every missing key that has a schema default, recursively."""
    if isinstance(instance, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                instance[key] = fill_defaults(sub, instance[key])
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        instance = [fill_defaults(schema["items"], item) for item in instance]
    return instance


def _key_path(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into one sentence naming the key and the valid choices."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        prefix = f"{where}." if error.absolute_path else ""
        keys = ", ".join(f"'{prefix}{k}'" for k in extra)
        return f"unknown config key {keys}; valid keys here: {', '.join(allowed)}"
    if error.validator == "enum":
        # as the YAML is written: true/false, not Python's True/False
        choices = ", ".join(str(c).lower() if isinstance(c, bool) else str(c)
                            for c in error.validator_value)
        return (f"config key '{where}' is {short_repr(error.instance)}; expected one of: "
                f"{choices}")
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return (
            f"config key '{where}' is {short_repr(error.instance)} "
            f"({type(error.instance).__name__}); "
            f"expected {expected}"
        )
    if error.validator == "required":
        return f"config key '{where}': {error.message}"
    message = error.message
    if len(message) > 200:  # jsonschema quotes the whole value
        message = message[:200] + "..."
    return f"config key '{where}' is {short_repr(error.instance)}: {message}"


def validate(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill defaults and validate; return the resolved config or raise MedgenInputError.

    The config's expanded size is checked first: Snakemake loads --configfile itself.
    """
    check_expanded_size(config, "the config")
    check_old_keys(config)
    schema = schema or load_schema()
    resolved = fill_defaults(schema, copy.deepcopy(config))
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(resolved),
        key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))),
    )
    if errors:
        raise MedgenInputError(_describe(errors[0]))
    _validate_model_params(resolved)
    seeds = resolved.get("replicates", {}).get("seeds", [])
    if len(seeds) == 1:
        raise MedgenInputError(
            f"config key 'replicates.seeds' is {seeds}: one replicate has no spread to "
            "aggregate; give two or more seeds (e.g. [0, 1, 2, 3, 4]), or none and set "
            "'seed' for a single run")
    _check_tracking(resolved.get("tracking", {}))
    _check_sampling(resolved)
    # what only one task knows (image sides its networks take, its windows) is its own check
    for name in registry.TASKS:
        check = registry.task(name).check_config
        if check:
            resolve(check)(resolved)
    return resolved


def _check_sampling(config: dict[str, Any]) -> None:
    """Refuse a ``<task>.sampling.n_samples`` outside apply mode: a training run would
    silently ignore it."""
    if (config.get("apply") or {}).get("activate"):
        return
    from medgen.synthetic_output import SAMPLING_SECTIONS, sampling_requested

    for section in SAMPLING_SECTIONS:
        if sampling_requested(config, section):
            raise MedgenInputError(
                f"config key '{section}.sampling.n_samples' is set, but apply.activate is "
                "false: sampling draws from a trained model in apply mode (apply: {activate: "
                "true, model: <model.pt>}); remove it to train")


# the stores MLflow's client takes (a path without a scheme is a local file store)
MLFLOW_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql",
                  "databricks")


def _check_tracking(section: dict[str, Any]) -> None:
    """Refuse a tracking URI MLflow cannot open, and an MLflow-only key with TensorBoard,
    before any job runs (a training job would fail on them mid-run)."""
    uri, backend = section.get("uri", ""), section.get("backend", "none")
    if backend == "mlflow" and ":" in uri:
        scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in MLFLOW_SCHEMES:
            raise MedgenInputError(
                f"config key 'tracking.uri' is {uri!r}; expected an MLflow tracking URI "
                f"({', '.join(f'{s}:' for s in MLFLOW_SCHEMES)}), a local folder, or '' for "
                "the run's own file store")
    if backend == "tensorboard" and section.get("experiment"):
        raise MedgenInputError(
            "config key 'tracking.experiment' names an MLflow experiment, but "
            "tracking.backend is tensorboard (one folder per model and seed under "
            "tracking.uri): leave it empty")


def _validate_model_params(config: dict[str, Any]) -> None:
    for family, section in config.get("models", {}).items():
        registry.resolve_hparams(family, section["preset"], section.get("params", {}))


def load(
    path: str | Path | list[str | Path] | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Default config, then the config file(s) in order (as Snakemake layers several
    ``--configfile``s), then overrides; validated."""
    config = load_yaml(DEFAULT_CONFIG_PATH)
    paths = path if isinstance(path, list) else [] if path is None else [path]
    for each in paths:
        config = deep_update(config, load_yaml(each))
    if overrides:
        config = deep_update(config, overrides)
    return validate(config)


def run_dir(config: dict[str, Any]) -> Path:
    return Path(config["results_dir"]) / config["run_name"]
