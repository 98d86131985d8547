"""Channel (filter) pruning, Li et al. 2017: L1 ranking, exact counts, rules, and the export that removes channels.

Tolerance of the export vs the masked model: atol=rtol=1e-4 in float32 (the removed channels' constants are
folded into the next layer, so only the summation order differs; observed ~1e-7 relative).
"""

import copy

import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError, PruningMask
from lottery_ticket.config import PruneConfig
from lottery_ticket.export import ChannelFoldedConv2d, count_flops, count_params, remove_pruned_channels, shrink_report
from lottery_ticket.models import build_model
from lottery_ticket.models.cifar import CifarVGG
from lottery_ticket.pruning.channel import ChannelL1Pruner, alive_channels, channel_counts, residual_convs
from lottery_ticket.pruning.registry import PRUNERS, make_pruner
from lottery_ticket.pruning.schedule import Schedule, next_mask

TOL = dict(atol=1e-4, rtol=1e-4)


class HandConv(nn.Module):
    """One conv whose five filters have L1 norms 3, 1, 2, 1, 5 (signs mixed), then a linear output layer."""

    output_layer_name = "fc.weight"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 2)
        self.fc = nn.Linear(5, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([
                [[1.0, -1.0], [0.5, -0.5]],    # 3
                [[0.0, 0.0], [-1.0, 0.0]],     # 1
                [[-0.5, 0.5], [-0.5, 0.5]],    # 2
                [[0.25, -0.25], [0.25, 0.25]],  # 1 (ties with filter 1: the lower index goes first)
                [[2.0, -2.0], [0.5, 0.5]],     # 5
            ]).unsqueeze(1))

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def pruned_filters(mask, name):
    return torch.nonzero(~alive_channels(mask[name])).flatten().tolist()


def whole_filters_only(mask):
    """Every conv filter is all kept or all pruned."""
    for name, keep in mask.items():
        if keep.dim() == 4:
            flat = keep.reshape(keep.shape[0], -1)
            assert bool((flat.all(1) | ~flat.any(1)).all()), name


