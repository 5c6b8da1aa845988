"""The contract every registered family keeps (parametrised over medgen.registry): presets
that validate, one epoch on a tiny synthetic fixture, a model.pt that loads back for
inference, refusal of another family's or other data's checkpoint, and a resume signature
that covers the training data."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from medgen import checkpoint, registry
from medgen import config as medgen_config
from medgen.atomic import save_npz
from medgen.errors import MedgenInputError
from medgen.models.expression_inference import load as load_inference_model
from medgen.tasks.anomaly.scorers import load_scorer
from medgen.tasks.expression.evaluate import load_model
from medgen.tasks.expression_inference.prepare import read_expression_inference_data
from medgen.train import train_model
from tests.conftest import make_expression, make_inference_data
from tests.helpers.sequence_data import prepared_measurements
from tests.helpers.synthesis_data import prepared_folder

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}
# Size keys shrunk wherever a preset has them, so that a new family is tiny here too.
TINY = {"latent_dim": 4, "hidden_dim": 8, "batch_size": 16, "channels_base": 4,
        "generator_channels": 4, "discriminator_channels": 4, "bottleneck": 4, "n_critic": 2,
        "score_steps": 3, "score_batch_size": 16, "generator_hidden": [8],
        "discriminator_hidden": [8], "hidden": [8], "samples_per_volume": 4, "channels": 4,
        "n_blocks": 1, "filters": 4}


pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints


def tiny_hparams(family: str) -> dict:
    preset = registry.presets(family)["default"]
    hp = {**preset, **{k: v for k, v in TINY.items() if k in preset}}
    return {k: (1 if k.endswith("epochs") else v) for k, v in hp.items()}


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    """One tiny training input per task, and a variant with other content."""
    root = tmp_path_factory.mktemp("tasks")
    adata = make_expression(n=60, n_genes=12)
    adata.write_h5ad(root / "expression.h5ad")
    other = make_expression(n=60, n_genes=12, seed=1)
    other.write_h5ad(root / "expression_other.h5ad")
    for name, seed in (("train.npz", 0), ("train_other.npz", 1)):
        images = np.random.default_rng(seed).random((32, 1, 16, 16)).astype(np.float32)
        save_npz(root / name, {"images": images, "y": np.zeros(32, np.int8)})
    # what prepare_images records beside the arrays: the modalities in channel order
    (root / "provenance.json").write_text('{"config": {"anomaly": {"modalities": ["flair"]}}}')
    for name, seed in (("inference.h5ad", 0), ("inference_other.h5ad", 1)):
        make_inference_data(root / name, seed)
    return {"expression": (root / "expression.h5ad", root / "expression_other.h5ad"),
            "anomaly": (root / "train.npz", root / "train_other.npz"),
            "expression_inference": (root / "inference.h5ad", root / "inference_other.h5ad"),
            # prepared synthesis folders (paired synthetic volumes)
            "synthesis": (prepared_folder(root / "synthesis", seed=0),
                          prepared_folder(root / "synthesis_other", seed=1)),
            # sequences with measurements: dna_gan trains on the sequences alone
            "sequence_design": (prepared_measurements(root / "sequence", seed=0),
                                prepared_measurements(root / "sequence_other", seed=1))}


def load_for_task(task: str, path):
    """The trained model through the task's own evaluation entry point."""
    if task == "expression":
        return load_model(path)[0]
    if task == "anomaly":
        return load_scorer(path)
    if task == "expression_inference":
        return load_inference_model(path)
    if task == "synthesis":
        from medgen.tasks.synthesis.inference import load

        return load(path)
    if task == "sequence_design":
        from medgen.tasks.sequence_design.inference import load

        return load(path)
    raise AssertionError(f"no contract check written for task {task!r}")


def infer(task: str, model, data_path) -> np.ndarray:
    if task == "expression":
        from medgen.tasks.expression.loaders import read_expression

        x = torch.from_numpy(read_expression(data_path).x)
        with torch.no_grad():
            mu, _ = model.encode(x, torch.zeros(len(x), 0))
        return mu.numpy()
    if task == "expression_inference":
        x, _, _, _ = read_expression_inference_data(data_path)
        return model.predict(model.align(x))
    if task == "synthesis":
        from medgen.tasks.synthesis.loaders import read_volumes

        _, volumes = read_volumes(data_path, "train")
        return model.predict(volumes[0]["source"], volumes[0]["mask"][0], window=32)
    if task == "sequence_design":
        if hasattr(model, "sample"):  # a generator: (n, L, 4) probabilities
            return model.sample(8, seed=0)
        return model.predict(np.load(data_path)["onehot"])
    images = np.load(data_path)["images"]
    return model.score(images).score


