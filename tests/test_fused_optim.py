"""FusedOptimizer equals torch.optim's fused SGD/Adam/AdamW bit for bit, and their state dicts interchange."""

from __future__ import annotations

import pytest
import torch

from lottery_ticket.training.fused import FusedOptimizer

CASES = [
    ("sgd", dict(momentum=0.9, nesterov=False, weight_decay=1e-4), lambda ps, h: torch.optim.SGD(ps, fused=True, **h)),
    ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.0), lambda ps, h: torch.optim.SGD(ps, fused=True, **h)),
    ("sgd", dict(momentum=0.0, weight_decay=5e-4), lambda ps, h: torch.optim.SGD(ps, fused=True, **h)),
    ("adam", dict(weight_decay=1e-4), lambda ps, h: torch.optim.Adam(ps, fused=True, **h)),
    ("adamw", dict(weight_decay=1e-2), lambda ps, h: torch.optim.AdamW(ps, fused=True, **h)),
]


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(7, 5, generator=g).requires_grad_(), torch.randn(3, generator=g).requires_grad_()]


def _grads(step, params):
    g = torch.Generator().manual_seed(1000 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)


def _step_both(pairs, steps, between=None):
    """Give each (optimizer, params) pair the same gradients and step it, for every step in `steps`."""
    for step in steps:
        for optimizer, params in pairs:
            _grads(step, params)
            optimizer.step()
        if between is not None:
            between(step)


def _identical(a_params, b_params) -> bool:
    return all(torch.equal(a, b) for a, b in zip(a_params, b_params))


@pytest.mark.parametrize("kind,hyper,torch_opt", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_fused_optimizer_equals_torch_fused_bit_for_bit(kind, hyper, torch_opt):
    ours_p, theirs_p = _params(0), _params(0)
    ours = FusedOptimizer(ours_p, kind, lr=0.01, **hyper)
    theirs = torch_opt(theirs_p, dict(lr=0.01, **hyper))
    def change_lr(step):
        if step == 10:  # a changed learning rate is read on the next step
            ours.param_groups[0]["lr"] = theirs.param_groups[0]["lr"] = 0.003

    _step_both([(ours, ours_p), (theirs, theirs_p)], range(25), change_lr)
    assert _identical(ours_p, theirs_p)


@pytest.mark.parametrize("kind,hyper,torch_opt", CASES[:1] + CASES[3:], ids=["sgd", "adam", "adamw"])
def test_state_dicts_interchange_with_torch_optim(kind, hyper, torch_opt):
    ours_p, theirs_p = _params(1), _params(1)
    ours = FusedOptimizer(ours_p, kind, lr=0.01, **hyper)
    theirs = torch_opt(theirs_p, dict(lr=0.01, **hyper))
    _step_both([(ours, ours_p), (theirs, theirs_p)], range(5))
    # Swap the states across implementations, then both continue: still identical.
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    ours2_p, theirs2_p = [p.detach().clone().requires_grad_() for p in ours_p], [p.detach().clone().requires_grad_() for p in theirs_p]
    ours2 = FusedOptimizer(ours2_p, kind, lr=0.5, **hyper)
    ours2.load_state_dict(theirs_state)
    theirs2 = torch_opt(theirs2_p, dict(lr=0.5, **hyper))
    theirs2.load_state_dict(ours_state)
    assert ours2.param_groups[0]["lr"] == 0.01  # hyperparameters come from the saved state, as in torch
    _step_both([(ours2, ours2_p), (theirs2, theirs2_p)], range(5, 10))
    assert _identical(ours2_p, theirs2_p)


def test_a_state_of_another_shape_is_refused():
    ps = _params(0)
    opt = FusedOptimizer(ps, "adam", lr=0.01)
    _grads(0, ps)
    opt.step()
    saved = opt.state_dict()
    other = FusedOptimizer([torch.zeros(5, 7, requires_grad=True), torch.zeros(3, requires_grad=True)], "adam", lr=0.01)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(saved)
    with pytest.raises(ValueError, match="number of"):
        FusedOptimizer(ps[:1], "adam", lr=0.01).load_state_dict(saved)


def test_params_without_a_gradient_are_left_alone_and_zero_grad_clears():
    ps = _params(0)
    before = ps[1].detach().clone()
    opt = FusedOptimizer(ps, "sgd", lr=0.1, momentum=0.9)
    ps[0].grad = torch.ones_like(ps[0])
    opt.step()
    assert torch.equal(ps[1], before) and ps[1] not in opt.state
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_loaded_state_takes_the_parameters_dtype_and_a_float32_step():
    ps = [torch.zeros(3, 2, requires_grad=True)]
    opt = FusedOptimizer(ps, "adamw", lr=0.01)
    saved = {"state": {0: {"step": torch.tensor(4.0, dtype=torch.float64),
                           "exp_avg": torch.ones(3, 2, dtype=torch.float64),
                           "exp_avg_sq": torch.ones(3, 2, dtype=torch.float64)}},
             "param_groups": [{"params": [0], "lr": 0.02, "betas": [0.8, 0.99]}]}  # betas as JSON gives them back
    opt.load_state_dict(saved)
    state = opt.state[ps[0]]
    assert state["step"].dtype == torch.float32 and state["exp_avg"].dtype == torch.float32
    assert state["exp_avg_sq"].dtype == torch.float32
    assert opt.param_groups[0]["betas"] == (0.8, 0.99) and isinstance(opt.param_groups[0]["betas"], tuple)
    assert opt.param_groups[0]["lr"] == 0.02


@pytest.mark.parametrize("kind,torch_cls,hyper", [("sgd", torch.optim.SGD, dict(momentum=0.9)), ("sgd", torch.optim.SGD, {}),
                                                   ("adam", torch.optim.Adam, {}), ("adamw", torch.optim.AdamW, {})])
def test_defaults_and_param_group_layout_are_torchs(kind, torch_cls, hyper):
    ours_p, theirs_p = _params(2), _params(2)
    ours = FusedOptimizer(ours_p, kind, lr=0.01, **hyper)
    theirs = torch_cls(theirs_p, lr=0.01, fused=True, **hyper)
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]
    _step_both([(ours, ours_p), (theirs, theirs_p)], range(5))
    assert _identical(ours_p, theirs_p)


