"""Every registered model: exact parameter counts, prunable layers, output layer, seeded init, forward/backward."""

import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError, PruningMask
from lottery_ticket.models import MODELS, build_model, get_model_class

# Totals match torchvision / the reference implementations; the conv nets' numbers are weights without biases.
TOTAL_PARAMS = {"lenet300": 266_610, "lenet5": 61_706, "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544,
                "vgg19": 143_667_240, "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
                "resnet101": 44_549_160, "cifar_resnet20": 272_474, "mnist1d_mlp": 15_210}
PRUNABLE_WEIGHTS = {"conv2": 4_300_992, "conv4": 2_425_024, "conv6": 2_261_184}
SMALL_INPUT = {"lenet300": (1, 28, 28), "lenet5": (1, 28, 28), "conv2": (3, 32, 32), "conv4": (3, 32, 32), "conv6": (3, 32, 32),
               "cifar_vgg16": (3, 32, 32), "cifar_vgg19": (3, 32, 32), "cifar_resnet20": (3, 32, 32), "cifar_resnet56": (3, 32, 32),
               "mnist1d_mlp": (40,), "mnist1d_cnn": (40,), "resnet18": (3, 64, 64)}


def on_meta(name):
    with torch.device("meta"):
        return get_model_class(name)()


@pytest.mark.parametrize("name", sorted(TOTAL_PARAMS))
def test_total_parameter_count_matches_the_reference(name):
    assert sum(p.numel() for p in on_meta(name).parameters()) == TOTAL_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PRUNABLE_WEIGHTS))
def test_paper_conv_nets_have_the_papers_weight_counts(name):
    model = on_meta(name)
    params = dict(model.named_parameters())
    assert sum(params[n].numel() for n in model.prunable_parameter_names()) == PRUNABLE_WEIGHTS[name]


@pytest.mark.parametrize("name", list(MODELS))
def test_prunable_names_are_conv_and_linear_weights_and_end_with_the_output_layer(name):
    model = on_meta(name)
    names = model.prunable_parameter_names()
    params = dict(model.named_parameters())
    assert names and all(n.endswith(".weight") and params[n].dim() >= 2 for n in names)
    assert names[-1] == model.output_layer_name
    assert PruningMask(model).names == names


@pytest.mark.parametrize("name", sorted(SMALL_INPUT))
def test_forward_and_backward_give_finite_logits_of_the_right_shape(name):
    model = build_model(name, seed=0)
    x = torch.randn(2, *SMALL_INPUT[name])
    out = model(x)
    assert out.shape == (2, 1000 if name == "resnet18" else 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["lenet300", "conv4", "cifar_resnet20", "mnist1d_cnn"])
def test_same_seed_same_weights_and_other_seed_other_weights(name):
    a, b, c = build_model(name, seed=3), build_model(name, seed=3), build_model(name, seed=4)
    for (n, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_build_model_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    build_model("lenet300", seed=5)
    assert torch.equal(torch.rand(1), expected)


def test_glorot_init_for_lenet_has_the_expected_spread():
    w = build_model("lenet300").fc1.weight
    assert abs(w.std().item() - (2 / (784 + 300)) ** 0.5) < 0.002


def test_models_adapt_to_the_datasets_shape():
    assert build_model("conv4", input_shape=(1, 28, 28))(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert build_model("lenet300", input_shape=(3, 32, 32))(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(LotteryTicketError, match="choose from lenet300, lenet5"):
        build_model("lenet301")