def randomize_stats_(model, seed=1):
    """Trained-looking BatchNorm (gamma, beta, running stats) and biases: the removed channels' constants matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


def check_export(model, mask, shape, batch=3):
    masked = mask.apply(copy.deepcopy(model)).eval()
    small = remove_pruned_channels(model, mask)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked(x), **TOL)
    return small


# ---- ranking and counts ---------------------------------------------------------------------------
def test_l1_ranking_prunes_the_smallest_filters_with_lower_index_first_on_ties():
    model = HandConv()
    pruner = ChannelL1Pruner()
    assert pruner.filter_norms(model.conv.weight, torch.ones(5, 1, 2, 2, dtype=torch.bool)).tolist() == [3, 1, 2, 1, 5]
    mask = PruningMask(model)
    assert pruner.eligible(mask, model) == ["conv.weight"]  # the output layer never loses outputs
    one = pruner.prune(model, mask, 0.2)  # round(0.2 * 5) = 1: the tie 1 vs 3 goes to the lower index
    assert pruned_filters(one, "conv.weight") == [1]
    assert pruned_filters(pruner.prune(model, mask, 0.4), "conv.weight") == [1, 3]
    assert pruned_filters(pruner.prune(model, mask, 0.6), "conv.weight") == [1, 2, 3]
    assert pruned_filters(pruner.prune_fraction(model, one, 0.5), "conv.weight") == [1, 2, 3]  # round(0.5 * 4) = 2
    assert torch.equal(one["fc.weight"], mask["fc.weight"])
    whole_filters_only(one)


def test_ranking_uses_the_masked_weights():
    model = HandConv()
    mask = PruningMask(model)
    mask.masks["conv.weight"][4, 0, 0] = False  # filter 4 keeps 0.5 + 0.5 = 1: now it ties with filters 1 and 3
    assert pruned_filters(ChannelL1Pruner().prune(model, mask, 0.6), "conv.weight") == [1, 3, 4]


def test_exact_channel_counts_per_rate_and_target():
    model = build_model("conv4", seed=0)
    pruner = ChannelL1Pruner()
    mask = PruningMask(model)
    level1 = pruner.prune_fraction(model, mask, 0.2)
    assert channel_counts(level1) == {"convs.0.weight": (51, 64), "convs.1.weight": (51, 64),
                                      "convs.2.weight": (102, 128), "convs.3.weight": (102, 128)}
    level2 = pruner.prune_fraction(model, level1, 0.2)  # 51 - round(10.2), 102 - round(20.4)
    assert [a for a, _ in channel_counts(level2).values()] == [41, 41, 82, 82]
    half = pruner.prune(model, mask, 0.5)
    assert [a for a, _ in channel_counts(half).values()] == [32, 32, 64, 64]
    assert [a for a, _ in channel_counts(pruner.prune(model, half, 0.25)).values()] == [32, 32, 64, 64]  # never back
    for m in (level1, level2, half):
        whole_filters_only(m)
        assert all(bool(m[n].all()) for n in ("fc1.weight", "fc2.weight", "fc3.weight"))
        for n in pruner.eligible(m):  # weight sparsity of a layer = its fraction of pruned filters
            alive, total = channel_counts(m)[n]
            assert m.layer_sparsities[n] == pytest.approx(1 - alive / total)


def test_kept_filters_outweigh_pruned_ones_in_every_layer():
    model = build_model("conv2", seed=3)
    pruner = ChannelL1Pruner()
    mask = pruner.prune(model, PruningMask(model), 0.3)
    for name in pruner.eligible(mask):
        norms = pruner.filter_norms(dict(model.named_parameters())[name], torch.ones_like(mask[name]))
        alive = alive_channels(mask[name])
        assert norms[alive].min() >= norms[~alive].max()


def test_per_layer_rates_most_specific_pattern_wins_whatever_the_order():
    model = build_model("conv4", seed=0)
    for rates in ({"convs.0.weight": 0.5, "convs.*": 0.25}, {"convs.*": 0.25, "convs.0.weight": 0.5}):
        mask = ChannelL1Pruner(layer_rates=rates).prune_fraction(model, PruningMask(model), 0.1)
        assert [a for a, _ in channel_counts(mask).values()] == [32, 48, 96, 96]
    mask = ChannelL1Pruner(layer_rates={"convs.3.weight": 0.5}).prune_fraction(model, PruningMask(model), 0.1)
    assert [a for a, _ in channel_counts(mask).values()] == [58, 58, 115, 64]  # round(6.4) = 6, round(12.8) = 13
    excluded = ChannelL1Pruner(exclude=["convs.1.*"]).prune_fraction(model, PruningMask(model), 0.5)
    assert [a for a, _ in channel_counts(excluded).values()] == [32, 64, 64, 64]


def test_never_revives_a_pruned_filter_even_when_its_weights_grow():
    model = build_model("conv2", seed=0)
    pruner = ChannelL1Pruner()
    mask = pruner.prune_fraction(model, PruningMask(model), 0.25)
    gone = pruned_filters(mask, "convs.0.weight")
    with torch.no_grad():
        model.convs[0].weight[gone] = 100.0  # the largest filters now: still pruned
    again = pruner.prune_fraction(model, mask, 0.25)
    for n in mask.names:
        assert not bool((again[n] & ~mask[n]).any()), n
    assert set(gone) <= set(pruned_filters(again, "convs.0.weight"))
    assert channel_counts(again)["convs.0.weight"] == (36, 64)  # 48 - round(12)


def test_same_weights_same_mask():
    model = build_model("conv2", seed=5)
    assert ChannelL1Pruner().prune(model, PruningMask(model), 0.4) == ChannelL1Pruner().prune(model, PruningMask(model), 0.4)


def test_a_rate_that_would_empty_a_layer_is_a_one_line_error_naming_it():
    model = HandConv()
    pruner = ChannelL1Pruner()
    mask = pruner.prune(model, PruningMask(model), 0.6)  # 2 filters left
    with pytest.raises(LotteryTicketError) as err:
        pruner.prune_fraction(model, mask, 0.75)  # round(1.5) = 2: nothing left
    text = str(err.value)
    assert "\n" not in text and "conv.weight" in text and "--layer-rate" in text and "--exclude" in text
    with pytest.raises(LotteryTicketError, match="conv.weight"):
        pruner.prune(model, PruningMask(model), 0.95)  # round(4.75) = 5 of 5
    with pytest.raises(LotteryTicketError, match="floor of 3"):
        ChannelL1Pruner(min_density=0.5).prune(model, PruningMask(model), 0.6)
    assert channel_counts(pruner.prune_fraction(model, mask, 0.5))["conv.weight"] == (1, 5)  # round(1.0): one left


# ---- residual connections ---------------------------------------------------------------------------
def test_convs_that_feed_a_residual_addition_are_never_pruned_on_resnet20():
    model = build_model("cifar_resnet20", seed=0)
    pruner = ChannelL1Pruner()
    mask = pruner.prune(model, PruningMask(model), 0.9)
    residual = residual_convs(model)
    assert "conv.weight" in residual and "blocks.3.shortcut.0.weight" in residual
    assert set(residual) == {"conv.weight", *(f"blocks.{i}.conv2.weight" for i in range(9)),
                             "blocks.3.shortcut.0.weight", "blocks.6.shortcut.0.weight"}
    assert pruner.eligible(mask) == [f"blocks.{i}.conv1.weight" for i in range(9)]
    assert pruner.eligible(mask) == pruner.eligible(mask, model)
    for n in mask.names:
        if n in pruner.eligible(mask):
            alive, total = channel_counts(mask, [n])[n]
            assert alive == total - round(0.9 * total)
        else:
            assert bool(mask[n].all()), n  # residual-feeding convs and fc untouched
    # A target naming a residual conv prunes nothing there (as IMP's one-shot per-layer targets may).
    named = pruner.prune(model, PruningMask(model), {"blocks.0.conv2.weight": 0.5, "blocks.0.conv1.weight": 0.5})
    assert bool(named["blocks.0.conv2.weight"].all()) and channel_counts(named)["blocks.0.conv1.weight"] == (8, 16)


# ---- export -------------------------------------------------------------------------------------------
def test_export_equals_the_masked_model_on_conv2_and_shrinks_params_and_macs_as_computed():
    model = randomize_stats_(build_model("conv2", seed=0))
    mask = ChannelL1Pruner().prune(model, PruningMask(model), 0.5)
    small = check_export(model, mask, (3, 32, 32))
    assert (small.convs[0].out_channels, small.convs[1].in_channels, small.convs[1].out_channels) == (32, 32, 32)
    assert (small.fc1.in_features, small.fc1.out_features, small.fc3.out_features) == (32 * 16 * 16, 256, 10)
    assert isinstance(small.convs[1], ChannelFoldedConv2d)  # relu(bias) of removed convs.0 filters, zero-padded
    assert not small.training
    dense_params = (3 * 64 * 9 + 64) + (64 * 64 * 9 + 64) + (64 * 256 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10)
    small_params = (3 * 32 * 9 + 32) + (32 * 32 * 9 + 32) + (32 * 256 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10)
    assert count_params(model) == dense_params and count_params(small) == small_params
    dense_macs = 1024 * 64 * 27 + 1024 * 64 * 64 * 9 + 64 * 256 * 256 + 256 * 256 + 256 * 10
    small_macs = 1024 * 32 * 27 + 1024 * 32 * 32 * 9 + 32 * 256 * 256 + 256 * 256 + 256 * 10
    assert count_flops(model, (3, 32, 32)) == dense_macs and count_flops(small, (3, 32, 32)) == small_macs
    report = shrink_report(model, small, (3, 32, 32))
    assert report["params_after"] == small_params and report["flops_ratio"] == pytest.approx(small_macs / dense_macs)
    assert count_params(model) == dense_params and model.convs[0].out_channels == 64  # the input is left alone


def test_export_equals_the_masked_model_on_a_vgg_with_batchnorm():
    model = randomize_stats_(CifarVGG(11))  # 8 ConvModules (conv, BN, ReLU), pools, global pool, fc
    pruner = ChannelL1Pruner(layer_rates={"layers.0.conv.weight": 0.75})
    mask = pruner.prune_fraction(model, PruningMask(model), 0.5)
    mask = pruner.prune_fraction(model, mask, 0.2)
    small = check_export(model, mask, (3, 32, 32))
    # layer_rates are per level: 64 - round(0.75 * 64) = 16, then 16 - round(0.75 * 16) = 4
    assert small.layers[0].conv.out_channels == 4 and small.layers[0].bn.num_features == 4
    assert small.fc.in_features == 512 - 256 - round(0.2 * 256) and small.fc.out_features == 10
    assert count_flops(small, (3, 32, 32)) < 0.2 * count_flops(model, (3, 32, 32))


def test_export_equals_the_masked_model_on_resnet20():
    model = randomize_stats_(build_model("cifar_resnet20", seed=0))
    mask = ChannelL1Pruner().prune(model, PruningMask(model), 0.5)
    small = check_export(model, mask, (3, 32, 32))
    assert [small.blocks[i].conv1.out_channels for i in range(9)] == [8] * 3 + [16] * 3 + [32] * 3
    assert all(small.blocks[i].conv2.out_channels == model.blocks[i].conv2.out_channels for i in range(9))
    assert count_params(small) < count_params(model)


def test_the_removed_channels_constant_output_is_what_the_fold_keeps():
    # BN's beta makes a pruned filter's output relu(beta - gamma * mean / std) != 0; drop the fold and outputs differ.
    model = randomize_stats_(build_model("cifar_resnet20", seed=0))
    mask = ChannelL1Pruner().prune(model, PruningMask(model), 0.5)
    small = remove_pruned_channels(model, mask)
    folded = small.blocks[0].conv2
    assert isinstance(folded, ChannelFoldedConv2d) and folded.fold.abs().sum() > 0
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    border = folded.fold_map(32, 32, x.device, x.dtype)
    assert not torch.allclose(border[..., 0, 0], border[..., 16, 16])  # zero padding: the border sees less of it
    with torch.no_grad():
        reference = mask.apply(copy.deepcopy(model)).eval()(x)
        folded.fold.zero_()
        assert not torch.allclose(small(x), reference, **TOL)


def test_export_refuses_what_it_cannot_remove():
    with pytest.raises(LotteryTicketError, match="HandConv"):
        remove_pruned_channels(HandConv(), ChannelL1Pruner().prune(HandConv(), PruningMask(HandConv()), 0.4))
    model = build_model("cifar_resnet20", seed=0)
    mask = PruningMask(model)
    mask.masks["blocks.0.conv2.weight"][3] = False  # a residual-feeding conv's filter: the addition needs it
    with pytest.raises(LotteryTicketError, match="blocks.0.conv2.weight"):
        remove_pruned_channels(model, mask)


def test_export_of_an_unpruned_mask_is_the_same_model():
    model = build_model("conv2", seed=0).eval()
    check_export(model, PruningMask(model), (3, 32, 32))
    assert count_params(remove_pruned_channels(model, PruningMask(model))) == count_params(model)


# ---- through the registry and IMP's schedule ------------------------------------------------------------
def test_channel_l1_through_make_pruner_and_next_mask_on_a_tiny_model():
    assert "channel-l1" in PRUNERS
    model = build_model("conv2", seed=0, input_shape=(3, 8, 8))
    config = PruneConfig(pruner="channel-l1", rate=0.25, rounds=2, layer_rates={"convs.1.weight": 0.5})
    pruner = make_pruner(config, seed=0)
    assert isinstance(pruner, ChannelL1Pruner) and pruner.name == "channel-l1"
    dense = PruningMask(model)
    level1 = next_mask(pruner, Schedule.of(config), model, dense, dense, 1)
    level2 = next_mask(pruner, Schedule.of(config), model, level1, dense, 2)
    assert [a for a, _ in channel_counts(level1).values()] == [48, 32]
    assert [a for a, _ in channel_counts(level2).values()] == [36, 16]
    assert pruner.eligible(level2) == ["convs.0.weight", "convs.1.weight"]
    one_shot = PruneConfig(pruner="channel-l1", target_sparsity=0.75, rounds=2, one_shot=True)
    level = next_mask(make_pruner(one_shot), Schedule.of(one_shot), model, dense, dense, 2)
    assert [a for a, _ in channel_counts(level).values()] == [16, 16]
    check_export(model, level2, (3, 8, 8))
