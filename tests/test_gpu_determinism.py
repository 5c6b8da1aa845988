"""Every registered family trains on a GPU under ``training.deterministic: true``.

No GPU here: torch raises for an op without a deterministic CUDA kernel only on CUDA. So
(1) every network of every family and preset is walked for modules on torch's list of
those ops (``medgen.nn.deterministic``), (2) the shared image networks and context_gan's
are run forward and backward in 2D and 3D, and one epoch of every family is trained, with
each aten op recorded: none may be one whose CUDA kernel raises in deterministic mode,
(3) the deny-list is checked against torch's own list, and (4) ``training.deterministic``
reaches Lightning's Trainer and the schema refuses other values.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from medgen import checkpoint, registry
from medgen import config as medgen_config
from medgen.atomic import save_npz
from medgen.errors import MedgenInputError
from medgen.family import resolve
from medgen.nn import deterministic
from medgen.nn.dcgan import Discriminator, Generator
from medgen.nn.deterministic import (
    AdaptiveMean,
    BlockMean,
    nondeterministic_modules,
    raises_in_deterministic_cuda,
)
from medgen.nn.residual import ResCritic, ResGenerator
from medgen.train import deterministic_setting, make_trainer, train_model
from tests.conftest import make_expression, make_inference_data
from tests.helpers.sequence_data import prepared_measurements
from tests.helpers.synthesis_data import prepared_folder

pytestmark = pytest.mark.usefixtures("quiet_warnings", "torch_flags_restored")


@pytest.fixture
def torch_flags_restored():
    """Trainers here set torch's process-wide deterministic flags to other values: put the
    previous ones back for the tests that follow."""
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])

# the data sizes each task's training data reports (TrainingData.dims), small
DIMS = {"expression": {"n_genes": 12, "n_conditions": 2},
        "anomaly": {"channels": 1, "image_size": 16},
        "expression_inference": {"n_landmarks": 8, "n_targets": 6},
        "synthesis": {"channels": 1},  # patch_size: the preset's
        "sequence_design": {"length": 20}}

# aten ops whose CUDA kernel raises under torch.use_deterministic_algorithms(True) (its
# docstring's "will throw" list, as the ops autograd dispatches): backward passes ...
RAISING_BACKWARD = {
    "avg_pool3d_backward", "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward",
    "adaptive_max_pool2d_backward", "adaptive_max_pool3d_backward",
    "fractional_max_pool2d_backward", "fractional_max_pool3d_backward",
    "upsample_linear1d_backward", "upsample_bilinear2d_backward",
    "upsample_bicubic2d_backward", "upsample_trilinear3d_backward",
    "_upsample_bilinear2d_aa_backward", "_upsample_bicubic2d_aa_backward",
    "reflection_pad1d_backward", "reflection_pad2d_backward", "reflection_pad3d_backward",
    "grid_sampler_2d_backward", "grid_sampler_3d_backward", "_ctc_loss_backward",
}
# ... and ops that raise on CUDA whatever the grad (flagged when a tensor that requires
# grad goes in: the data pipeline's CPU-only statistics are not what goes to the GPU)
RAISING_ON_GRAPH = {"max_unpool2d", "max_unpool3d", "nll_loss2d_forward", "put", "put_",
                    "histc", "bincount", "cumsum", "cumsum_",
                    "median.dim", "nanmedian.dim"}  # the median with indices only


class RecordOps(TorchDispatchMode):
    """Collects the aten ops that would raise on CUDA in deterministic mode."""

    def __init__(self) -> None:
        super().__init__()
        self.raising: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._overloadpacket.__name__
        if name in RAISING_BACKWARD:
            self.raising.add(name)
        elif {name, f"{name}.{func._overloadname}"} & RAISING_ON_GRAPH and any(
                isinstance(a, torch.Tensor) and a.requires_grad
                for a in (*args, *(kwargs or {}).values())):
            self.raising.add(name)
        return func(*args, **(kwargs or {}))


def assert_trains_deterministically_on_cuda(network: nn.Module, what: str) -> None:
    offenders = [f"{name} ({type(module).__name__})"
                 for name, module in nondeterministic_modules(network)]
    assert not offenders, (
        f"{what}: modules whose CUDA backward raises under training.deterministic: true "
        f"(torch.use_deterministic_algorithms; use medgen.nn.deterministic's equivalents): "
        f"{', '.join(offenders)}")


def build_plans(family: str, preset: str) -> list[nn.Module]:
    """Each training stage's plan (LightningModule) of ``family``/``preset``, as train_model
    builds them: a later stage gets the state the earlier ones exported."""
    spec = registry.get(family)
    hp = registry.resolve_hparams(family, preset)
    dims = dict(DIMS[spec.task])
    if spec.task == "synthesis":
        dims["patch_size"] = hp["patch_size"]
    plans, state = [], {}
    for stage in spec.stages:
        plan = resolve(stage.plan).build(hp, dims, state)
        state.update(plan.export_state())
        plans.append(plan)
    return plans


# -- the check itself can fail -------------------------------------------------------------
def test_the_check_names_modules_whose_cuda_backward_raises():
    bad = nn.Sequential(nn.Conv3d(1, 2, 3), nn.MaxPool3d(2),
                        nn.Sequential(nn.AdaptiveAvgPool3d(2)),
                        nn.Upsample(scale_factor=2, mode="trilinear"))
    assert [name for name, _ in nondeterministic_modules(bad)] == ["2.0", "3"]
    with pytest.raises(AssertionError, match=r"bad net: .*2\.0 \(AdaptiveAvgPool3d\), "
                                             r"3 \(Upsample\)"):
        assert_trains_deterministically_on_cuda(bad, "bad net")
    for module, raises in [(nn.AvgPool3d(2), True), (nn.AvgPool2d(2), False),
                           (nn.ReflectionPad2d(1), True), (nn.ReplicationPad3d(1), False),
                           (nn.Upsample(scale_factor=2), False),  # nearest
                           (nn.UpsamplingBilinear2d(scale_factor=2), True),
                           (nn.EmbeddingBag(4, 2, mode="max"), True),
                           (nn.EmbeddingBag(4, 2, mode="sum"), False),
                           (nn.CrossEntropyLoss(), True), (BlockMean(), False),
                           (AdaptiveMean(2), False)]:
        assert raises_in_deterministic_cuda(module) is raises, module


def test_the_op_recorder_sees_a_raising_backward_and_a_raising_op_on_the_graph():
    net = nn.Sequential(nn.Conv3d(1, 2, 3), nn.AdaptiveAvgPool3d(2))
    with RecordOps() as ops:
        net(torch.randn(1, 1, 6, 6, 6)).sum().backward()
    assert ops.raising == {"_adaptive_avg_pool3d_backward"}
    x = torch.randn(5, requires_grad=True)
    with RecordOps() as ops:
        x.median(), x.detach().median(0), torch.randn(5).cumsum(0)  # no index, no grad
    assert not ops.raising
    with RecordOps() as ops:
        x.median(0), x.cumsum(0)
    assert ops.raising == {"median", "cumsum"}


def _torch_list(which: str) -> str:
    """The part of torch.use_deterministic_algorithms' docstring listing the ops that
    'throw' a RuntimeError or 'act' deterministically."""
    doc = " ".join(torch.use_deterministic_algorithms.__doc__.split())  # one line
    act = doc.index("will act deterministically when ``mode=True``")
    throw = doc.index("will throw a :class:`RuntimeError` when ``mode=True``")
    end = doc.index("In addition", throw)
    return doc[throw:end] if which == "throw" else doc[act:throw]


def test_the_deny_list_covers_torchs_list_of_raising_modules():
    named = set(re.findall(r":class:`torch\.nn\.(\w+)`", _torch_list("throw")))
    assert {"AvgPool3d", "AdaptiveAvgPool3d", "ReflectionPad3d"} <= named  # parsed
    listed = {cls.__name__ for cls in deterministic.RAISING_MODULES} | {"EmbeddingBag"}
    assert named <= listed, f"torch {torch.__version__} names more: {named - listed}"
    # the interpolation modes whose backward raises (nn.Upsample uses F.interpolate)
    throw = _torch_list("throw")
    modes = re.findall(r"- ``(\w+)``", throw[throw.index("interpolate"):])
    assert set(modes) == set(deterministic.RAISING_UPSAMPLING)


def test_max_pool_3d_has_a_deterministic_cuda_kernel_in_this_torch():
    # why context_gan's paper CNN keeps its max-pools: a torch where MaxPool3d raises
    # again fails here (and it then belongs in RAISING_MODULES)
    assert ":class:`torch.nn.MaxPool3d`" in _torch_list("act")
    assert ":class:`torch.nn.MaxPool3d`" not in _torch_list("throw")


# -- every family, every preset ------------------------------------------------------------
FAMILY_PRESETS = [(family, preset) for family in registry.names()
                  for preset in registry.presets(family)]


@pytest.mark.parametrize("family, preset", FAMILY_PRESETS)
def test_no_family_network_has_a_module_without_a_deterministic_cuda_kernel(family, preset):
    plans = build_plans(family, preset)
    assert sum(p.numel() for plan in plans for p in plan.parameters()) > 0
    for stage, plan in zip(registry.get(family).stages, plans, strict=True):
        assert_trains_deterministically_on_cuda(
            plan, f"family {family!r}, preset {preset!r}, stage {stage.name or 'the only'}")


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_shared_image_networks_backward_through_deterministic_ops(spatial_dims):
    """The anomaly families' networks (built 3D for volumes: geometry_of's spatial_dims)."""
    size, d = 8, spatial_dims
    networks = {"ResGenerator": ResGenerator(4, 1, size, 2, d),
                "ResCritic": ResCritic(1, size, 2, spatial_dims=d),
                "Generator transposed": Generator(4, 1, size, 2, d, "transposed"),
                "Generator nearest": Generator(4, 1, size, 2, d, "nearest"),
                "Discriminator": Discriminator(1, size, 2, 0.2, spatial_dims=d)}
    z, x = torch.randn(2, 4), torch.randn(2, 1, *[size] * d)
    for name, net in networks.items():
        assert_trains_deterministically_on_cuda(net, f"{name} ({d}D)")
        with RecordOps() as ops:
            out = net(z if name.startswith(("ResGen", "Generator")) else x)
            out = out[0] if isinstance(out, tuple) else out
            out.square().sum().backward()
        assert not ops.raising, f"{name} ({d}D) runs {sorted(ops.raising)}"


def test_residual_critic_3d_pools_as_avg_pool_3d_did():
    from medgen.nn.residual import halve

    assert isinstance(halve(3), BlockMean) and isinstance(halve(2), nn.AvgPool2d)
    x = torch.randn(2, 3, 6, 7, 8)
    torch.testing.assert_close(halve(3)(x), nn.AvgPool3d(2)(x))


@pytest.mark.parametrize("preset", list(registry.presets("context_gan")))
def test_context_gan_networks_backward_through_deterministic_ops(preset):
    from medgen.models.context_gan import output_side
    from medgen.models.context_gan.module import build_networks

    hp = registry.resolve_hparams("context_gan", preset)
    generator, discriminator = build_networks(hp, 2)
    source = torch.randn(2, 2, *[hp["patch_size"]] * 3)
    with RecordOps() as ops:
        fake = generator(source)
        assert fake.shape[2:] == (output_side(hp),) * 3
        discriminator(fake).sum().backward()
    assert not ops.raising, f"context_gan {preset!r} runs {sorted(ops.raising)}"


@pytest.mark.parametrize("side", [8, 11, 16, 32])
def test_the_paper_cnn_discriminator_pools_as_before(side):
    """AdaptiveMean replaced AdaptiveAvgPool3d in the paper's CNN: same values, same
    parameters (old checkpoints load), any patch side the config allows."""
    from medgen.models.context_gan.module import CNNDiscriminator

    torch.manual_seed(0)
    net = CNNDiscriminator(4)
    old = CNNDiscriminator(4)
    old.features[-2] = nn.AdaptiveAvgPool3d(2)  # what it was built with before
    old.load_state_dict(net.state_dict())
    y = torch.randn(3, 1, side, side, side)
    torch.testing.assert_close(net(y), old(y))
    for size_in in (1, 2, 3, 5):  # the adaptive average itself, also below its output
        x = torch.randn(2, 3, size_in, size_in + 1, size_in + 2)
        torch.testing.assert_close(AdaptiveMean(2)(x), nn.AdaptiveAvgPool3d(2)(x))


# -- one epoch of every family, every op recorded -----------------------------------------
TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False, "deterministic": True}
TINY = {"latent_dim": 4, "hidden_dim": 8, "batch_size": 16, "channels_base": 4,
        "generator_channels": 4, "discriminator_channels": 4, "bottleneck": 4, "n_critic": 2,
        "score_steps": 3, "score_batch_size": 16, "generator_hidden": [8],
        "discriminator_hidden": [8], "hidden": [8], "samples_per_volume": 4, "channels": 4,
        "n_blocks": 1, "filters": 4}


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    """One tiny training input per task (as tests/test_families.py builds them)."""
    root = tmp_path_factory.mktemp("tasks")
    make_expression(n=60, n_genes=12).write_h5ad(root / "expression.h5ad")
    images = np.random.default_rng(0).random((32, 1, 16, 16)).astype(np.float32)
    save_npz(root / "train.npz", {"images": images, "y": np.zeros(32, np.int8)})
    (root / "provenance.json").write_text('{"config": {"anomaly": {"modalities": ["flair"]}}}')
    make_inference_data(root / "inference.h5ad", 0)
    return {"expression": root / "expression.h5ad", "anomaly": root / "train.npz",
            "expression_inference": root / "inference.h5ad",
            "synthesis": prepared_folder(root / "synthesis", seed=0),
            "sequence_design": prepared_measurements(root / "sequence", seed=0)}


@pytest.mark.parametrize("family, preset", [(f, p) for f, p in FAMILY_PRESETS
                                            if p in ("default", "paper")])
def test_one_epoch_of_every_family_runs_no_op_that_raises_on_cuda(family, preset, task_data,
                                                                  tmp_path):
    spec = registry.get(family)
    preset_hp = registry.presets(family)[preset]
    hp = {**preset_hp, **{k: v for k, v in TINY.items() if k in preset_hp}}
    hp = {k: (1 if k.endswith("epochs") else v) for k, v in hp.items()}
    with RecordOps() as ops:
        path = train_model(family, task_data[spec.task], hp, TRAINING, 0, tmp_path / "true")
    assert not ops.raising, (
        f"family {family!r}, preset {preset!r}: one training epoch runs "
        f"{sorted(ops.raising)}, which raise on CUDA under training.deterministic: true")
    # on the CPU the setting changes no number (README, schema): the same weights with false
    other = train_model(family, task_data[spec.task], hp,
                        {**TRAINING, "deterministic": False}, 0, tmp_path / "false")
    state, other_state = checkpoint.load(path).state, checkpoint.load(other).state
    assert state.keys() == other_state.keys()
    for network, weights in state.items():
        for name, tensor in weights.items():
            assert torch.equal(tensor, other_state[network][name]), (family, network, name)


# -- training.deterministic ----------------------------------------------------------------
@pytest.mark.parametrize("value, enabled, warn_only",
                         [(True, True, False), ("warn", True, True), (False, False, False)])
def test_training_deterministic_reaches_the_trainer(value, enabled, warn_only, tmp_path):
    torch.use_deterministic_algorithms(not enabled, warn_only=not warn_only)  # the opposite
    make_trainer(tmp_path, {**TRAINING, "deterministic": value}, 1, 0)
    assert torch.are_deterministic_algorithms_enabled() is enabled
    assert torch.is_deterministic_algorithms_warn_only_enabled() is warn_only


def test_a_missing_setting_is_deterministic_and_a_bad_one_is_refused():
    assert deterministic_setting({}) is True  # settings stored before the key existed
    with pytest.raises(MedgenInputError, match="'training.deterministic' is 'yes'"):
        deterministic_setting({"deterministic": "yes"})


def test_the_schema_defaults_to_true_and_takes_warn_and_false():
    assert medgen_config.validate({})["training"]["deterministic"] is True
    for value in ("warn", False, True):
        resolved = medgen_config.validate({"training": {"deterministic": value}})
        assert resolved["training"]["deterministic"] == value


@pytest.mark.parametrize("bad", ["yes", 1, "Warn", None])
def test_the_schema_refuses_another_value_naming_the_key(bad):
    with pytest.raises(MedgenInputError, match=re.escape(
            f"config key 'training.deterministic' is {bad!r}; expected one of: "
            "true, warn, false")):
        medgen_config.validate({"training": {"deterministic": bad}})


def test_changing_the_setting_retrains():
    from medgen import planning

    for value in ("warn", False):
        config = medgen_config.validate({"training": {"deterministic": value}})
        assert planning.training_settings(config, "fanogan")["deterministic"] == value
    # the default leaves the params as they were before the key: nothing made then reruns
    settings = planning.training_settings(medgen_config.validate({}), "fanogan")
    assert "deterministic" not in settings
    assert deterministic_setting(settings) is True  # what training then does


def test_another_setting_trains_afresh_instead_of_resuming(task_data, tmp_path, caplog):
    hp = {**registry.presets("dgex")["default"], "hidden": [8], "batch_size": 16,
          "max_epochs": 1}
    data = task_data["expression_inference"]
    caplog.set_level(logging.INFO, logger="medgen")
    train_model("dgex", data, hp, TRAINING, 0, tmp_path)
    stale = "made with another configuration: starting afresh"
    caplog.clear()
    train_model("dgex", data, hp, TRAINING, 0, tmp_path)  # the same: resumed
    assert stale not in caplog.text and "resuming from" in caplog.text
    caplog.clear()
    train_model("dgex", data, hp, {**TRAINING, "deterministic": "warn"}, 0, tmp_path)
    assert stale in caplog.text
    assert "deterministic warn" in caplog.text  # the log states the setting
