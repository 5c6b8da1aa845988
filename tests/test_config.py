"""Config validation: defaults, schema completeness and one clear error per mistake."""

from __future__ import annotations

import logging
import re

import pytest

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
    del trimmed["evaluation"]
    assert medgen_config.validate(trimmed)["evaluation"]["knn_k"] == 5


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
                       match="imaging.evaluation.median_filter' is 2; expected 0.*odd"):
        medgen_config.validate(medgen_config.deep_update(
            base, {"imaging": {"evaluation": {"median_filter": 2}}}))
    for size in (0, 1, 5):
        medgen_config.validate(medgen_config.deep_update(
            base, {"imaging": {"evaluation": {"median_filter": size}}}))


def _synthesis(**section):
    return {"synthesis": {"activate": True, **section},
            "models": {"context_gan": {"activate": True}}}


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


def test_synthesis_without_an_activated_family_is_refused():
    config = _synthesis()
    config["models"]["context_gan"]["activate"] = False
    with pytest.raises(MedgenInputError, match=r"config key 'models.context_gan.activate' is "
                       r"false, but synthesis.activate is true: .* plan nothing"):
        medgen_config.validate(config)
    # apply mode trains nothing: the model comes from apply.model
    medgen_config.validate({**config, "apply": {"activate": True}})
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
