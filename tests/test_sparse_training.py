"""Sparse-aware training: the survivors-only step equals the masked dense step, and runs only where it pays."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lottery_ticket import MagnitudePruner, PruningMask
from lottery_ticket.config import TrainConfig
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.training import Trainer
from lottery_ticket.training import calibration
from lottery_ticket.training.calibration import break_even, plan_sparse_training
from lottery_ticket.training.sparse import (CHUNK, SparseLinear, _gathered_survivor_gradient, _SparseLinearFunction,
                                           _survivor_gradient)


def mlp(seed=0):
    from lottery_ticket.models import build_model

    return build_model("mnist1d_mlp", seed=seed)


def pruned_linear(out_features=30, in_features=50, density=0.3, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    module = nn.Linear(in_features, out_features, bias=bias)
    keep = torch.rand(out_features, in_features, generator=g) < density
    with torch.no_grad():
        module.weight.mul_(keep)
    return module, keep


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("weight_grad", ["gather", "gemm"])
@pytest.mark.parametrize("input_grad", [True, False])
def test_sparse_products_equal_the_masked_dense_ones(input_grad, weight_grad, bias):
    module, keep = pruned_linear(bias=bias)
    x = torch.randn(8, 50, requires_grad=input_grad)
    grad_y = torch.randn(8, 30)
    F.linear(x, module.weight, module.bias).backward(grad_y)
    dense_x_grad = x.grad.clone() if input_grad else None
    dense_w_grad = module.weight.grad.clone()
    dense_b_grad = module.bias.grad.clone() if bias else None
    x.grad = None
    if bias:
        module.bias.grad = None
    layer = SparseLinear(module, keep, weight_grad)
    y = layer.forward(x)
    torch.testing.assert_close(y, F.linear(x, module.weight, module.bias))
    y.backward(grad_y)
    torch.testing.assert_close(layer.values.grad, dense_w_grad.flatten()[keep.flatten()])
    if bias:
        torch.testing.assert_close(module.bias.grad, dense_b_grad)
    if input_grad:
        torch.testing.assert_close(x.grad, dense_x_grad)
    else:
        assert x.grad is None


def test_sparse_function_passes_gradcheck_and_handles_leading_dims():
    module, keep = pruned_linear(out_features=6, in_features=9, density=0.4)
    layer = SparseLinear(module, keep)
    x = torch.randn(3, 9, dtype=torch.double, requires_grad=True)
    values = layer.values.detach().double().requires_grad_()
    bias = module.bias.detach().double().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, v, b: _SparseLinearFunction.apply(a, v, b, layer), (x, values, bias))
    x3 = torch.randn(2, 4, 9)
    torch.testing.assert_close(layer.forward(x3), F.linear(x3, module.weight, module.bias))


def test_both_survivor_gradient_kernels_are_exact_across_chunk_boundaries():
    # More survivors than one chunk: the chunked fallback must cover every survivor exactly once, and the fused
    # EmbeddingBag kernel must give the same numbers.
    module, keep = pruned_linear(out_features=200, in_features=200, density=0.5, seed=3)
    layer = SparseLinear(module, keep)
    assert layer.values.numel() > CHUNK
    x, grad_y = torch.randn(5, 200), torch.randn(5, 200)
    expected = (grad_y.t() @ x).flatten()[keep.flatten()]
    grad_t, x_t = grad_y.t().contiguous(), x.t().contiguous()
    torch.testing.assert_close(_gathered_survivor_gradient(layer, grad_t, x_t), expected)
    # In float64 too: the fallback allocates in the inputs' dtype.
    exact = _gathered_survivor_gradient(layer, grad_t.double(), x_t.double())
    assert exact.dtype == torch.float64
    torch.testing.assert_close(exact, (grad_y.double().t() @ x.double()).flatten()[keep.flatten()])
    torch.testing.assert_close(_survivor_gradient(layer, grad_t, x_t), expected)
    layer.forward(x).backward(grad_y)
    torch.testing.assert_close(layer.values.grad, expected)


def test_an_unknown_weight_gradient_variant_is_refused_by_name():
    module, keep = pruned_linear()
    with pytest.raises(ValueError, match="weight_grad='dense' must be one of"):
        SparseLinear(module, keep, "dense")


def test_write_back_touches_only_survivors_and_read_values_takes_them_back():
    module, keep = pruned_linear()
    layer = SparseLinear(module, keep)
    with torch.no_grad():
        layer.values.add_(1.0)
    layer.write_back_()
    assert torch.all(module.weight[~keep] == 0)
    torch.testing.assert_close(module.weight[keep], layer.values.detach())
    with torch.no_grad():
        module.weight[keep] = 7.0
    layer.read_values_()
    assert torch.all(layer.values == 7.0)


def sparse_config(kind, mode, **kw):
    hyper = {"sgd": dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3),
             "adam": dict(optimizer="adam", lr=2e-3, weight_decay=1e-4),
             "adamw": dict(optimizer="adamw", lr=2e-3, weight_decay=1e-2)}[kind]
    return TrainConfig(**{"batch_size": 100, "budget": "300it", "eval_every": "100it", "sparse_training": mode,
                          **hyper, **kw})


@pytest.mark.parametrize("kind,weight_grad", [("sgd", "gather"), ("adam", "gather"), ("adamw", "gather"),
                                               ("sgd", "gemm"), ("adam", "gemm")])
def test_sparse_training_follows_the_masked_dense_run_for_300_steps(mnist1d, kind, weight_grad, monkeypatch):
    # "auto" with a break-even that picks `weight_grad` for every pruned layer
    limits = {"gather": 1.0, "gemm": 1.0} if weight_grad == "gather" else {"gather": 0.0, "gemm": 1.0}
    monkeypatch.setattr(calibration, "break_even", lambda *a: limits)
    monkeypatch.setattr(calibration.plan_sparse_training, "__defaults__", (calibration.break_even,))
    runs = {}
    for mode in ("off", "auto"):
        model = mlp()
        mask = MagnitudePruner().prune(model, PruningMask(model), 0.9)
        trainer = Trainer(sparse_config(kind, mode), mnist1d)
        metrics = trainer.train(model, mask)
        assert bool(trainer.sparse) == (mode == "auto")
        assert all(layer.weight_grad == weight_grad for layer in trainer.sparse.layers.values())
        assert mask.is_applied(model)  # pruned weights exactly 0 on both paths
        assert all("forward" not in m.__dict__ for m in model.modules())  # an ordinary module again
        runs[mode] = (model, metrics)
    (dense, dense_metrics), (sparse, sparse_metrics) = runs["off"], runs["auto"]
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters()):
        torch.testing.assert_close(q, p, atol=2e-4, rtol=1e-3, msg=name)
    for a, b in zip(dense_metrics["history"], sparse_metrics["history"]):
        assert a["iteration"] == b["iteration"]
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-3
        assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.005


def test_resuming_a_sparse_run_matches_the_uninterrupted_one_exactly(mnist1d, tmp_path):
    def masked():
        model = mlp()
        return model, MagnitudePruner().prune(model, PruningMask(model), 0.9)

    reference, mask = masked()
    ref_metrics = Trainer(sparse_config("adam", "on"), mnist1d).train(reference, mask)

    class Stop(Exception):
        pass

    def crash_at_250(iteration, model):
        if iteration == 250:
            raise Stop

    interrupted, mask = masked()
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Stop):
        Trainer(sparse_config("adam", "on"), mnist1d, checkpoint_path=ckpt, checkpoint_every=70).train(
            interrupted, mask, on_step=crash_at_250)
    assert all("forward" not in m.__dict__ for m in interrupted.modules())  # removed even when training raised
    resumed, mask = masked()
    metrics = Trainer(sparse_config("adam", "on"), mnist1d, checkpoint_path=ckpt, checkpoint_every=70).train(resumed, mask)
    for p, q in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert metrics["history"] == ref_metrics["history"]


def test_auto_chooses_per_layer_from_the_break_even_density(mnist1d):
    model = mlp()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.9)
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and f"{n}.weight" in mask.names]
    densities = {n: float(mask[f"{n}.weight"].sum()) / mask[f"{n}.weight"].numel() for n in linear}
    pruned = sorted(n for n in linear if densities[n] < 1.0)
    never = plan_sparse_training(model, mask, "auto", 100, break_even=lambda *a: {"gather": 0.0, "gemm": 0.0})
    gemm = plan_sparse_training(model, mask, "auto", 100, break_even=lambda *a: {"gather": 0.0, "gemm": 1.0})
    gather = plan_sparse_training(model, mask, "auto", 100, break_even=lambda *a: {"gather": 1.0, "gemm": 1.0})
    assert not never
    assert sorted(gemm.layers) == pruned and {l.weight_grad for l in gemm.layers.values()} == {"gemm"}
    assert sorted(gather.layers) == pruned and {l.weight_grad for l in gather.layers.values()} == {"gather"}
    # Between: only the layers at or below the break-even density, the sparsest with the gathered gradient.
    low, high = sorted(densities[n] for n in pruned)[0], max(densities[n] for n in pruned)
    mixed = plan_sparse_training(model, mask, "auto", 100, break_even=lambda *a: {"gather": low, "gemm": high})
    assert sorted(mixed.layers) == pruned
    assert all(l.weight_grad == ("gather" if densities[n] <= low else "gemm") for n, l in mixed.layers.items())
    some = plan_sparse_training(model, mask, "auto", 100, break_even=lambda *a: {"gather": 0.0, "gemm": low})
    assert sorted(some.layers) == sorted(n for n in pruned if densities[n] <= low)
    everything = {"gather": 1.0, "gemm": 1.0}
    assert not plan_sparse_training(model, mask, "auto", None, break_even=lambda *a: everything)  # batch unknown
    assert not plan_sparse_training(model, mask, "off", 100, break_even=lambda *a: everything)
    with pytest.raises(LotteryTicketError, match="sparse_training='fast' is unknown"):
        plan_sparse_training(model, mask, "fast", 100)


def test_only_the_first_layer_is_calibrated_without_an_input_gradient(mnist1d):
    model = mlp()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.9)
    asked = []

    def record(o, i, b, input_grad):
        asked.append(input_grad)
        return {"gather": 1.0, "gemm": 1.0}

    plan_sparse_training(model, mask, "auto", 100, break_even=record)
    assert asked[0] is False and all(asked[1:]) and len(asked) >= 2


def test_break_even_is_the_highest_density_that_saves_the_margin_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def fake(out_f, in_f, batch, input_grad, density):
        # gemm costs 0.3 + density, gather 3 x density (of a dense pass's 1.0)
        calls.append(density)
        return 1.0, 3.0 * density, 0.3 + density

    # gemm: 0.3 + d <= 0.9 first at d = 0.5; gather: 3d <= 0.9 and 3d <= 0.3 + d first at d = 0.12 (0.36 <= 0.42)
    assert break_even(4, 4, 2, True, measure=fake) == {"gemm": 0.5, "gather": 0.12}
    assert calls == list(calibration.DENSITIES) * calibration.SWEEPS
    assert calibration.cache_path().is_file()
    assert break_even(4, 4, 2, True) == {"gemm": 0.5, "gather": 0.12}  # cached: not measured again
    assert len(calls) == len(calibration.DENSITIES) * calibration.SWEEPS
    assert break_even(4, 4, 2, True, measure=lambda *a: (1.0, 2.0, 2.0)) == {"gather": 0.0, "gemm": 0.0}
    calibration.cache_path().write_text("{damaged")
    assert break_even(5, 5, 2, True, measure=fake) == {"gemm": 0.5, "gather": 0.12}  # damaged cache: measured again


def test_a_sweep_flattered_by_noise_does_not_decide(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    sweeps = iter(range(100))

    def noisy(out_f, in_f, batch, input_grad, density):
        sweep = next(sweeps) // len(calibration.DENSITIES)
        # the second sweep sees the dense pass slowed by a load burst: everything looks worth it
        dense = 5.0 if sweep == 1 else 1.0
        return dense, 3.0 * density, 0.3 + density

    assert break_even(4, 4, 2, True, measure=noisy) == {"gemm": 0.5, "gather": 0.12}


def test_a_tiny_layer_keeps_the_dense_step_when_sparse_is_measured_slower(tmp_path, monkeypatch):
    # Both choices forced on a tiny layer through the measurement: slower sparse passes -> dense, faster -> sparse.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model = nn.Sequential(nn.Linear(8, 8))
    mask = PruningMask(model)
    keep = torch.zeros(8, 8, dtype=torch.bool)
    keep[:, 0] = True  # density 1/8
    mask.masks["0.weight"] = keep
    slower = break_even(8, 8, 4, False, measure=lambda *a: (1.0, 1.5, 1.2))
    assert not plan_sparse_training(model, mask, "auto", 4, break_even=lambda *a: slower)
    faster = break_even(8, 8, 4, False, measure=lambda *a: (1.0, 0.2, 0.5))
    plan = plan_sparse_training(model, mask, "auto", 4, break_even=lambda *a: faster)
    assert list(plan.layers) == ["0"] and plan.layers["0"].weight_grad == "gather"
    # And the real timer on this machine: three positive medians, and the plan follows the cached result.
    assert all(t > 0 for t in calibration.time_passes(8, 8, 4, False, 0.125, repeats=5))
    measured = break_even(8, 8, 4, False)
    assert bool(plan_sparse_training(model, mask, "auto", 4)) == (max(measured.values()) >= 0.125)


def test_the_config_refuses_an_unknown_mode():
    with pytest.raises(LotteryTicketError, match="sparse_training='yes' is unknown; choose auto, on or off"):
        TrainConfig(sparse_training="yes")


def test_subclasses_and_tied_weights_keep_the_dense_step():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 6)
            self.b = nn.Linear(6, 6)
            self.b.weight = self.a.weight  # tied
            self.attn = nn.MultiheadAttention(6, 2)  # out_proj is a Linear subclass read by F.multi_head_attention_forward
            self.c = nn.Linear(6, 6)

        def forward(self, x):
            return self.c(self.b(self.a(x)))

    model = Tied()
    mask = PruningMask(model)
    for name in mask.names:
        keep = torch.ones_like(mask[name])
        keep.view(-1)[0] = False
        mask.masks[name] = keep
    plan = plan_sparse_training(model, mask, "on", 4)
    assert list(plan.layers) == ["c"]


def test_a_layer_whose_weight_is_read_outside_its_forward_is_one_clear_error(mnist1d):
    class Bypass(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(40, 10)

        def forward(self, x):
            return F.linear(x.flatten(1), self.fc.weight, self.fc.bias)

    model = Bypass()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    with pytest.raises(LotteryTicketError, match=r"^layer 'fc' got no gradient through its forward: the model reads its "
                                                 r"weight directly \(F\.linear\(x, layer\.weight\)\?\); train with "
                                                 r"sparse_training='off'$"):
        Trainer(sparse_config("adam", "on"), mnist1d).train(model, mask)
    assert "forward" not in model.fc.__dict__


def test_callbacks_that_read_weights_see_the_trained_survivors(mnist1d):
    model = mlp()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.9)
    trainer = Trainer(sparse_config("adam", "on", budget="40it"), mnist1d)
    seen = []

    def check(iteration, m):
        for layer in trainer.sparse.layers.values():
            seen.append(torch.equal(layer.module.weight.detach().flatten()[layer.flat_index], layer.values.detach()))

    trainer.train(model, mask, on_step=check)
    assert len(seen) == 40 * len(trainer.sparse.layers) and all(seen)
    for layer in trainer.sparse.layers.values():  # and after training, the weights hold the final survivors
        assert torch.equal(layer.module.weight.detach().flatten()[layer.flat_index], layer.values.detach())


def test_the_optimizer_trains_values_not_the_dense_weights_and_removal_is_idempotent(mnist1d):
    model = mlp()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.9)
    plan = plan_sparse_training(model, mask, "on", 100)
    trainable = plan.trainable(model.parameters())
    dense = {id(layer.module.weight) for layer in plan.layers.values()}
    assert plan.layers and not dense & {id(p) for p in trainable}
    assert all(any(p is layer.values for p in trainable) for layer in plan.layers.values())
    plan.install()
    plan.remove()
    plan.remove()  # a second removal (a finally after an error) is harmless
    assert all("forward" not in m.__dict__ for m in model.modules())
