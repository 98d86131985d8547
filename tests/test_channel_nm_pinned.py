"""Pinned behaviour of channel pruning's layer links, the N:M pruners and open_lth's sparse_global rule.

Each expectation is derived independently of the code under test: the links and residual convs of the
library's models are written out from the architectures (He et al. / torchvision layouts), N:M masks come
from a brute-force per-group reference, global magnitude pruning from a numpy sort.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask
from lottery_ticket.models import build_model
from lottery_ticket.models.base import LotteryModel
from lottery_ticket.models.cifar import Block
from lottery_ticket.models.resnet import ResNet18, ResNet50
from lottery_ticket.models.vgg import VGG, vgg_features
from lottery_ticket.pruning import (
    NMConstrainedPruner,
    NMPruner,
    SparseGlobalPruner,
    Structured24Pruner,
    nm_mask,
)
from lottery_ticket.pruning.channel import (
    ChannelL1Pruner,
    ChannelLink,
    alive_channels,
    channel_counts,
    channel_links,
    conv_weights,
    residual_convs,
)


def pruned_filters(mask, name):
    return torch.nonzero(~alive_channels(mask[name])).flatten().tolist()


# ---- which filters are linked to what: the library's ResNets and VGGs ----------------------------------
STAGES = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}


def resnet_blocks(depth):
    return [f"layer{s + 1}.{i}" for s, n in enumerate(STAGES[depth]) for i in range(n)]


@pytest.fixture(scope="module")
def resnet18():
    return ResNet18()


@pytest.fixture(scope="module")
def resnet50():
    return ResNet50()


def test_resnet18_links_each_basic_blocks_inner_conv_to_its_bn_and_second_conv(resnet18):
    expected = [ChannelLink(f"{b}.conv1", f"{b}.bn1", f"{b}.conv2") for b in resnet_blocks(18)]
    assert channel_links(resnet18) == expected


def test_resnet50_links_both_inner_convs_of_every_bottleneck(resnet50):
    expected = []
    for b in resnet_blocks(50):
        expected += [ChannelLink(f"{b}.conv1", f"{b}.bn1", f"{b}.conv2"), ChannelLink(f"{b}.conv2", f"{b}.bn2", f"{b}.conv3")]
    links = channel_links(resnet50)
    assert links == expected and len(links) == 2 * 16


def test_imagenet_resnets_residual_convs_are_the_stem_block_outputs_and_downsamples(resnet18, resnet50):
    # ResNet-18: the stem `conv1`, each block's conv2, and the downsample of the first block of stages 2-4
    # (stage 1 keeps 64 channels at stride 1: no downsample).
    expected18 = ["conv1.weight"]
    for b in resnet_blocks(18):
        expected18.append(f"{b}.conv2.weight")
        if b in ("layer2.0", "layer3.0", "layer4.0"):
            expected18.append(f"{b}.downsample.0.weight")
    assert residual_convs(resnet18) == expected18
    # ResNet-50: conv3 ends each bottleneck; every stage's first block changes width (64 -> 256 too), so it has a downsample.
    expected50 = ["conv1.weight"]
    for b in resnet_blocks(50):
        expected50.append(f"{b}.conv3.weight")
        if b.endswith(".0"):
            expected50.append(f"{b}.downsample.0.weight")
    assert residual_convs(resnet50) == expected50


def test_channel_pruning_a_resnet50_prunes_only_the_bottlenecks_inner_convs(resnet50):
    pruner = ChannelL1Pruner()
    mask = PruningMask(resnet50)
    inner = [f"{b}.conv{k}.weight" for b in resnet_blocks(50) for k in (1, 2)]
    assert pruner.eligible(mask, resnet50) == inner


class SmallVGG(VGG):
    """A VGG (isinstance VGG) with torchvision's `features` layout at toy widths, BatchNorm optional."""

    def __init__(self, batch_norm: bool, features: nn.Sequential | None = None):
        LotteryModel.__init__(self)
        self.features = features if features is not None else vgg_features([4, "M", 6, 8, "M"], 3, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(8 * 49, 5), nn.ReLU(), nn.Linear(5, 3))

    output_layer_name = "classifier.2.weight"