@pytest.mark.parametrize("family", registry.names())
def test_presets_validate_against_the_schema(family):
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    for preset in registry.presets(family):
        if registry.get(family).baseline:  # configured through its task's settings
            # the preset's keys, each of its type, with valid counts and rates (a dict
            # built from the preset is never empty: a truthiness check could not fail)
            hp = registry.family_hparams(family, medgen_config.validate(base))
            expected = registry.presets(family)[preset]
            assert {k: type(v) for k, v in hp.items()} == {
                k: type(v) for k, v in expected.items()}
            registry.get(family).check_positive(hp, f"models.{family}.params")
            continue
        resolved = medgen_config.validate(medgen_config.deep_update(
            base, {"models": {family: {"preset": preset}}}))
        assert resolved["models"][family]["preset"] == preset
        hp = registry.resolve_hparams(family, preset)
        plain = (int, float, str, bool, type(None))
        assert all(isinstance(v, plain) or (isinstance(v, list)
                                            and all(isinstance(i, plain) for i in v))
                   for v in hp.values())


def test_the_anomaly_baseline_is_configured_in_anomaly_evaluation():
    base = medgen_config.load_yaml(medgen_config.DEFAULT_CONFIG_PATH)
    resolved = medgen_config.validate(medgen_config.deep_update(
        base, {"anomaly": {"evaluation": {"convae_epochs": 7, "convae_bottleneck": 3}}}))
    hp = registry.family_hparams("convae", resolved)
    assert (hp["max_epochs"], hp["bottleneck"]) == (7, 3)
    assert "convae" not in resolved["models"]  # never under models


# preset keys that are counts, sizes or rates (never 0): a new family's must be declared too
POSITIVE_NAME = re.compile(r"(^|_)(epochs|batch_size|lr|latent_dim|channels|channels_base|"
                           r"hidden|hidden_dim|n_critic|samples_per_volume|bottleneck|"
                           r"score_steps)$")


@pytest.mark.parametrize("family", registry.names())
def test_counts_and_rates_are_declared_positive(family):
    spec = registry.get(family)
    assert {s.epochs_key for s in spec.stages} <= set(spec.positive_keys)
    for hparams in spec.presets.values():
        named = {k for k in hparams if POSITIVE_NAME.search(k)}
        assert named <= set(spec.positive_keys), named - set(spec.positive_keys)


@pytest.mark.parametrize("family", registry.names())
def test_non_positive_counts_and_rates_are_refused_naming_the_key(family):
    spec = registry.get(family)
    preset = next(iter(spec.presets))
    for name in spec.positive_keys:
        kind = type(spec.presets[preset][name])
        bads, expected = {list: ([[4, 0], [-1], [2.5]], "a list of integers >= 1"),
                          float: ([0.0, -0.001, 0, float("inf")], "a finite number > 0")}.get(
            kind, ([0, -1], "an integer >= 1"))
        for bad in bads:
            match = re.escape(f"config key 'models.{family}.params.{name}' is {bad!r}; "
                              f"expected {expected}")
            if spec.baseline:  # configured through anomaly.evaluation: the spec's check
                with pytest.raises(MedgenInputError, match=match):
                    spec.check_positive({**spec.presets[preset], name: bad},
                                        f"models.{family}.params")
                continue
            with pytest.raises(MedgenInputError, match=match):
                medgen_config.validate(
                    {"models": {family: {"preset": preset, "params": {name: bad}}}})


@pytest.mark.parametrize("family, params", [
    ("tybalt", {"hidden_layers": 0, "beta": 0.0, "kappa": 0.0}),  # no hidden layer, no KL
    ("ggan", {"generator_hidden": [], "discriminator_hidden": [], "noise_sd": 0.0}),
    ("dgex", {"hidden": [], "momentum": 0.0, "dropout": 0.0}),  # a linear model
    ("fanogan", {"kappa": 0.0, "beta1": 0.0}),
    ("dna_gan", {"gp_weight": 0.0, "beta1": 0.0}),
    ("anogan", {"score_early_stop_tol": 0.0, "score_lambda": 0.0}),
])
def test_zero_passes_where_it_means_none(family, params):
    assert registry.resolve_hparams(family, "default", params).items() >= params.items()


def test_a_positive_key_missing_from_a_preset_is_a_programming_error():
    from medgen.family import FamilySpec, Stage

    # each stage's epochs key is positive without being named
    with pytest.raises(ValueError, match="positive key 'max_epochs' is None in preset 'a'"):
        FamilySpec(name="x", task="anomaly", presets={"a": {"lr": 0.1}},
                   stages=(Stage("", "m:Plan"),), load="m:load", description="x",
                   positive=("lr",))


