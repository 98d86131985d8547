"""The pruner registry and the random-pruning control, pinned: every config field reaches the pruner it builds
(the reprs that run records keep), N:M parsing at its bounds, every one-line error, and RandomPruner's exact
counts and collapse warnings."""

import warnings

import pytest
import torch
from conftest import TinyMLP
from torch import nn

from lottery_ticket import PruningMask
from lottery_ticket.config import PruneConfig
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.pruning import RandomPruner
from lottery_ticket.pruning.at_init import AT_INIT_PRUNERS
from lottery_ticket.pruning.registry import PRUNERS, make_pruner, parse_nm
from lottery_ticket.sparsity import count_pruned


# ---- parse_nm ------------------------------------------------------------------------------------------------------
def test_parse_nm_accepts_every_n_from_1_to_m():
    assert parse_nm("1:4") == (1, 4)
    assert parse_nm("4:4") == (4, 4)
    assert parse_nm("2:8") == (2, 8)


def test_parse_nm_refuses_malformed_and_out_of_range_patterns_in_one_line():
    for text, message in (("2x4", "nm='2x4' is not N:M; write e.g. '2:4'"),
                          ("1:2:4", "nm='1:2:4' is not N:M; write e.g. '2:4'"),
                          ("5:4", "nm='5:4': need 1 <= N <= M, e.g. '2:4'"),
                          ("0:4", "nm='0:4': need 1 <= N <= M, e.g. '2:4'")):
        with pytest.raises(LotteryTicketError) as excinfo:
            parse_nm(text)
        assert str(excinfo.value) == message


# ---- make_pruner: each config field reaches the pruner -------------------------------------------------------------
def test_magnitude_pruner_takes_ranking_rates_exclusions_and_guard_from_the_config():
    pruner = make_pruner(PruneConfig(pruner="magnitude", global_pruning=True, layer_rates={"fc1.*": 0.3},
                                     exclude=("fc2.*",), min_density=None))
    assert repr(pruner) == ("MagnitudePruner(global_pruning=True, layer_rates={'fc1.*': 0.3}, exclude=('fc2.*',), "
                            "min_density=None)")
    pruner = make_pruner(PruneConfig(pruner="magnitude", global_pruning=False, min_density=0.25))
    assert repr(pruner) == "MagnitudePruner(global_pruning=False, layer_rates=None, exclude=(), min_density=0.25)"
    assert pruner.global_pruning is False and pruner.min_density == 0.25


def test_nm_pruner_takes_the_pattern_and_its_base_from_the_config():
    pruner = make_pruner(PruneConfig(pruner="nm", nm="1:8", global_pruning=False, exclude=("fc2.*",),
                                     min_density=0.25))
    assert repr(pruner) == ("NMConstrainedPruner(base=MagnitudePruner(global_pruning=False, layer_rates=None, "
                            "exclude=('fc2.*',), min_density=0.25), n=1, m=8, exclude=('fc2.*',))")
    torch.manual_seed(0)
    model = TinyMLP(inputs=16)
    # the 1:8 projection leaves 64 of fc1's 512 weights, below the 25 % floor (128): no further pruning there
    with pytest.warns(UserWarning, match=r"min_density=0.25 stopped pruning 1 layer\(s\) at their floor: fc1.weight"):
        new = pruner.prune_fraction(model, PruningMask(model), 0.2)
    assert bool(new["fc2.weight"].all())  # excluded: not even projected onto 1:8
    assert int(new["fc1.weight"].reshape(32, 2, 8).sum(-1).max()) == 1  # at most 1 of every 8 inputs


@pytest.mark.parametrize("name", sorted(AT_INIT_PRUNERS))
def test_at_init_pruners_take_exclusions_and_guard_from_the_config(name):
    default = make_pruner(PruneConfig(pruner=name))
    assert type(default) is AT_INIT_PRUNERS[name] and default.exclude == () and default.min_density == 0.0
    pruner = make_pruner(PruneConfig(pruner=name, exclude=("fc2.*",), min_density=None))
    assert type(pruner) is AT_INIT_PRUNERS[name] and pruner.exclude == ("fc2.*",) and pruner.min_density is None
    assert make_pruner(PruneConfig(pruner=name, min_density=0.25)).min_density == 0.25
    with pytest.raises(LotteryTicketError) as excinfo:
        make_pruner(PruneConfig(pruner=name, layer_rates={"fc1.*": 0.1}))
    assert str(excinfo.value) == (f"--pruner {name} ranks all layers together and takes no per-layer rates; pass "
                                  "--rate or --target-sparsity (either drops the preset's per-layer rates)")