def test_vgg_links_each_conv_to_the_next_conv_and_the_last_to_the_classifier():
    # features without BN: conv0 relu1 M2 conv3 relu4 conv5 relu6 M7
    assert channel_links(SmallVGG(batch_norm=False)) == [
        ChannelLink("features.0", None, "features.3"), ChannelLink("features.3", None, "features.5"),
        ChannelLink("features.5", None, "classifier.0")]
    # with BN (torchvision's vgg*_bn layout): conv0 bn1 relu2 M3 conv4 bn5 relu6 conv7 bn8 relu9 M10
    assert channel_links(SmallVGG(batch_norm=True)) == [
        ChannelLink("features.0", "features.1", "features.4"), ChannelLink("features.4", "features.5", "features.7"),
        ChannelLink("features.7", "features.8", "classifier.0")]


def test_vgg_features_ending_in_a_conv_or_its_bn_link_without_reading_past_the_end():
    ends_in_conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3))
    assert channel_links(SmallVGG(False, ends_in_conv)) == [
        ChannelLink("features.0", None, "features.2"), ChannelLink("features.2", None, "classifier.0")]
    ends_in_bn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    assert channel_links(SmallVGG(False, ends_in_bn)) == [ChannelLink("features.0", "features.1", "classifier.0")]


def test_vgg_channel_pruning_prunes_every_feature_conv_and_never_the_classifier():
    model = SmallVGG(batch_norm=True)
    pruner = ChannelL1Pruner()
    mask = pruner.prune(model, PruningMask(model), 0.5)
    assert pruner.eligible(mask) == ["features.0.weight", "features.4.weight", "features.7.weight"]
    assert channel_counts(mask) == {"features.0.weight": (2, 4), "features.4.weight": (3, 6), "features.7.weight": (4, 8)}
    assert all(bool(mask[n].all()) for n in mask.names if n.startswith("classifier"))


# ---- models outside the library ------------------------------------------------------------------------
def test_a_bare_residual_block_only_exposes_its_inner_conv():
    torch.manual_seed(0)
    block = Block(4, 8, downsample=True)  # conv1, conv2 (adds to the shortcut) and the shortcut conv
    assert residual_convs(block) == ["conv2.weight", "shortcut.0.weight"]
    mask = PruningMask(block)
    assert ChannelL1Pruner().eligible(mask, block) == ["conv1.weight"]


def test_a_bare_conv_is_its_own_weight_and_is_pruned_smallest_filters_first():
    conv = nn.Conv2d(1, 4, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([3.0, -1.0, 4.0, 2.0]).view(4, 1, 1, 1))
    assert conv_weights(conv) == {"weight": conv}
    mask = ChannelL1Pruner().prune(conv, PruningMask(conv), 0.5)  # |w| 3 1 4 2: filters 1 and 3 go
    assert pruned_filters(mask, "weight") == [1, 3]


class FullyConv(nn.Module):
    """A fully convolutional net whose output layer is a conv, named by output_layer_name."""

    output_layer_name = "head.weight"

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(1, 4, 3)
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        return self.head(torch.relu(self.body(x))).mean((2, 3))


def test_an_output_layer_that_is_a_conv_is_never_pruned():
    torch.manual_seed(0)
    model = FullyConv()
    pruner = ChannelL1Pruner()
    mask = pruner.prune(model, PruningMask(model), 0.5)
    assert pruner.eligible(mask, model) == ["body.weight"]
    assert channel_counts(mask) == {"body.weight": (2, 4), "head.weight": (3, 3)}


def test_library_models_only_prune_the_convs_their_links_know():
    # A grouped conv (groups=2) and a conv attached by the user sit in a Conv-2: export knows no consumer for
    # the probe and cannot cut a grouped conv's filters, so only convs.0 may be pruned.
    model = build_model("conv2", seed=0)
    model.convs[1] = nn.Conv2d(64, 64, 3, padding=1, groups=2)
    model.probe = nn.Conv2d(3, 4, 1)
    mask = PruningMask(model)
    assert {"convs.1.weight", "probe.weight"} <= set(mask.names)
    pruner = ChannelL1Pruner()
    assert pruner.eligible(mask, model) == ["convs.0.weight"]
    pruned = pruner.prune_fraction(model, mask, 0.5)
    assert bool(pruned["convs.1.weight"].all()) and bool(pruned["probe.weight"].all())


