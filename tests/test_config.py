"""Config validation: defaults, schema completeness and one clear error per mistake."""

from __future__ import annotations

import logging
import re

import pytest
import yaml

from medgen import config as medgen_config
from medgen import registry
from medgen.errors import MedgenInputError


def _walk(schema, path=""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _walk(sub, f"{path}{key}.")
        if isinstance(sub.get("items"), dict):
            yield from _walk(sub["items"], f"{path}{key}[].")


def test_every_schema_key_has_description_and_default():
    missing = []
    for key, sub in _walk(medgen_config.load_schema()):
        if "description" not in sub:
            missing.append(f"{key}: description")
        # Required item keys (a table's path) have no sensible default.
        if "default" not in sub and not key.endswith("[].path"):
            missing.append(f"{key}: default")
    assert missing == []


def test_default_config_resolves_with_defaults_filled():
    resolved = medgen_config.load()
    assert resolved["expression"]["split"]["group_by"] == "patient"
    assert resolved["models"]["tybalt"]["preset"] == "default"
    # A key left out of config.yaml is filled from the schema.
    trimmed = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    assert "evaluation" not in trimmed["expression"]
    assert "families" not in trimmed["anomaly"]
    resolved = medgen_config.validate(trimmed)
    assert resolved["expression"]["evaluation"]["knn_k"] == 5
    assert resolved["expression"]["evaluation"]["baselines"] == ["pca", "ica", "nmf"]
    assert resolved["anomaly"]["families"] == ["fanogan"]
    assert resolved["tasks"] == ["expression", "anomaly"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"training": {"devices": "two"}}, "'training.devices' is 'two' (str); expected integer"),
        ({"seed": 1.5}, "'seed' is 1.5 (float); expected integer"),
        ({"expression": {"top_k": 10}}, "unknown config key 'expression.top_k'"),
        ({"learning_rate": 0.1}, "unknown config key 'learning_rate'"),
        ({"models": {"tybalto": {}}}, "unknown config key 'models.tybalto'; valid keys here:"),
        ({"models": {"tybalt": {"preset": "papr"}}}, "expected one of: paper, default"),
        ({"expression": {"gene_ranking": "variance"}}, "expected one of: mean_abs_dev"),
        ({"run_name": "a b/c"}, "'run_name'"),
    ],
)
def test_bad_config_names_the_key(override, expected):
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    with pytest.raises(MedgenInputError) as err:
        medgen_config.validate(medgen_config.deep_update(base, override))
    assert expected in str(err.value)


def test_unknown_model_name_lists_valid_families():
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    with pytest.raises(MedgenInputError) as err:
        medgen_config.validate(medgen_config.deep_update(base, {"models": {"vae": {}}}))
    assert "tybalt" in str(err.value)
    with pytest.raises(MedgenInputError, match="valid families: .*tybalt"):
        registry.get("vae")


def test_model_param_overrides_are_checked_key_by_key():
    paper = registry.resolve_hparams("tybalt", "paper", {"latent_dim": 50})
    assert paper["latent_dim"] == 50
    with pytest.raises(MedgenInputError, match="models.tybalt.params.latent_dimm"):
        registry.resolve_hparams("tybalt", "paper", {"latent_dimm": 50})
    with pytest.raises(MedgenInputError, match="models.tybalt.params.latent_dim.*expected int"):
        registry.resolve_hparams("tybalt", "paper", {"latent_dim": "fifty"})


def test_bad_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(MedgenInputError, match="bad.yaml is not valid YAML"):
        medgen_config.load(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(MedgenInputError, match="must hold a mapping"):
        medgen_config.load(listing)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"run_name: caf\xe9\n")
    with pytest.raises(MedgenInputError, match=r"latin1.yaml is not UTF-8 text \(byte 0xe9"):
        medgen_config.load(latin1)
    with pytest.raises(MedgenInputError, match="is a folder; expected a YAML file"):
        medgen_config.load(tmp_path)


