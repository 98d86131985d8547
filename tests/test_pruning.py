"""Pruners: exact counts, magnitude order, masks only shrink, deterministic ties."""

import pytest
import torch
from torch import nn

from conftest import TinyMLP
from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask, RandomPruner
from lottery_ticket.mask import named_parameters


def kept_and_pruned_magnitudes(model, mask, names=None):
    params = named_parameters(model)
    names = names or mask.names
    kept = torch.cat([params[n].detach().abs()[mask[n]] for n in names])
    pruned = torch.cat([params[n].detach().abs()[~mask[n]] for n in names])
    return kept, pruned


def test_global_prune_count_is_exact_and_every_kept_weight_outweighs_every_pruned(tiny_mlp):
    mask = PruningMask(tiny_mlp)
    new = MagnitudePruner(global_pruning=True).prune(tiny_mlp, mask, 0.73)
    assert new.num_pruned == round(0.73 * mask.num_total)
    kept, pruned = kept_and_pruned_magnitudes(tiny_mlp, new)
    assert kept.min() >= pruned.max()


def test_layerwise_prune_hits_each_layers_target_exactly(tiny_mlp):
    new = MagnitudePruner(global_pruning=False).prune(tiny_mlp, PruningMask(tiny_mlp), 0.5)
    for name, s in new.layer_sparsities.items():
        n = new[name].numel()
        assert round(s * n) == round(0.5 * n)
        kept, pruned = kept_and_pruned_magnitudes(tiny_mlp, new, [name])
        assert kept.min() >= pruned.max()


def test_masks_only_shrink_even_when_pruned_weights_are_large(tiny_mlp):
    pruner = MagnitudePruner()
    mask = pruner.prune(tiny_mlp, PruningMask(tiny_mlp), 0.5)
    with torch.no_grad():  # make the pruned weights huge: they must still stay pruned
        for n, p in named_parameters(tiny_mlp).items():
            if n in mask.masks:
                p[~mask[n]] = 100.0
    newer = pruner.prune(tiny_mlp, mask, 0.8)
    for n in mask:
        assert not (newer[n] & ~mask[n]).any()
    assert newer.num_pruned == round(0.8 * mask.num_total)


def test_ties_are_broken_deterministically_and_exactly():
    model = TinyMLP()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)  # every weight ties
    a = MagnitudePruner().prune(model, PruningMask(model), 0.3)
    b = MagnitudePruner().prune(model, PruningMask(model), 0.3)
    assert a == b and a.num_pruned == round(0.3 * a.num_total)


def test_per_round_fraction_prunes_round_rate_times_remaining_with_layer_rates(tiny_mlp):
    pruner = MagnitudePruner(global_pruning=False, layer_rates={"fc2.weight": 0.1, "*": 0.2})
    mask = PruningMask(tiny_mlp)
    for _ in range(3):
        before = {n: int(mask[n].sum()) for n in mask}
        mask = pruner.prune_fraction(tiny_mlp, mask, 0.2)
        assert int(mask["fc1.weight"].sum()) == before["fc1.weight"] - round(0.2 * before["fc1.weight"])
        assert int(mask["fc2.weight"].sum()) == before["fc2.weight"] - round(0.1 * before["fc2.weight"])


def test_excluded_layers_stay_dense_and_global_target_counts_only_eligible(tiny_mlp):
    mask = MagnitudePruner(exclude=["fc2.*"]).prune(tiny_mlp, PruningMask(tiny_mlp), 0.5)
    assert mask.layer_sparsities["fc2.weight"] == 0.0
    assert mask.layer_sparsities["fc1.weight"] == 0.5


def test_bad_targets_are_one_line_errors(tiny_mlp):
    mask = PruningMask(tiny_mlp)
    for bad in (1.0, -0.1, float("nan"), 90, "x"):
        with pytest.raises(LotteryTicketError, match="target_sparsity"):
            MagnitudePruner().prune(tiny_mlp, mask, bad)


def test_random_pruning_keeps_each_layers_count_and_is_seeded(tiny_mlp):
    ticket = MagnitudePruner(global_pruning=True).prune(tiny_mlp, PruningMask(tiny_mlp), 0.8)
    control = RandomPruner(seed=3).like(ticket)
    for n in ticket:
        assert int(control[n].sum()) == int(ticket[n].sum())
    assert control == RandomPruner(seed=3).like(ticket)
    assert control != RandomPruner(seed=4).like(ticket)
    assert control != ticket


def test_random_prune_never_revives_and_counts_exactly(tiny_mlp):
    first = RandomPruner(0).prune(tiny_mlp, PruningMask(tiny_mlp), 0.5)
    second = RandomPruner(1).prune(tiny_mlp, first, 0.75)
    for n in first:
        assert not (second[n] & ~first[n]).any()
        assert second[n].numel() - int(second[n].sum()) == round(0.75 * second[n].numel())


def test_global_prune_handles_layers_of_very_different_sizes():
    model = nn.Sequential(nn.Linear(1000, 500, bias=False), nn.Linear(500, 2, bias=False))
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.9)
    assert mask.num_pruned == round(0.9 * mask.num_total)