def test_eligible_before_any_model_is_every_conv_weight_the_exclude_patterns_leave():
    model = build_model("conv4", seed=0)
    mask = PruningMask(model)
    assert ChannelL1Pruner().eligible(mask) == [f"convs.{i}.weight" for i in range(4)]
    assert ChannelL1Pruner(exclude=["convs.2.*"]).eligible(mask) == ["convs.0.weight", "convs.1.weight", "convs.3.weight"]


def test_prune_fraction_reads_the_structure_of_the_model_it_is_given():
    # A fresh pruner has seen no model: prune_fraction must still leave ResNet-20's residual-feeding convs whole.
    model = build_model("cifar_resnet20", seed=0)
    mask = ChannelL1Pruner().prune_fraction(model, PruningMask(model), 0.5)
    residual = set(residual_convs(model))
    for n in mask.names:
        if n in residual or mask[n].dim() != 4:
            assert bool(mask[n].all()), n
        else:
            alive, total = channel_counts(mask, [n])[n]
            assert alive == total - round(0.5 * total), n


def test_channel_counts_of_named_layers_reports_only_those():
    model = build_model("conv4", seed=0)
    mask = ChannelL1Pruner().prune(model, PruningMask(model), 0.25)
    assert channel_counts(mask, ["convs.2.weight"]) == {"convs.2.weight": (96, 128)}
    assert channel_counts(mask, []) == {}


# ---- ranking details -----------------------------------------------------------------------------------
def test_filter_norms_sum_in_float64_so_tiny_weights_still_rank():
    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():  # filter 0: 1 + 1e-8 (1.0 in float32 arithmetic), filter 1: exactly 1
        conv.weight.copy_(torch.tensor([[1.0, 1e-8], [1.0, 0.0]]).view(2, 2, 1, 1))
    norms = ChannelL1Pruner.filter_norms(conv.weight, torch.ones(2, 2, 1, 1, dtype=torch.bool))
    assert norms.dtype == torch.float64
    expected = np.abs(conv.weight.detach().numpy().astype(np.float64)).reshape(2, -1).sum(1)
    assert norms.tolist() == expected.tolist() and norms[0] > norms[1]
    assert pruned_filters(ChannelL1Pruner().prune(conv, PruningMask(conv), 0.5), "weight") == [1]