def test_exponent_without_a_dot_gets_a_hint():
    # PyYAML reads 1e-4 as a string
    with pytest.raises(MedgenInputError, match="YAML reads 1e-4 as text: write it with a dot"):
        registry.resolve_hparams("fanogan", "default", {"lr": "1e-4"})


def test_dataset_configs_validate():
    datasets = sorted((medgen_config.REPO_ROOT / "config" / "datasets").glob("*.yaml"))
    assert datasets, "config/datasets/ holds no dataset config"
    for path in datasets:
        medgen_config.load(path)


def test_preset_choices_come_from_the_registry():
    models = medgen_config.load_schema()["properties"]["models"]["properties"]
    assert set(models) == set(registry.configurable())
    for family, block in models.items():
        assert block["properties"]["preset"]["enum"] == list(registry.presets(family))
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    with pytest.raises(MedgenInputError, match="models.fanogan.preset.*expected one of: paper"):
        medgen_config.validate(medgen_config.deep_update(
            base, {"models": {"fanogan": {"preset": "huge"}}}))


def test_even_median_filter_is_refused():
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    with pytest.raises(MedgenInputError,
                       match="'anomaly.evaluation.median_filter' is 2; expected 0.*odd"):
        medgen_config.validate(medgen_config.deep_update(
            base, {"anomaly": {"evaluation": {"median_filter": 2}}}))
    for size in (0, 1, 5, [0, 3, 5]):
        medgen_config.validate(medgen_config.deep_update(
            base, {"anomaly": {"evaluation": {"median_filter": size}}}))
    # candidates to choose among on val: each odd (or 0), different, at least one
    for bad, why in (([0, 4], r"is \[0, 4\]; expected 0.*odd"),
                     ([3, 3], r"is \[3, 3\]; expected one size or a non-empty list of "
                              "different sizes"),
                     ([], "median_filter")):
        with pytest.raises(MedgenInputError, match=why):
            medgen_config.validate(medgen_config.deep_update(
                base, {"anomaly": {"evaluation": {"median_filter": bad}}}))


def _synthesis(**section):
    return {"tasks": ["synthesis"], "synthesis": {"families": ["context_gan"], **section},
            "models": {"context_gan": {}}}


@pytest.mark.parametrize("unet, match", [
    ({"patch_size": 60},
     r"'synthesis.evaluation.unet.patch_size' is 60, but the UNet of 4 levels \(channels "
     r"\[16, 32, 64, 128\]\) halves its input 3 times: expected a multiple of 8 of at least 16, "
     r"e.g. 56"),
    ({"patch_size": 62}, r"patch_size' is 62, .* a multiple of 8 of at least 16, e.g. 64"),
    ({"patch_size": 20, "channels": [8, 16, 32, 64, 128]},
     r"'synthesis.evaluation.unet.patch_size' is 20.* a multiple of 16 of at least 32, e.g. 32"),
    ({"patch_size": 8}, r"patch_size' is 8, .* expected a multiple of 8 of at least 16, e.g. 16"),
    ({"channels": [16]},
     r"'synthesis.evaluation.unet.channels' is \[16\] \(1 level\(s\)\); expected 2 to 6 widths"),
    ({"channels": [4] * 7},
     r"'synthesis.evaluation.unet.channels' is .* \(7 level\(s\)\); expected 2 to 6 widths"),
])
def test_unet_baseline_sizes_the_unet_cannot_run_are_refused(unet, match):
    with pytest.raises(MedgenInputError, match=match):
        medgen_config.validate(_synthesis(evaluation={"baselines": ["unet_l1"], "unet": unet}))
    # without the baseline, its settings are unused
    medgen_config.validate(_synthesis(evaluation={"baselines": ["linear"], "unet": unet}))


def test_unet_baseline_sizes_that_divide_pass():
    for unet in ({"patch_size": 36, "channels": [8, 16, 32]}, {"patch_size": 16},
                 {"patch_size": 64, "channels": [2] * 6}):
        medgen_config.validate(_synthesis(evaluation={"baselines": ["unet_l1"], "unet": unet}))