def test_parameters_of_two_dtypes_are_updated_in_their_own_groups():
    ours_p = [torch.randn(4, 3).requires_grad_(), torch.randn(5, dtype=torch.float64).requires_grad_()]
    theirs_p = [p.detach().clone().requires_grad_() for p in ours_p]
    ours, theirs = FusedOptimizer(ours_p, "adam", lr=0.01), torch.optim.Adam(theirs_p, lr=0.01, fused=True)
    _step_both([(ours, ours_p), (theirs, theirs_p)], range(3))
    assert _identical(ours_p, theirs_p)


def test_bad_kind_and_mismatched_state_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^kind='rmsprop' must be one of \('sgd', 'adam', 'adamw'\)$"):
        FusedOptimizer(_params(0), "rmsprop", lr=0.1)
    opt = FusedOptimizer(_params(0), "sgd", lr=0.1)
    with pytest.raises(ValueError, match=r"^the saved optimizer state has a different number of parameter groups or "
                                         r"parameters$"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [0]}]})


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("broken", ["missing", "changed signature"])
def test_without_the_private_kernels_torch_optim_fused_takes_over_with_the_same_numbers(monkeypatch, optimizer, broken):
    from torch import nn

    from lottery_ticket.config import TrainConfig
    from lottery_ticket.training import fused
    from lottery_ticket.training.optim import build_optimizer

    config = TrainConfig(optimizer=optimizer, lr=0.05, momentum=0.9 if optimizer == "sgd" else 0.0,
                         weight_decay=1e-3)

    def trained(model):
        optimizer_ = build_optimizer(config, model)
        for step in range(5):
            model.zero_grad()
            model(torch.full((4, 3), 0.1 * step + 0.3)).square().sum().backward()
            optimizer_.step()
        return optimizer_, [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ours, expected = trained(model)
    assert isinstance(ours, FusedOptimizer)

    real = fused.kernel
    if broken == "missing":
        monkeypatch.setattr(fused, "kernel", lambda name: None)
    else:  # a torch that renamed an argument: the call raises TypeError
        def renamed(name):
            fn = real(name)
            return lambda *args, **kwargs: fn(*args, **{("learning_rate" if k == "lr" else k): v for k, v in kwargs.items()})
        monkeypatch.setattr(fused, "kernel", renamed)
    monkeypatch.setattr(fused, "_USABLE", {})
    torch.manual_seed(0)
    fallback, weights = trained(nn.Linear(3, 2))
    assert not isinstance(fallback, FusedOptimizer) and fallback.param_groups[0]["fused"] is True
    assert all(torch.equal(a, b) for a, b in zip(weights, expected))
