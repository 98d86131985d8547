"""Property tests (hypothesis) for the pruners: masks only shrink, counts are exact, global ranks by magnitude."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask, RandomPruner
from lottery_ticket.mask import named_parameters

shapes = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=4)


def model_with(layer_shapes, seed, ties):
    layers = nn.ModuleList(nn.Linear(i, o, bias=False) for o, i in layer_shapes)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in layers:
            w = torch.randn(layer.weight.shape, generator=g)
            layer.weight.copy_(w.round() if ties else w)  # rounding makes many exact ties
    return layers


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 10_000), st.booleans(), st.floats(0, 0.99), st.floats(0, 0.99), st.booleans())
def test_masks_only_shrink_and_the_count_is_exact(layer_shapes, seed, ties, s1, s2, global_pruning):
    model = model_with(layer_shapes, seed, ties)
    pruner = MagnitudePruner(global_pruning=global_pruning, min_density=None)  # the bare algorithm
    sizes = [o * i for o, i in layer_shapes]
    for s in (s1, max(s1, s2)):
        survivors = sum(sizes) - round(s * sum(sizes)) if global_pruning else sum(n - round(s * n) for n in sizes)
        if survivors == 0:  # a target that rounds to every weight is refused, not a ticket with nothing left
            with pytest.raises(LotteryTicketError, match="prunes every remaining weight"):
                pruner.prune(model, PruningMask(model), s)
            return
    first = pruner.prune(model, PruningMask(model), s1)
    second = pruner.prune(model, first, max(s1, s2))
    for n in first:
        assert not (second[n] & ~first[n]).any()
    if global_pruning:
        assert second.num_pruned == max(round(max(s1, s2) * first.num_total), first.num_pruned)
    else:
        for n in second:
            numel = second[n].numel()
            assert numel - int(second[n].sum()) == max(round(max(s1, s2) * numel), numel - int(first[n].sum()))


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 10_000), st.booleans(), st.floats(0.01, 0.99))
def test_global_pruning_ranks_by_magnitude(layer_shapes, seed, ties, sparsity):
    total = sum(o * i for o, i in layer_shapes)
    sparsity = min(sparsity, (total - 1) / total)  # leave a weight: an empty ticket is refused
    model = model_with(layer_shapes, seed, ties)
    mask = MagnitudePruner(global_pruning=True, min_density=None).prune(model, PruningMask(model), sparsity)
    params = named_parameters(model)
    kept = [params[n].detach().abs()[mask[n]] for n in mask]
    pruned = [params[n].detach().abs()[~mask[n]] for n in mask]
    kept, pruned = torch.cat(kept), torch.cat(pruned)
    if len(kept) and len(pruned):
        assert kept.min() >= pruned.max()


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 10_000), st.floats(0, 0.99))
def test_random_control_keeps_every_layers_count(layer_shapes, seed, sparsity):
    total = sum(o * i for o, i in layer_shapes)
    sparsity = min(sparsity, (total - 1) / total)  # leave a weight: an empty ticket is refused
    model = model_with(layer_shapes, seed, False)
    ticket = MagnitudePruner(global_pruning=True, min_density=None).prune(model, PruningMask(model), sparsity)
    control = RandomPruner(seed).like(ticket)
    assert all(int(control[n].sum()) == int(ticket[n].sum()) for n in ticket)