def test_synthesis_without_a_family_is_refused():
    config = _synthesis(families=[])
    with pytest.raises(MedgenInputError, match=r"config key 'synthesis.families' is empty, "
                       r"but 'synthesis' is in tasks: .* plan nothing"):
        medgen_config.validate(config)
    # apply mode trains nothing: the model comes from apply.model
    medgen_config.validate({**config, "apply": {"activate": True}})
    # a task that is not in tasks plans nothing, whatever its families
    medgen_config.validate({**config, "tasks": []})
    medgen_config.validate(_synthesis())


@pytest.mark.parametrize("key, value", [("ct_window", [3071, -1024]), ("ct_window", [0, 0]),
                                        ("ct_hu_range", [4000, -1100])])
def test_ct_ranges_must_run_from_low_to_high(key, value):
    with pytest.raises(MedgenInputError, match=re.escape(
            f"config key 'synthesis.{key}' is {value}; expected [low, high] Hounsfield units "
            "with low < high")):
        medgen_config.validate(_synthesis(**{key: value}))


def test_mr_to_ct_without_the_ct_window_is_a_warning(caplog):
    config = _synthesis()
    config["models"]["context_gan"]["preset"] = "mr_to_ct"
    with caplog.at_level(logging.WARNING, logger="medgen.config"):
        medgen_config.validate(config)  # valid: a warning, not an error
    assert "'mr_to_ct' but synthesis.target_normalisation is None" in caplog.text
    assert "target_normalisation: ct_window and synthesis.target_is_ct: true" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="medgen.config"):
        medgen_config.validate({**config, "synthesis": {
            **config["synthesis"], "target_normalisation": "ct_window", "target_is_ct": True}})
    assert caplog.text == ""


def _default_config():
    return medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)


@pytest.mark.parametrize("old, message", [
    ({"imaging": {"kind": "volumes"}}, "config key 'imaging' is now 'anomaly' "),
    ({"evaluation": {"knn_k": 5}},
     "config key 'evaluation' is now 'expression.evaluation' "),
    ({"expression": {"activate": False}},
     "config key 'expression.activate' is gone: what runs is chosen by lists; list the task "
     "in 'tasks' (e.g. tasks: [expression]"),
    ({"anomaly": {"activate": True}},
     "config key 'anomaly.activate' is gone: what runs is chosen by lists; list the task in "
     "'tasks' (e.g. tasks: [anomaly]"),
    ({"expression_inference": {"activate": True}},
     "config key 'expression_inference.activate' is gone: what runs is chosen by lists; "
     "list the task in 'tasks' (e.g. tasks: [expression_inference]"),
    ({"synthesis": {"activate": False}},
     "config key 'synthesis.activate' is gone: what runs is chosen by lists; list the task "
     "in 'tasks' (e.g. tasks: [synthesis]"),
    ({"models": {"tybalt": {"activate": True}}},
     "config key 'models.tybalt.activate' is gone: what runs is chosen by lists; list the "
     "family in 'expression.families' (and its task in 'tasks')"),
    ({"models": {"fanogan": {"activate": False, "preset": "default"}}},
     "config key 'models.fanogan.activate' is gone: what runs is chosen by lists; list the "
     "family in 'anomaly.families' (and its task in 'tasks')"),
], ids=["imaging", "evaluation", "expression.activate", "anomaly.activate",
        "expression_inference.activate", "synthesis.activate", "models.tybalt.activate",
        "models.fanogan.activate"])
def test_a_config_of_the_old_shape_names_the_new_key(old, message, tmp_path):
    # alone, on the default config, and from a file as --configfile layers it
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    for attempt in (lambda: medgen_config.validate(old),
                    lambda: medgen_config.validate(
                        medgen_config.deep_update(_default_config(), old)),
                    lambda: medgen_config.load(path)):
        with pytest.raises(MedgenInputError) as err:
            attempt()
        assert str(err.value).startswith(message), str(err.value)
        assert "\n" not in str(err.value)  # one message


