"""Paper presets: each builds its model, validates, names real layers, and its schedule reaches what it says."""

import dataclasses
import fnmatch
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError
from lottery_ticket.config import Budget, PruneConfig, TrainConfig, from_dict, to_dict
from lottery_ticket.config import ExperimentConfig
from lottery_ticket.models import get_model_class
from lottery_ticket.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset, preset_names, reached_sparsity
from lottery_ticket.pruning import MagnitudePruner
from lottery_ticket.pruning.base import most_specific_match
from lottery_ticket.pruning.schedule import Schedule

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"
PER_LAYER = [n for n, p in PRESETS.items() if p.prune.layer_rates]


def meta_model(preset: Preset) -> nn.Module:
    with torch.device("meta"):
        return get_model_class(preset.model)(**preset.model_kwargs)


def linear_weights(model: nn.Module) -> list[str]:
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_builds_its_model_and_an_experiment_config(name):
    preset = PRESETS[name]
    assert preset.name == name and preset.source
    model = meta_model(preset)
    assert model.prunable_parameter_names()
    # ExperimentConfig checks the model and dataset names against their registries.
    ExperimentConfig(model=preset.model, dataset=preset.dataset, model_kwargs=dict(preset.model_kwargs),
                     train=preset.train, prune=preset.prune, preset=name)


@pytest.mark.parametrize("name", list(PRESETS))
def test_configs_survive_a_round_trip_through_their_validation(name):
    preset = PRESETS[name]
    assert from_dict(TrainConfig, to_dict(preset.train)) == preset.train
    assert from_dict(PruneConfig, to_dict(preset.prune)) == preset.prune


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_rate_and_exclusion_pattern_matches_a_prunable_layer(name):
    preset = PRESETS[name]
    names = meta_model(preset).prunable_parameter_names()
    for pattern in [*preset.prune.layer_rates, *preset.prune.exclude]:
        assert any(fnmatch.fnmatchcase(n, pattern) for n in names), f"{pattern!r} matches none of {names}"


@pytest.mark.parametrize("name", PER_LAYER)
def test_every_layer_gets_an_explicit_rate_and_no_pattern_is_dead(name):
    preset = PRESETS[name]
    names = meta_model(preset).prunable_parameter_names()
    patterns = list(preset.prune.layer_rates)
    winners = {most_specific_match(n, patterns) for n in names}
    assert None not in winners, "a layer no pattern names would silently take the default rate"
    assert winners == set(patterns), "a pattern that never wins is dead"


def test_most_specific_pattern_wins_whatever_the_key_order():
    # run/1 wrote layer_rates with sorted keys, so '*' came back before 'fc3.weight' and first-match pruned the
    # output layer at 20 %: the rate must not depend on the order.
    for rates in ({"fc3.weight": 0.1, "fc*": 0.3, "*": 0.2}, {"*": 0.2, "fc*": 0.3, "fc3.weight": 0.1}):
        pruner = MagnitudePruner(global_pruning=False, layer_rates=rates)
        assert (pruner.rate_for("fc3.weight", -1), pruner.rate_for("fc1.weight", -1), pruner.rate_for("convs.0.weight", -1)) \
            == (0.1, 0.3, 0.2)


@pytest.mark.parametrize("name", PER_LAYER)
def test_output_layer_is_pruned_at_half_the_rate_of_the_other_fc_layers(name):
    # F&C Figure 2: "connections to output are pruned at half the rate" of the other fc layers.
    preset = PRESETS[name]
    model = meta_model(preset)
    pruner = MagnitudePruner(global_pruning=False, layer_rates=preset.prune.layer_rates)
    hidden_fc = [n for n in linear_weights(model) if n != model.output_layer_name]
    assert hidden_fc and {pruner.rate_for(n, -1) for n in hidden_fc} == {0.2}
    assert pruner.rate_for(model.output_layer_name, -1) == 0.1


def test_paper_conv_rates():
    # F&C Figure 2: conv layers 10 % a round for Conv-2/4, 15 % for Conv-6.
    for name, rate in (("conv2-cifar10", 0.10), ("conv4-cifar10", 0.10), ("conv6-cifar10", 0.15)):
        preset = PRESETS[name]
        pruner = MagnitudePruner(global_pruning=False, layer_rates=preset.prune.layer_rates)
        convs = [n for n in meta_model(preset).prunable_parameter_names() if n.startswith("convs.")]
        assert convs and {pruner.rate_for(n, -1) for n in convs} == {rate}, name


@pytest.mark.parametrize("name", list(PRESETS))
def test_paper_presets_state_a_per_level_rate_so_rounds_only_count_levels(name):
    # F&C and open_lth: "prune p % per level"; --rounds changes how many levels, never the rate.
    prune = PRESETS[name].prune
    assert prune.rate == 0.2 and prune.target_sparsity is None
    assert Schedule.of(prune).extendable