@pytest.mark.parametrize("family", registry.names())
def test_one_epoch_save_load_and_refusals(family, task_data, tmp_path):
    spec = registry.get(family)
    data, _ = task_data[spec.task]
    path = train_model(family, data, tiny_hparams(family), TRAINING, 0, tmp_path / family)
    saved = checkpoint.load(path, family=family)
    assert saved.format == checkpoint.FORMAT_VERSION and saved.seed == 0
    assert set(saved.provenance["training"]) >= {"versions", "git_revision", "inputs"}
    # every stage left its networks in the file, and inference works on the training data
    assert saved.state and all(saved.state.values())
    output = infer(spec.task, load_for_task(spec.task, path), data)
    assert np.isfinite(output).all() and len(output) > 0

    others = [f for f in registry.names() if f != family]
    with pytest.raises(MedgenInputError, match=f"family '{family}'; expected '{others[0]}'"):
        checkpoint.load(path, family=others[0])
    key = {"expression": "genes", "expression_inference": "landmarks",
           "sequence_design": "length"}.get(spec.task, "channels")
    wrong = saved.data[key][::-1] if isinstance(saved.data[key], list) else saved.data[key] + 2
    with pytest.raises(MedgenInputError, match=f"{path}.*{key}"):
        checkpoint.load(path, data={key: wrong})
    if spec.task == "anomaly":  # the fixture's prepared folder names its modalities
        assert saved.data["modalities"] == ["flair"]
        other = r"modalities.*missing: \['flair'\], first extra: \['t1'\]"
        with pytest.raises(MedgenInputError, match=other):
            load_scorer(path, data={"modalities": ["t1"]})
    # a model of another task is refused by this task's entry point, naming the family
    other_task = next((f for f in others if registry.get(f).task != spec.task), None)
    if other_task is not None:
        other_path = tmp_path / "other.pt"
        torch.save({**torch.load(path, weights_only=True), "family": other_task}, other_path)
        with pytest.raises(MedgenInputError, match=f"family '{other_task}'"):
            load_for_task(spec.task, other_path)


@pytest.mark.parametrize("family", registry.names())
def test_changed_training_data_start_training_afresh(family, task_data, tmp_path):
    spec = registry.get(family)
    data, other = task_data[spec.task]
    hp = tiny_hparams(family)
    out = tmp_path / family
    first = checkpoint.load(train_model(family, data, hp, TRAINING, 0, out)).state
    # same seed and settings, training data changed in place: the old last.ckpt must not
    # be resumed (it would return the first model's weights)
    data.rename(data.with_suffix(".bak"))
    other.rename(data)
    try:
        second = checkpoint.load(train_model(family, data, hp, TRAINING, 0, out)).state
    finally:
        data.rename(other)
        data.with_suffix(".bak").rename(data)
    fresh = checkpoint.load(train_model(family, other, hp, TRAINING, 0, tmp_path / "f")).state
    for name, weights in second.items():
        for key, value in weights.items():
            torch.testing.assert_close(value, fresh[name][key], msg=f"{name}.{key}")
    assert any(not torch.equal(second[n][k], v) for n in first for k, v in first[n].items()
               if v.is_floating_point()), "trained on other data, yet the same weights"


def test_model_files_of_another_format_say_which_format_they_are(task_data, tmp_path):
    # the anomaly families' files before format 2 carried no version at all; Tybalt's had 1
    path = train_model("convae", task_data["anomaly"][0], tiny_hparams("convae"), TRAINING, 0,
                       tmp_path)
    saved = checkpoint.load(path)
    unversioned = tmp_path / "unversioned.pt"
    torch.save({"family": "convae", "hparams": saved.hparams, "channels": 1, "image_size": 16,
                "seed": 0, "state": saved.state}, unversioned)
    with pytest.raises(MedgenInputError, match=r"unversioned\.pt is a convae model file in "
                       r"the anomaly families' unversioned format .*retrain"):
        checkpoint.load(unversioned, family="convae")
    tybalt_1 = tmp_path / "tybalt1.pt"
    torch.save({"format": 1, "family": "tybalt", "state_dict": {}, "genes": ["a"],
                "hparams": {}, "condition_on": None, "condition_categories": []}, tybalt_1)
    with pytest.raises(MedgenInputError, match="tybalt model file in Tybalt's format 1"):
        checkpoint.load(tybalt_1)
    future = tmp_path / "future.pt"
    torch.save({**torch.load(path, weights_only=True), checkpoint.FORMAT_KEY: 99}, future)
    with pytest.raises(MedgenInputError, match="checkpoint format 99"):
        checkpoint.load(future)