def test_the_activate_keys_that_remain_validate():
    # apply mode and the synthetic anomalies keep their switches
    resolved = medgen_config.validate(medgen_config.deep_update(_default_config(), {
        "apply": {"activate": True, "model": "model.pt"},
        "anomaly": {"synthetic_anomalies": {"activate": True}}}))
    assert resolved["apply"]["activate"] is True
    assert resolved["anomaly"]["synthetic_anomalies"]["activate"] is True


@pytest.mark.parametrize("override, key, bad, choices", [
    ({"tasks": ["imaginary"]}, "tasks[0]", "imaginary", list(registry.TASKS)),
    ({"tasks": ["expression", "imaging"]}, "tasks[1]", "imaging", list(registry.TASKS)),
    ({"anomaly": {"families": ["tybalt"]}}, "anomaly.families[0]", "tybalt",
     registry.names("anomaly", baselines=False)),
    # a baseline is asked for in the task's evaluation settings, never in families
    ({"anomaly": {"families": ["convae"]}}, "anomaly.families[0]", "convae",
     registry.names("anomaly", baselines=False)),
    ({"expression": {"families": ["fanogan"]}}, "expression.families[0]", "fanogan",
     registry.names("expression", baselines=False)),
    ({"expression_inference": {"families": ["ggan", "context_gan"]}},
     "expression_inference.families[1]", "context_gan",
     registry.names("expression_inference", baselines=False)),
    ({"synthesis": {"families": ["dgex"]}}, "synthesis.families[0]", "dgex",
     registry.names("synthesis", baselines=False)),
])
def test_unknown_tasks_and_families_name_the_key_and_the_choices(override, key, bad, choices):
    assert choices and bad not in choices
    with pytest.raises(MedgenInputError) as err:
        medgen_config.validate(medgen_config.deep_update(_default_config(), override))
    assert str(err.value) == (f"config key '{key}' is {bad!r}; expected one of: "
                              f"{', '.join(choices)}")


def test_tasks_and_families_lists_replace_the_defaults():
    base = _default_config()
    merged = medgen_config.deep_update(base, {"tasks": ["synthesis"],
                                              "anomaly": {"families": ["anogan"]}})
    assert merged["tasks"] == ["synthesis"]
    resolved = medgen_config.validate(merged)
    assert resolved["tasks"] == ["synthesis"]
    assert resolved["anomaly"]["families"] == ["anogan"]
    assert base["tasks"] == ["expression", "anomaly"]  # the default config untouched


# keys whose value names the demo's data (where the default config gets them), not a setting
DATA_SOURCE_KEYS = {"tasks", "expression.source", "expression.syng_bts.tables", "anomaly.kind"}
_NO_DEFAULT = object()


def _values_at_their_default(config, schema, path=""):
    for key, value in config.items():
        where = f"{path}{key}"
        sub = schema.get("properties", {}).get(key)
        assert sub is not None, f"{where} is not in the schema"
        if value == sub.get("default", _NO_DEFAULT):
            yield where
        elif isinstance(value, dict) and "properties" in sub:
            yield from _values_at_their_default(value, sub, f"{where}.")


def test_the_default_config_holds_only_what_differs_from_the_defaults():
    config = _default_config()
    at_default = list(_values_at_their_default(config, medgen_config.load_schema()))
    assert set(at_default) <= DATA_SOURCE_KEYS, sorted(set(at_default) - DATA_SOURCE_KEYS)
    # the walk does look at the nested keys: the data sources equal to their defaults
    assert {"expression.source", "anomaly.kind"} <= set(at_default)
    # a family's params override its preset: none repeats the preset's value
    for family, entry in config.get("models", {}).items():
        preset = registry.presets(family)[entry.get("preset", "default")]
        same = {k: v for k, v in entry.get("params", {}).items() if preset.get(k) == v}
        assert same == {}, f"models.{family}.params repeat the preset: {same}"