@pytest.mark.parametrize("name", PRESETS)
def test_presets_go_past_ninety_percent_sparsity(name):
    assert reached_sparsity(PRESETS[name]) > 0.9


@pytest.mark.parametrize("name", [n for n in PRESETS if n.startswith("mnist1d")])
def test_mnist1d_presets_reach_95_percent(name):
    assert reached_sparsity(PRESETS[name]) > 0.95


@pytest.mark.parametrize("name", list(PRESETS))
def test_schedule_points_fall_inside_the_training_budget(name):
    train, prune = PRESETS[name].train, PRESETS[name].prune
    budget = Budget.parse(train.budget)
    points = [Budget.parse(m) for m in train.milestones] + ([Budget.parse(train.warmup)] if train.warmup else [])
    assert all(p.unit == budget.unit and 0 < p.amount < budget.amount for p in points)
    assert list(train.milestones) == sorted(train.milestones, key=lambda m: Budget.parse(m).amount)
    assert (train.schedule == "step") == bool(train.milestones)
    if prune.rewind_iteration:
        assert budget.unit == "it" and prune.rewind_iteration < 0.07 * budget.amount  # Frankle et al.: 0.1 %-7 % in


def test_vgg_and_resnet_prune_only_convolutions():
    # F&C Figure 2: VGG-19 and Resnet-18 prune conv 20 %, fc 0 %.
    for name in ("vgg19-cifar10", "vgg19-cifar10-rewind", "resnet20-cifar10", "resnet20-cifar10-rewind"):
        preset = PRESETS[name]
        model = meta_model(preset)
        kept = [n for n in model.prunable_parameter_names() if any(fnmatch.fnmatchcase(n, p) for p in preset.prune.exclude)]
        assert kept == linear_weights(model) == [model.output_layer_name], name


def test_paper_hyperparameters():
    # F&C Figure 2 (optimizer, lr, batch, iterations) and §4 (warmup); open_lth's mnist_lenet_300_100 defaults.
    expected = {
        "lenet300-mnist": ("adam", 1.2e-3, 60, "50000it", None),
        "conv2-cifar10": ("adam", 2e-4, 60, "20000it", None),
        "conv4-cifar10": ("adam", 3e-4, 60, "25000it", None),
        "conv6-cifar10": ("adam", 3e-4, 60, "30000it", None),
        "vgg19-cifar10": ("sgd", 0.1, 64, "112000it", "10000it"),
        "resnet20-cifar10": ("sgd", 0.03, 128, "30000it", "20000it"),
        "resnet20-cifar10-rewind": ("sgd", 0.1, 128, "30000it", None),
        "lenet300-mnist-openlth": ("sgd", 0.1, 128, "18760it", None),  # 40 of open_lth's 469-step epochs
    }
    for name, (optimizer, lr, batch, budget, warmup) in expected.items():
        t = PRESETS[name].train
        assert (t.optimizer, t.lr, t.batch_size, t.budget, t.warmup) == (optimizer, lr, batch, budget, warmup), name
    assert PRESETS["lenet300-mnist"].train.eval_every == "100it"
    assert PRESETS["vgg19-cifar10"].train.milestones == ("56000it", "84000it")
    assert PRESETS["resnet20-cifar10"].train.milestones == ("20000it", "25000it")


def test_get_preset_returns_a_copy_that_does_not_leak_into_the_registry():
    preset = get_preset("lenet300-mnist")
    assert preset == PRESETS["lenet300-mnist"] and preset is not PRESETS["lenet300-mnist"]
    preset.train.lr = 1.0
    preset.prune.layer_rates["*"] = 0.5
    preset.model_kwargs["hidden"] = (10, 10)
    fresh = PRESETS["lenet300-mnist"]
    assert fresh.train.lr == 1.2e-3 and fresh.prune.layer_rates["*"] == 0.2 and fresh.model_kwargs == {}


def test_preset_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["mnist1d-mlp"].model = "lenet300"


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(LotteryTicketError, match="unknown preset 'lenet-mnist'; choose from lenet300-mnist, "):
        get_preset("lenet-mnist")


def test_default_preset_and_names():
    assert DEFAULT_PRESET in PRESETS and preset_names() == list(PRESETS)


@pytest.mark.parametrize("name", list(PRESETS))
def test_docs_list_every_preset_with_its_final_sparsity(name):
    row = next((line for line in DOCS.read_text().splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"docs/models.md has no row for preset {name}"
    assert re.search(rf"\| {100 * reached_sparsity(PRESETS[name]):.2f} % \|", row), row
