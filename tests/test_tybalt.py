"""Tybalt: presets, module shapes, training (smoke, resume, determinism), model files."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch

from medgen.checkpoint import load as load_checkpoint
from medgen.errors import MedgenInputError
from medgen.models.tybalt import PRESETS
from medgen.models.tybalt.module import TybaltVAE
from medgen.models.tybalt.plan import TybaltPlan, kl_weight
from medgen.registry import resolve_hparams
from medgen.tasks.expression.evaluate import load_model
from medgen.train import train_model

TRAINING = {
    "accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": 1,
    "num_threads": 1, "progress_bar": False,
}
SMALL = {"latent_dim": 4, "hidden_dim": 8, "batch_size": 16}


pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints


def _hparams(preset: str = "default", **params) -> dict:
    return resolve_hparams("tybalt", preset, {**SMALL, **params})


def _train(h5ad, out, epochs=1, seed=0, preset="default", **params):
    return train_model("tybalt", h5ad, _hparams(preset, **params),
                       {**TRAINING, "max_epochs": epochs}, seed, out)


# -- presets and module ----------------------------------------------------------------------
# The shipped presets, written out: a change to a preset must change this test too.
DEFAULT_HPARAMS = {
    "latent_dim": 100, "hidden_layers": 0, "hidden_dim": 300,
    "mean_activation": "linear", "logvar_activation": "linear", "batch_norm": False,
    "reconstruction": "bce", "beta": 0.01, "kappa": 1.0,
    "lr": 0.001, "batch_size": 50, "max_epochs": 100, "condition_on": None,
}
PAPER_HPARAMS = {
    "latent_dim": 100, "hidden_layers": 0, "hidden_dim": 300,
    "mean_activation": "relu", "logvar_activation": "relu", "batch_norm": True,
    "reconstruction": "bce", "beta": 1.0, "kappa": 1.0,
    "lr": 0.0005, "batch_size": 50, "max_epochs": 50, "condition_on": None,
}


def test_presets_resolve_with_plain_values():
    assert set(PRESETS) == {"default", "paper"}
    for name, expected in (("default", DEFAULT_HPARAMS), ("paper", PAPER_HPARAMS)):
        hp = resolve_hparams("tybalt", name)
        assert hp == expected, name
        assert all(v is None or type(v) in (int, float, bool, str) for v in hp.values())
        # type() too: 0.01 == 0 is False, but 1 == 1.0 and False == 0 would pass a bare ==
        assert {k: type(v) for k, v in hp.items()} == {k: type(v) for k, v in expected.items()}


def test_override_changes_exactly_that_key():
    overrides = {"latent_dim": 8, "beta": 1, "mean_activation": "relu", "condition_on": "tissue"}
    for key, value in overrides.items():
        hp = resolve_hparams("tybalt", "default", {key: value})
        assert hp[key] == value
        assert {k: v for k, v in hp.items() if k != key} == {
            k: v for k, v in DEFAULT_HPARAMS.items() if k != key
        }
    # Resolving must not mutate the shipped preset.
    assert resolve_hparams("tybalt", "default") == DEFAULT_HPARAMS


def test_override_type_checked():
    with pytest.raises(MedgenInputError, match="hidden_layers"):
        resolve_hparams("tybalt", "default", {"hidden_layers": "two"})
    with pytest.raises(MedgenInputError, match="valid keys"):
        resolve_hparams("tybalt", "default", {"hidden_dims": [100]})


def _plan(preset):
    return TybaltPlan(n_genes=20, n_conditions=0, hparams=resolve_hparams("tybalt", preset))


def test_paper_has_relu_on_logvar_default_linear():
    paper, default = _plan("paper").module, _plan("default").module
    assert isinstance(paper.logvar_head[-1], torch.nn.ReLU)
    assert isinstance(paper.logvar_head[1], torch.nn.BatchNorm1d)
    assert isinstance(default.logvar_head[-1], torch.nn.Linear)
    assert isinstance(default.mean_head[-1], torch.nn.Linear)
    x = torch.rand(8, 20)
    _, logvar = paper.encode(x)
    assert (logvar >= 0).all()


def test_glorot_init_and_zero_bias():
    layer = TybaltVAE(n_genes=500, latent_dim=100).decoder_out
    bound = (6 / (500 + 100)) ** 0.5
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    assert torch.all(layer.bias == 0)


@pytest.mark.parametrize("hidden_layers", [0, 1, 2])
@pytest.mark.parametrize("n_conditions", [0, 3])
def test_shapes_and_loss_terms(hidden_layers, n_conditions):
    vae = TybaltVAE(n_genes=20, latent_dim=5, hidden_layers=hidden_layers, hidden_dim=7,
                    n_conditions=n_conditions)
    x, c = torch.rand(6, 20), torch.eye(3)[[0, 1, 2, 0, 1, 2]][:, :n_conditions]
    mu, logvar = vae.encode(x, c)
    assert mu.shape == logvar.shape == (6, 5)
    assert vae.decode(mu, c).shape == (6, 20)
    terms = vae.loss(x, c, kl_weight=0.5)
    assert torch.allclose(terms.total, terms.reconstruction + 0.5 * terms.kl)
    assert vae.gene_weights().shape == (5, 20)


def test_kl_warmup():
    assert [kl_weight(e, 1.0, 1.0) for e in range(3)] == [0.0, 1.0, 1.0]
    assert [kl_weight(e, 4.0, 0.5) for e in range(4)] == [0.0, 2.0, 4.0, 4.0]


def test_bce_summed_over_genes():
    vae = TybaltVAE(n_genes=10, latent_dim=2)
    x = torch.rand(4, 10)
    torch.manual_seed(0)
    terms = vae.loss(x)
    torch.manual_seed(0)
    logits, _, _ = vae(x)
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), x) * 10
    assert torch.allclose(terms.reconstruction, expected, rtol=1e-4)


# -- training -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "preset,params",
    [
        ("paper", {}),
        ("default", {}),
        ("default", {"hidden_layers": 1}),
        ("default", {"hidden_layers": 2, "beta": 4.0}),
        ("default", {"condition_on": "cancer_type"}),
        ("paper", {"hidden_layers": 1, "condition_on": "tumor_normal"}),
    ],
)
def test_one_epoch_smoke(expression_h5ad, tmp_path, preset, params):
    path = _train(expression_h5ad, tmp_path, preset=preset, **params)
    saved = load_checkpoint(path)
    # the fixture's genes in their order, and the categories of the conditioning column
    assert saved.family == "tybalt"
    assert saved.data["genes"] == [f"gene{j}" for j in range(24)]
    categories = {None: [], "cancer_type": ["BRCA", "PRAD"], "tumor_normal": ["normal", "tumor"]}
    assert saved.data["condition_categories"] == categories[params.get("condition_on")]
    # the trained networks (not the hyperparameters this test passed, which the file only
    # echoes) take the condition code and map 24 genes to 4 latent nodes and back
    module, _ = load_model(path, genes=saved.data["genes"])
    n_codes = len(categories[params.get("condition_on")])
    x, c = torch.rand(6, 24), torch.eye(2)[[0, 1, 0, 1, 0, 1]][:, :n_codes]
    with torch.no_grad():
        mu, logvar = module.encode(x, c)
        assert mu.shape == logvar.shape == (6, 4)
        decoded = module.decode(mu, c)
        assert decoded.shape == (6, 24) and ((decoded > 0) & (decoded < 1)).all()
        if n_codes:  # the other category's code changes the decoded profile
            assert not torch.allclose(decoded, module.decode(mu, 1 - c))
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert {"train_total", "val_total", "train_kl", "val_reconstruction"} <= set(metrics)


def test_resume_continues_from_last_checkpoint(expression_h5ad, tmp_path):
    _train(expression_h5ad, tmp_path, epochs=2)
    before = pd.read_csv(tmp_path / "metrics.csv")
    _train(expression_h5ad, tmp_path, epochs=3)
    after = pd.read_csv(tmp_path / "metrics.csv")
    # Epochs 0-1 kept exactly (not retrained), then only epoch 2 was added.
    assert sorted(after["epoch"].unique()) == [0, 1, 2]
    assert after["train_total"].notna().sum() == 3
    old = before.dropna(subset=["train_total"]).set_index("epoch")["train_total"]
    new = after.dropna(subset=["train_total"]).set_index("epoch")["train_total"]
    assert new.loc[[0, 1]].tolist() == pytest.approx(old.tolist())
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 2


def test_training_and_resuming_do_not_warn_about_our_own_checkpoint_files(
        expression_h5ad, tmp_path):
    # signature.json sits in checkpoints/ before Lightning looks, and a resume keeps the epochs
    # already logged: neither of Lightning's "not empty" warnings means anything here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(expression_h5ad, tmp_path, epochs=1)
        _train(expression_h5ad, tmp_path, epochs=2)
    assert not [w for w in caught if "not empty" in str(w.message)]


def test_resume_equals_uninterrupted(expression_h5ad, tmp_path):
    _train(expression_h5ad, tmp_path / "a", epochs=1)
    a = load_checkpoint(_train(expression_h5ad, tmp_path / "a", epochs=2)).state["vae"]
    b = load_checkpoint(_train(expression_h5ad, tmp_path / "b", epochs=2)).state["vae"]
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_same_seed_identical_weights(expression_h5ad, tmp_path):
    a = load_checkpoint(_train(expression_h5ad, tmp_path / "a", seed=3)).state["vae"]
    b = load_checkpoint(_train(expression_h5ad, tmp_path / "b", seed=3)).state["vae"]
    c = load_checkpoint(_train(expression_h5ad, tmp_path / "c", seed=4)).state["vae"]
    for key, value in a.items():
        assert torch.equal(value, b[key]), key
    assert not torch.equal(a["decoder_out.weight"], c["decoder_out.weight"])


def test_wrong_family_or_genes_refused(expression_h5ad, tmp_path):
    path = _train(expression_h5ad, tmp_path)
    payload = torch.load(path, weights_only=True)
    with pytest.raises(MedgenInputError, match="24 genes"):
        load_model(path, genes=payload["data"]["genes"][::-1])
    other = tmp_path / "other.pt"
    torch.save({**payload, "family": "ggan"}, other)
    with pytest.raises(MedgenInputError, match="family 'ggan'; expected 'tybalt'"):
        load_model(other)
    with pytest.raises(MedgenInputError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_bad_input_refused(tmp_path):
    from tests.conftest import make_expression

    adata = make_expression()
    adata.X = adata.X * 3
    path = tmp_path / "bad.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(MedgenInputError, match=r"\[0, 1\]"):
        _train(str(path), tmp_path / "out")
    adata = make_expression()
    del adata.obs["split"]
    adata.write_h5ad(path)
    with pytest.raises(MedgenInputError, match="split"):
        _train(str(path), tmp_path / "out")


def test_condition_on_unknown_column(expression_h5ad, tmp_path):
    with pytest.raises(MedgenInputError, match="condition_on"):
        _train(expression_h5ad, tmp_path, condition_on="sex")
