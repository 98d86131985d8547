"""Every registered model: pinned parameter counts, prunable layers, output layer, init, seeding, shapes.

Tests parametrized over MODELS run for any model added to the registry. ImageNet-size models are only
built on the meta device (shapes, no memory) except resnet18 and vgg11, which run one real forward.
"""

import inspect
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError, PruningMask
from lottery_ticket.models import MODELS, build_model, get_model_class, model_names

# (total parameters, prunable weights) at the default num_classes. ImageNet totals equal torchvision's
# reference models; the Conv-2/4/6 weight counts are Frankle & Carbin's (Conv-6 against its own table, see conv.py).
COUNTS = {
    "lenet300": (266_610, 266_200),
    "lenet5": (61_706, 61_470),
    "conv2": (4_301_642, 4_300_992),
    "conv4": (2_425_930, 2_425_024),
    "conv6": (2_262_602, 2_261_184),
    "vgg11": (132_863_336, 132_851_392),
    "vgg13": (133_047_848, 133_035_712),
    "vgg16": (138_357_544, 138_344_128),
    "vgg19": (143_667_240, 143_652_544),
    "resnet18": (11_689_512, 11_678_912),
    "resnet34": (21_797_672, 21_779_648),
    "resnet50": (25_557_032, 25_502_912),
    "resnet101": (44_549_160, 44_442_816),
    "cifar_vgg16": (14_728_266, 14_715_584),
    "cifar_vgg19": (20_040_522, 20_024_000),
    "cifar_resnet20": (272_474, 270_896),
    "cifar_resnet56": (855_770, 851_504),
    "mnist1d_mlp": (15_210, 15_000),
    "mnist1d_cnn": (28_298, 28_096),
}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def default_input_shape(name: str) -> tuple[int, ...]:
    return tuple(inspect.signature(get_model_class(name)).parameters["input_shape"].default)


# Real weights are built only for models whose inputs are at most CIFAR-sized; ImageNet ones stay on meta.
SMALL_MODELS = [n for n in MODELS if math.prod(default_input_shape(n)) <= 3 * 32 * 32]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Small convs on a CPU shared with other jobs run ~100x slower with 2 spinning OpenMP threads than with 1.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_BUILT: dict[str, nn.Module] = {}


def real(name: str) -> nn.Module:
    """One seed-0 build per model per session (forward tests use copies of the weights, never train them)."""
    if name not in _BUILT:
        _BUILT[name] = build_model(name, seed=0)
    return _BUILT[name]


def on_meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model_class(name)(**kwargs)


