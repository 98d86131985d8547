"""Paper presets: each builds, validates, and its layer-rate patterns name real layers."""

import fnmatch

import pytest

from lottery_ticket import LotteryTicketError
from lottery_ticket.models import get_model_class
from lottery_ticket.presets import PRESETS, get_preset
from lottery_ticket.pruning import MagnitudePruner


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_rate_and_exclusion_pattern_matches_a_prunable_layer(name):
    import torch

    preset = PRESETS[name]
    with torch.device("meta"):
        model = get_model_class(preset.model)()
    names = model.prunable_parameter_names()
    for pattern in list(preset.prune.layer_rates) + list(preset.prune.exclude):
        assert any(fnmatch.fnmatchcase(n, pattern) for n in names), pattern
    assert preset.source


@pytest.mark.parametrize("name", ["lenet300-mnist", "conv2-cifar10", "conv4-cifar10", "conv6-cifar10"])
def test_output_layer_is_pruned_at_half_the_fc_rate(name):
    import torch

    preset = PRESETS[name]
    with torch.device("meta"):
        model = get_model_class(preset.model)()
    pruner = MagnitudePruner(global_pruning=False, layer_rates=preset.prune.layer_rates)
    assert pruner.rate_for(model.output_layer_name, 0.2) == pruner.rate_for("fc2.weight", 0.2) / 2


def test_conv6_prunes_its_convs_at_fifteen_percent():
    pruner = MagnitudePruner(global_pruning=False, layer_rates=PRESETS["conv6-cifar10"].prune.layer_rates)
    assert pruner.rate_for("convs.0.weight", 0.2) == 0.15


def test_lenet_reaches_about_3_6_percent_of_hidden_weights_in_15_rounds():
    preset = PRESETS["lenet300-mnist"]
    assert preset.prune.rounds == 15 and abs(0.8 ** 15 - 0.035) < 0.001


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(LotteryTicketError, match="lenet300-mnist"):
        get_preset("lenet-mnist")