def test_make_pruner_seeds_the_random_criterion_and_refuses_unknown_names_in_one_line():
    assert make_pruner(PruneConfig(pruner="random")).seed == 0
    assert make_pruner(PruneConfig(pruner="random"), seed=7).seed == 7
    config = PruneConfig(pruner="magnitude")
    config.pruner = "magnitud"  # a config edited after it was checked
    with pytest.raises(LotteryTicketError) as excinfo:
        make_pruner(config)
    assert str(excinfo.value) == f"unknown pruner 'magnitud'; choose from {', '.join(PRUNERS)}"
    assert "magnitude, random, nm" in str(excinfo.value)


# ---- RandomPruner --------------------------------------------------------------------------------------------------
def test_random_pruner_repr_names_seed_rates_exclusions_and_a_non_default_guard():
    assert repr(RandomPruner()) == "RandomPruner(seed=0, layer_rates=None, exclude=())"
    assert repr(RandomPruner(seed=3, layer_rates={"fc2.*": 0.1}, exclude=["fc1.bias"], min_density=None)) == (
        "RandomPruner(seed=3, layer_rates={'fc2.*': 0.1}, exclude=('fc1.bias',), min_density=None)")
    assert repr(RandomPruner(min_density=0.25)) == "RandomPruner(seed=0, layer_rates=None, exclude=(), min_density=0.25)"


def test_random_pruner_default_seed_is_zero():
    torch.manual_seed(0)
    model = TinyMLP()
    assert RandomPruner().prune(model, PruningMask(model), 0.5) == RandomPruner(seed=0).prune(model, PruningMask(model), 0.5)
    assert RandomPruner().prune(model, PruningMask(model), 0.5) != RandomPruner(seed=1).prune(model, PruningMask(model), 0.5)


def test_random_pruner_one_level_uses_each_layers_own_rate():
    torch.manual_seed(0)
    model = TinyMLP()
    new = RandomPruner(layer_rates={"fc2.*": 0.5}).prune_fraction(model, PruningMask(model), 0.1)
    assert count_pruned(new, ["fc1.weight"])[0] == round(0.1 * 640)
    assert count_pruned(new, ["fc2.weight"])[0] == 48


def test_random_pruner_per_layer_targets_prune_every_named_layer_and_only_those():
    torch.manual_seed(0)
    model = TinyMLP()
    mask = PruningMask(model)
    only_second = RandomPruner().prune(model, mask, {"fc2.weight": 0.5})
    assert bool(only_second["fc1.weight"].all()) and count_pruned(only_second, ["fc2.weight"])[0] == 48
    first_at_zero = RandomPruner().prune(model, mask, {"fc1.weight": 0.0, "fc2.weight": 0.5})
    assert bool(first_at_zero["fc1.weight"].all()) and count_pruned(first_at_zero, ["fc2.weight"])[0] == 48


def test_random_pruner_prunes_exactly_one_weight_when_the_target_asks_for_one():
    layer = nn.Linear(5, 2, bias=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = RandomPruner(seed=2).prune(layer, PruningMask(layer), 0.1)
    assert count_pruned(new) == (1, 10)


def test_random_pruner_refuses_an_out_of_range_target_in_one_line():
    layer = nn.Linear(5, 2, bias=False)
    with pytest.raises(LotteryTicketError) as excinfo:
        RandomPruner().prune(layer, PruningMask(layer), 1.5)
    assert str(excinfo.value) == ("target_sparsity=1.5 is outside [0, 1); pass the fraction of weights to prune, "
                                  "e.g. 0.9 (did you mean 0.015?)")


def test_random_pruner_warns_only_when_a_layer_is_held_at_its_floor_or_emptied():
    layer = nn.Linear(5, 2, bias=False)
    mask = PruningMask(layer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # 9 of 10 is exactly what the default guard allows: neither held nor emptied
        assert count_pruned(RandomPruner().prune(layer, mask, 0.9)) == (9, 10)
        # an already empty layer asked for 0.99 (round(9.9) = all 10): nothing more to prune, nothing emptied now
        empty = PruningMask(masks={"weight": torch.zeros(2, 5, dtype=torch.bool)})
        assert RandomPruner(min_density=None).prune(layer, empty, 0.99) == empty
    with pytest.warns(UserWarning) as record:
        emptied = RandomPruner(min_density=None).prune(layer, mask, 0.99)
    assert count_pruned(emptied) == (10, 10)
    assert [str(w.message) for w in record] == [
        "pruning emptied 1 layer(s): weight; pass min_density=0.0 to keep at least one weight in every layer"]
    with pytest.warns(UserWarning) as record:
        held = RandomPruner().prune(layer, mask, 0.99)
    assert count_pruned(held) == (9, 10)
    assert [str(w.message) for w in record] == [
        ("min_density=0.0 stopped pruning 1 layer(s) at their floor: weight; lower min_density to let them be "
         "pruned further")]