def execution_order(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of Linear/Conv weights in the order the forward pass uses them."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=name: order.append(f"{n}.weight"))
             for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return order


# ---- counts --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_total_and_prunable_counts_match_the_pinned_reference(name):
    assert name in COUNTS, f"pin {name}'s (total, prunable) counts in COUNTS and docs/models.md"
    model = on_meta(name)
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    prunable = sum(params[n].numel() for n in model.prunable_parameter_names())
    assert (total, prunable) == COUNTS[name]


@pytest.mark.parametrize("name", list(MODELS))
def test_docs_table_lists_the_measured_counts(name):
    row = next((line for line in DOCS.read_text().splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"docs/models.md has no row for {name}"
    total, prunable = COUNTS[name]
    assert f"{total:,}" in row and f"{prunable:,}" in row


# ---- prunable layers and the output layer -------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_prunable_names_are_exactly_the_linear_and_conv_weights(name):
    model = on_meta(name)
    names = model.prunable_parameter_names()
    modules = dict(model.named_modules())
    expected = [f"{n}.weight" for n, m in modules.items() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    assert names == expected and len(set(names)) == len(names)
    assert not any(n.endswith(".bias") for n in names)
    assert not any(isinstance(modules[n.rsplit(".", 1)[0]], nn.modules.batchnorm._BatchNorm) for n in names)


@pytest.mark.parametrize("name", list(MODELS))
def test_output_layer_is_prunable_and_the_last_layer_the_forward_pass_uses(name):
    model = on_meta(name, num_classes=7)
    x = torch.empty(2, *default_input_shape(name), device="meta")
    order = execution_order(model, x)
    assert model.output_layer_name in model.prunable_parameter_names()
    assert order[-1] == model.output_layer_name
    assert dict(model.named_parameters())[model.output_layer_name].shape[0] == 7


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_pruning_mask_covers_exactly_the_prunable_weights(name):
    model = real(name)
    mask = PruningMask(model)
    assert mask.names == model.prunable_parameter_names()
    assert mask.num_total == COUNTS[name][1]


# ---- shapes and forward passes ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_at_the_default_shape_gives_one_logit_per_class(name):
    model = on_meta(name, num_classes=7)
    out = model(torch.empty(3, *default_input_shape(name), device="meta"))
    assert out.shape == (3, 7)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_models_train_a_step_with_finite_logits_and_a_gradient_everywhere(name):
    model = build_model(name, seed=0)
    x = torch.randn(4, *default_input_shape(name), generator=torch.Generator().manual_seed(0))
    out = model.train()(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.arange(4)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", ["resnet18", "vgg11"])
def test_imagenet_models_run_a_real_forward_at_64x64(name):
    with torch.no_grad():
        out = real(name).eval()(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_imagenet_parameter_names_follow_torchvision():
    # Same names as torchvision's state dicts, so its checkpoints load without renaming.
    resnet, vgg = dict(on_meta("resnet50").named_parameters()), dict(on_meta("vgg16").named_parameters())
    assert {"conv1.weight", "layer2.0.downsample.0.weight", "layer4.2.bn3.bias", "fc.weight"} <= set(resnet)
    assert {"features.0.weight", "features.28.weight", "classifier.0.weight", "classifier.6.weight"} <= set(vgg)


def test_cifar_parameter_names_follow_open_lth():
    resnet, vgg = dict(on_meta("cifar_resnet20").named_parameters()), dict(on_meta("cifar_vgg19").named_parameters())
    assert {"conv.weight", "blocks.3.shortcut.0.weight", "blocks.8.conv2.weight", "fc.weight"} <= set(resnet)
    assert {"layers.0.conv.weight", "layers.0.bn.weight", "fc.weight"} <= set(vgg)


@pytest.mark.parametrize("name, shape", [("conv4", (1, 28, 28)), ("lenet300", (3, 32, 32)), ("lenet5", (3, 32, 32)),
                                         ("cifar_resnet20", (1, 28, 28)), ("cifar_vgg16", (1, 28, 28)),
                                         ("mnist1d_mlp", (1, 40)), ("resnet18", (3, 32, 32)), ("vgg19", (3, 32, 32))])
def test_one_class_serves_other_datasets_shapes(name, shape):
    model = on_meta(name, input_shape=shape, num_classes=100)
    assert model(torch.empty(2, *shape, device="meta")).shape == (2, 100)


def test_conv_first_fc_layer_follows_the_input_size():
    # 28x28 after two pools is 7x7: fc1 sees 128*7*7 features, not CIFAR's 128*8*8.
    assert on_meta("conv4", input_shape=(1, 28, 28)).fc1.weight.shape == (256, 128 * 7 * 7)


# ---- init and seeding ---------------------------------------------------------------------------------
def _expected_std(scheme: str, weight: torch.Tensor) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return math.sqrt(2.0 / (fan_in + fan_out)) if scheme == "glorot" else math.sqrt(2.0 / fan_in)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_init_matches_the_declared_scheme(name):
    model = real(name)
    expected_scheme = "glorot" if name.startswith(("lenet", "conv", "mnist1d_mlp")) else "kaiming"
    assert model.init_scheme == expected_scheme
    params = dict(model.named_parameters())
    for n in model.prunable_parameter_names():
        w = params[n].detach()
        if w.numel() >= 500:  # the std of fewer samples is too noisy to pin
            assert abs(w.std().item() / _expected_std(expected_scheme, w) - 1) < 0.15, n
        assert abs(w.mean().item()) < 4 * _expected_std(expected_scheme, w) / math.sqrt(w.numel()), n
    for mod_name, m in model.named_modules():
        if getattr(m, "bias", None) is not None:
            assert not m.bias.detach().any(), f"{mod_name}.bias is not zero"
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert torch.equal(m.weight.detach(), torch.ones_like(m.weight)), mod_name


def test_lenet300_takes_open_lths_kaiming_init_on_request():
    w = build_model("lenet300", init="kaiming").fc1.weight
    assert abs(w.std().item() / math.sqrt(2 / 784) - 1) < 0.02


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_same_seed_gives_identical_weights_and_another_seed_different_ones(name):
    a, b, c = real(name), build_model(name, seed=0), build_model(name, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa[a.output_layer_name], sc[a.output_layer_name])
    assert all(not torch.equal(sa[k], sc[k]) for k in a.prunable_parameter_names())


def test_build_model_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model("lenet300", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_build_model_seed_does_not_depend_on_the_global_rng():
    torch.manual_seed(1)
    a = build_model("mnist1d_mlp", seed=2).fc1.weight
    torch.manual_seed(99)
    assert torch.equal(a, build_model("mnist1d_mlp", seed=2).fc1.weight)


# ---- bad input ----------------------------------------------------------------------------------------
def test_unknown_model_lists_the_valid_names():
    with pytest.raises(LotteryTicketError, match="unknown model 'lenet301'; choose from lenet300, lenet5, conv2"):
        build_model("lenet301")


def test_unknown_keyword_names_the_accepted_ones():
    with pytest.raises(LotteryTicketError, match=r"takes no argument\(s\) \['classes'\]; it accepts num_classes, input_shape"):
        build_model("conv4", classes=10)


@pytest.mark.parametrize("name, kwargs, message", [
    ("conv6", {"input_shape": (3, 4, 4)}, r"conv6 needs input_shape=\(channels, height, width\) with height and width >= 8"),
    ("lenet5", {"input_shape": (28, 28)}, r"lenet5 needs input_shape=\(channels, height, width\)"),
    ("vgg16", {"input_shape": (3, 16, 16)}, "height and width >= 32"),
    ("cifar_vgg19", {"input_shape": (3, 8, 8)}, "height and width >= 16"),
    ("lenet300", {"input_shape": (0, 28)}, "positive sizes"),
    ("resnet18", {"input_shape": "3x224x224"}, "must be a tuple of integers"),
    ("mnist1d_cnn", {"input_shape": (2,)}, "at least 3 samples"),
    ("lenet300", {"num_classes": 0}, r"num_classes=0 must be an integer >= 1"),
    ("cifar_resnet20", {"num_classes": 2.5}, r"num_classes=2.5 must be an integer >= 1"),
    ("lenet300", {"init": "he"}, r"init='he' is unknown; choose glorot or kaiming"),
])
def test_bad_shapes_and_sizes_fail_with_a_one_line_fix(name, kwargs, message):
    with pytest.raises(LotteryTicketError, match=message):
        on_meta(name, **kwargs)


def test_registry_helpers_agree():
    assert model_names() == list(MODELS)
    assert all(get_model_class(n) is MODELS[n] for n in MODELS)
    assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in MODELS)