def test_many_equal_norms_prune_the_lowest_indices_first():
    # 32 filters of equal norm: a stable ranking drops filters 0..15 (an unstable sort reorders ties above 16).
    conv = nn.Conv2d(1, 32, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    mask = ChannelL1Pruner().prune(conv, PruningMask(conv), 0.5)
    assert pruned_filters(mask, "weight") == list(range(16))


def test_min_density_none_keeps_one_filter_as_the_floor():
    model = build_model("conv2", seed=0)
    pruner = ChannelL1Pruner(min_density=None)
    mask = pruner.prune(model, PruningMask(model), 0.98)  # round(62.72) = 63 of 64: one left, the floor
    assert channel_counts(mask) == {"convs.0.weight": (1, 64), "convs.1.weight": (1, 64)}
    with pytest.raises(LotteryTicketError, match="below its floor of 1;"):
        pruner.prune(model, PruningMask(model), 0.995)


def test_min_density_floor_absorbs_float_noise_below_a_millionth_of_a_filter():
    # 0.50000003 * 10 = 5.0000003: within 1e-6 of 5 filters, so the floor is 5 (not 6) and pruning 5 of 10 is allowed.
    conv = nn.Conv2d(1, 10, 1, bias=False)
    pruner = ChannelL1Pruner(min_density=0.50000003)
    assert channel_counts(pruner.prune(conv, PruningMask(conv), 0.5)) == {"weight": (5, 10)}
    with pytest.raises(LotteryTicketError, match="below its floor of 5;"):
        pruner.prune(conv, PruningMask(conv), 0.6)


def test_a_layer_asked_to_prune_nothing_is_skipped_and_later_layers_still_pruned():
    # convs.0's rate is 0: it is not ranked (its NaN weights raise nothing) and convs.1 after it is still pruned.
    model = build_model("conv2", seed=0)
    with torch.no_grad():
        model.convs[0].weight.fill_(float("nan"))
    pruner = ChannelL1Pruner(layer_rates={"convs.0.weight": 0.0})
    mask = pruner.prune_fraction(model, PruningMask(model), 0.5)
    assert channel_counts(mask) == {"convs.0.weight": (64, 64), "convs.1.weight": (32, 64)}
    with pytest.raises(LotteryTicketError) as err:
        ChannelL1Pruner().prune_fraction(model, PruningMask(model), 0.5)
    assert str(err.value) == ("weights of convs.0.weight are NaN or infinite, so their L1 norms rank nothing; training "
                              "diverged: lower the learning rate (--lr) or add warmup")


def test_channel_pruning_error_messages_in_full():
    conv = nn.Conv2d(1, 5, 1, bias=False)
    mask = PruningMask(conv)
    pruner = ChannelL1Pruner()
    with pytest.raises(LotteryTicketError) as err:
        pruner.prune(conv, mask, 0.95)  # round(4.75) = 5 of 5
    assert str(err.value) == (
        "channel-l1: target 0.95 prunes 5 of the 5 surviving filters of weight, leaving 0, below its floor of 1; "
        "lower the rate or target for it (e.g. --layer-rate 'weight=0.1') or leave it out (--exclude weight)")
    with pytest.raises(LotteryTicketError) as err:
        pruner.prune(conv, mask, {"weight": 0.2, "nope.weight": 0.5})
    assert str(err.value) == "target_sparsity names layers not in the mask: ['nope.weight']; use names from mask.names"
    outside = "=-0.5 is outside [0, 1); pass the fraction of weights to prune, e.g. 0.9"
    with pytest.raises(LotteryTicketError) as err:
        pruner.prune(conv, mask, {"weight": -0.5})
    assert str(err.value) == "target_sparsity['weight']" + outside
    with pytest.raises(LotteryTicketError) as err:
        pruner.prune(conv, mask, -0.5)
    assert str(err.value) == "target_sparsity" + outside
    with pytest.raises(LotteryTicketError) as err:
        pruner.prune_fraction(conv, mask, -0.5)
    assert str(err.value) == "fraction" + outside


def test_channel_pruner_repr_shows_rates_exclusions_and_a_non_default_floor():
    assert repr(ChannelL1Pruner()) == "ChannelL1Pruner(layer_rates=None, exclude=())"
    assert repr(ChannelL1Pruner(layer_rates={"convs.0.weight": 0.1}, exclude=["fc*"], min_density=0.25)) == (
        "ChannelL1Pruner(layer_rates={'convs.0.weight': 0.1}, exclude=('fc*',), min_density=0.25)")
    assert repr(ChannelL1Pruner(min_density=None)) == "ChannelL1Pruner(layer_rates=None, exclude=(), min_density=None)"


# ---- N:M: a brute-force reference ----------------------------------------------------------------------
def nm_reference(weight: np.ndarray, n: int, m: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Per group of m consecutive input channels (at each output and kernel position): keep the n survivors
    of largest |w|, ties to the lower input index; a group with fewer than n survivors keeps them all."""
    keep = np.ones(weight.shape, dtype=bool) if keep is None else keep
    out = np.zeros(weight.shape, dtype=bool)
    for index in itertools.product(*(range(s) for i, s in enumerate(weight.shape) if i != 1)):
        for start in range(0, weight.shape[1], m):
            cells = [(index[0], c, *index[1:]) for c in range(start, start + m)]
            alive = [c for c in cells if keep[c]]
            alive.sort(key=lambda c: (-abs(float(weight[c])), c[1]))
            for c in alive[:n]:
                out[c] = True
    return out


@pytest.mark.parametrize("n, m, shape", [(2, 4, (3, 8)), (1, 2, (2, 6)), (3, 8, (2, 16, 1, 2)), (2, 32, (3, 64)),
                                         (1, 4, (2, 8, 2, 1))])
def test_nm_mask_matches_the_brute_force_reference_with_ties_and_a_ticket(n, m, shape):
    g = torch.Generator().manual_seed(n * 100 + m)
    weight = (torch.randint(-2, 3, shape, generator=g)).float()  # few distinct magnitudes: ties everywhere
    keep = torch.rand(shape, generator=g) < 0.7
    w, k = weight.numpy(), keep.numpy()
    assert np.array_equal(nm_mask(weight, n, m).numpy(), nm_reference(w, n, m))
    assert np.array_equal(nm_mask(weight, n, m, keep=keep).numpy(), nm_reference(w, n, m, k))
    # NMPruner applies the same pattern with its own n and m to every covered weight.
    layer = nn.Linear(shape[1], shape[0]) if len(shape) == 2 else nn.Conv2d(shape[1], shape[0], shape[2:])
    with torch.no_grad():
        layer.weight.copy_(weight)
    ticket = PruningMask(masks={"weight": keep})
    assert np.array_equal(NMPruner(n, m).prune(layer, ticket)["weight"].numpy(), nm_reference(w, n, m, k))


def test_nm_mask_accepts_a_keep_mask_of_any_dtype():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 8, generator=g)
    keep = torch.rand(4, 8, generator=g) < 0.6
    expected = nm_reference(weight.numpy(), 2, 4, keep.numpy())
    for as_type in (torch.uint8, torch.float32):
        assert np.array_equal(nm_mask(weight, keep=keep.to(as_type)).numpy(), expected)


def test_nm_mask_of_a_float64_weight_is_the_mask_of_its_float32_cast():
    # Ranked in float32 whatever the weight dtype: 1 and 1 + 1e-12 tie, and the tie goes to the lower index.
    weight = torch.tensor([[1.0, 1.0 + 1e-12, 0.5, 0.25]], dtype=torch.float64)
    assert torch.equal(nm_mask(weight, 1, 4), nm_mask(weight.float(), 1, 4))
    assert nm_mask(weight, 1, 4).tolist() == [[True, False, False, False]]


def test_nm_arguments_are_checked_with_messages_naming_them():
    for n, m, text in [(0, 4, "n=0 must be an integer >= 1; e.g. n=2, m=4 for 2:4 sparsity"),
                       (True, 4, "n=True must be an integer >= 1; e.g. n=2, m=4 for 2:4 sparsity"),
                       (2.0, 4, "n=2.0 must be an integer >= 1; e.g. n=2, m=4 for 2:4 sparsity"),
                       (2, 4.0, "m=4.0 must be an integer >= 1; e.g. n=2, m=4 for 2:4 sparsity"),
                       (5, 4, "n=5 > m=4: N:M keeps n of every m weights, so pass n <= m (e.g. 2:4)")]:
        with pytest.raises(LotteryTicketError) as err:
            NMPruner(n, m)
        assert str(err.value) == text
    # n == m is allowed: every weight keeps its slot.
    weight = torch.randn(2, 8)
    assert bool(nm_mask(weight, 4, 4).all())


def test_nm_pruner_defaults_to_2_4_with_no_exclusions_and_an_empty_skip_list():
    pruner = NMPruner()
    assert (pruner.n, pruner.m, pruner.exclude, pruner.skipped) == (2, 4, (), [])
    assert repr(pruner) == "NMPruner(n=2, m=4, exclude=())"
    assert repr(Structured24Pruner(exclude=["fc2.weight"])) == "Structured24Pruner(n=2, m=4, exclude=('fc2.weight',))"
    assert NMConstrainedPruner().skipped == []


def mlp(seed=0, scale2=1.0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8))
    with torch.no_grad():
        model[2].weight.mul_(scale2)
    return model


def test_excluded_layers_are_left_whole_and_the_others_still_take_the_pattern():
    model = mlp()
    w2 = model[2].weight.detach().numpy()
    for pruner in (NMPruner(2, 4, exclude=["0.*"]), Structured24Pruner(exclude=["0.*"])):
        mask = pruner.prune_model(model)
        assert bool(mask["0.weight"].all())
        assert np.array_equal(mask["2.weight"].numpy(), nm_reference(w2, 2, 4))
        assert pruner.skipped == []


def test_skipped_layers_warning_names_each_with_its_reason():
    model = nn.Sequential(nn.Linear(3, 8), nn.Linear(8, 6), nn.Linear(6, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NMPruner(2, 4).prune(model, PruningMask(model))
    assert len(caught) == 1
    assert str(caught[0].message) == ("2:4 pattern not applied to 2 layer(s): 0.weight (input dimension 3 is not a "
                                      "multiple of 4); 2.weight (input dimension 6 is not a multiple of 4)")


def test_a_target_at_what_the_pattern_reaches_is_accepted_and_above_it_refused():
    model = mlp()
    dense = PruningMask(model)  # every layer takes 2:4 on a dense mask: exactly half the weights go
    assert NMPruner().prune(model, dense, 0.5).sparsity == 0.5
    NMPruner().prune(model, dense, 0.5 + 1e-9)  # float noise, within the 1e-9 tolerance
    with pytest.raises(LotteryTicketError) as err:
        NMPruner().prune(model, dense, 0.6)
    assert str(err.value) == ("target_sparsity=0.6 is above the 0.500 an 2:4 mask reaches; use "
                              "NMConstrainedPruner(base=MagnitudePruner(), n=2, m=4) to prune further")


def test_structured24_verify_pattern_counts_at_most_two_per_group_of_four():
    assert Structured24Pruner.verify_24_pattern(torch.tensor([[1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0]]))
    assert not Structured24Pruner().verify_24_pattern(torch.tensor([[1.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0]]))


# ---- NMConstrainedPruner: the base criterion and the projector's exclusions ----------------------------
def test_nm_constrained_default_base_is_global_magnitude_and_a_given_base_is_used():
    model = mlp(scale2=10.0)  # layer 2 is ten times larger: global ranking prunes layer 0 far more
    dense = PruningMask(model)
    default = NMConstrainedPruner().prune(model, dense, 0.75)
    assert default == NMConstrainedPruner(MagnitudePruner(global_pruning=True)).prune(model, dense, 0.75)
    assert default.sparsity == 0.75 and default.layer_sparsities["0.weight"] > 0.75
    layerwise = NMConstrainedPruner(MagnitudePruner(global_pruning=False)).prune(model, dense, 0.75)
    assert layerwise.layer_sparsities == {"0.weight": 0.75, "2.weight": 0.75}
    assert NMConstrainedPruner(base=None).base.global_pruning is True


def test_nm_constrained_passes_its_exclusions_to_the_projection():
    model = mlp()
    mask = NMConstrainedPruner(exclude=["2.weight"]).prune_fraction(model, PruningMask(model), 0.0)
    assert bool(mask["2.weight"].all())
    assert np.array_equal(mask["0.weight"].numpy(), nm_reference(model[0].weight.detach().numpy(), 2, 4))


def test_nm_constrained_rates_are_the_base_criterions():
    pruner = NMConstrainedPruner(MagnitudePruner(layer_rates={"0.weight": 0.5}))
    assert pruner.rate_for("0.weight", 0.2) == 0.5
    assert pruner.rate_for("2.weight", 0.2) == 0.2


# ---- sparse_global --------------------------------------------------------------------------------------
def test_sparse_global_target_form_is_exact_global_magnitude_pruning():
    model = mlp(scale2=10.0)
    mask = SparseGlobalPruner().prune(model, PruningMask(model), 0.5)
    weights = {n: model.get_submodule(n[0]).weight.detach().numpy() for n in ("0.weight", "2.weight")}
    flat = np.concatenate([np.abs(w).ravel() for w in weights.values()])
    k = round(0.5 * flat.size)
    threshold = np.sort(flat)[k - 1]  # distinct random magnitudes: the k smallest across both layers go
    for n, w in weights.items():
        np.testing.assert_array_equal(mask[n].numpy(), np.abs(w) > threshold, err_msg=n)
    assert mask.layer_sparsities["0.weight"] > 0.5 > mask.layer_sparsities["2.weight"]


def test_sparse_global_error_messages_in_full():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Linear(1, 8, bias=False))
    pruner = SparseGlobalPruner(exclude=("1.weight",))
    with pytest.raises(LotteryTicketError) as err:  # ceil(0.2 * 10) = 2: every one of the 2 prunable survivors
        pruner.prune_fraction(model, PruningMask(model), 0.2)
    assert str(err.value) == ("rate 0.2 of 10 weights is 2, not fewer than the 2 prunable survivors; lower the rate or the "
                              "number of rounds")
    with pytest.raises(LotteryTicketError) as err:
        pruner.prune_fraction(model, PruningMask(model), 1.5)
    assert str(err.value) == ("fraction=1.5 is outside [0, 1); pass the fraction of weights to prune, e.g. 0.9 "
                              "(did you mean 0.015?)")
