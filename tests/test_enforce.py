"""Masked weights stay exactly zero through training, whatever the optimizer does."""

import pytest
import torch
from torch import nn

from conftest import TinyMLP
from lottery_ticket import MagnitudePruner, MaskEnforcer, PruningMask, enforce_on_every_step, reset_optimizer_state
from lottery_ticket.mask import named_parameters

OPTIMIZERS = {
    "sgd-momentum-wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-3),
    "sgd-nesterov-wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-3),
    "adam-wd": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
}


def pruned_weights_are_zero(model, mask):
    params = named_parameters(model)
    return all(torch.all(params[n].detach()[~mask[n]] == 0) for n in mask)


def dense_steps_then_pruned(make_optimizer, x, y):
    """Build momentum / Adam moments on the dense net first, so stale state would revive pruned weights."""
    model = TinyMLP()
    optimizer = make_optimizer(model.parameters())
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.8)
    mask.apply(model)
    return model, optimizer, mask


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_pruned_weights_stay_exactly_zero_under_momentum_and_weight_decay(make_optimizer, toy_data):
    x, y = toy_data
    model, optimizer, mask = dense_steps_then_pruned(make_optimizer, x, y)
    at_prune = model.fc1.weight.detach().clone()
    enforcer = MaskEnforcer(mask, model)
    for _ in range(30):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        enforcer.step(optimizer)
        assert pruned_weights_are_zero(model, mask)
    survivors = mask["fc1.weight"]
    assert not torch.equal(model.fc1.weight.detach()[survivors], at_prune[survivors])  # the rest did train


@pytest.mark.parametrize("make_optimizer", [*OPTIMIZERS.values(), lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True)],
                         ids=[*OPTIMIZERS.keys(), "adam-amsgrad"])
def test_masked_gradients_alone_keep_pruned_weights_exactly_zero_with_a_fresh_optimizer(make_optimizer, toy_data, monkeypatch):
    """The trainer's fast path: no weight pass at all, yet zeros stay exact (zero weight, grad and state => zero update)."""
    x, y = toy_data
    model, _, mask = dense_steps_then_pruned(make_optimizer, x, y)
    optimizer = make_optimizer(model.parameters())  # fresh, as the trainer builds one every round
    enforcer = MaskEnforcer(mask, model, optimizer)
    assert enforcer.weight_pass_free_for is optimizer
    monkeypatch.setattr(enforcer, "zero_weights", lambda: pytest.fail("the weight pass ran"))
    before = model.fc1.weight.detach().clone()
    for _ in range(30):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        enforcer.step(optimizer)
        assert pruned_weights_are_zero(model, mask)
    assert not torch.equal(model.fc1.weight.detach(), before)


class NoisySGD(torch.optim.SGD):
    """An update that is not 0 for a zero gradient (like noise injection): only the weight pass can keep zeros."""

    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(1e-3)


@pytest.mark.parametrize("case", ["unknown optimizer", "state from before the mask"])
def test_the_weight_pass_runs_whenever_the_gradients_alone_cannot_guarantee_zeros(case, toy_data):
    x, y = toy_data
    if case == "unknown optimizer":
        model = TinyMLP()
        mask = MagnitudePruner().prune(model, PruningMask(model), 0.8)
        mask.apply(model)
        optimizer = NoisySGD(model.parameters(), lr=0.1)
    else:  # momentum built on the dense net would move pruned weights on every step
        model, optimizer, mask = dense_steps_then_pruned(OPTIMIZERS["sgd-momentum-wd"], x, y)
    enforcer = MaskEnforcer(mask, model, optimizer)
    assert enforcer.weight_pass_free_for is None
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        enforcer.step(optimizer)
        assert pruned_weights_are_zero(model, mask)


def test_without_enforcement_momentum_would_revive_pruned_weights(toy_data):
    """The control for the test above: proves the scenario really revives weights."""
    x, y = toy_data
    model, optimizer, mask = dense_steps_then_pruned(OPTIMIZERS["sgd-momentum-wd"], x, y)
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert not pruned_weights_are_zero(model, mask)


def test_masked_gradients_keep_optimizer_state_of_pruned_weights_at_zero(toy_data):
    x, y = toy_data
    model = TinyMLP()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    mask.apply(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    enforcer = MaskEnforcer(mask, model)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        enforcer.step(optimizer)
    state = optimizer.state[model.fc1.weight]
    assert torch.all(state["exp_avg"][~mask["fc1.weight"]] == 0)
    assert torch.all(state["exp_avg_sq"][~mask["fc1.weight"]] == 0)


def test_reset_clears_momentum_buffers(toy_data):
    x, y = toy_data
    model = TinyMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert len(optimizer.state) > 0
    reset_optimizer_state(optimizer)
    assert len(optimizer.state) == 0


def test_step_hooks_enforce_the_mask_for_training_code_that_knows_no_masks(toy_data):
    x, y = toy_data
    model, other = TinyMLP(), TinyMLP()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.7)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    other_optimizer = torch.optim.SGD(other.parameters(), lr=0.1)
    with enforce_on_every_step(mask, model):
        for _ in range(10):
            optimizer.zero_grad()
            other_optimizer.zero_grad()
            (nn.functional.cross_entropy(model(x), y) + nn.functional.cross_entropy(other(x), y)).backward()
            optimizer.step()
            other_optimizer.step()
            assert pruned_weights_are_zero(model, mask)
    assert not pruned_weights_are_zero(other, mask)  # hooks touch only the masked model's optimizer
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()  # hooks are gone once the block ends
    assert not pruned_weights_are_zero(model, mask)


def test_the_enforcer_binds_only_pruned_layers_not_exempt_ones_in_their_dtype_and_trusts_fresh_fused_optimizers():
    from lottery_ticket.training.fused import FusedOptimizer

    model = TinyMLP().double()
    mask = PruningMask(model)
    names = mask.names
    pruned = mask.copy()
    keep = pruned.masks[names[0]].clone()
    keep.view(-1)[:3] = False
    pruned.masks[names[0]] = keep  # only the first layer has pruned weights
    enforcer = MaskEnforcer(pruned, model)
    params = named_parameters(model)
    assert [id(p) for p in enforcer.params] == [id(params[names[0]])]  # fully dense layers cost nothing
    assert enforcer.keep[0].dtype == torch.float64
    assert MaskEnforcer(pruned, model, exempt=[names[0]]).params == []  # sparse-trained layers are not masked
    fresh = FusedOptimizer(list(model.parameters()), "adam", lr=1e-3)
    assert MaskEnforcer(pruned, model, fresh).weight_pass_free_for is fresh
    used = FusedOptimizer(list(model.parameters()), "adam", lr=1e-3)
    used.state[params[names[0]]] = {}
    assert MaskEnforcer(pruned, model, used).weight_pass_free_for is None  # state from before: the pass runs
