"""SGD, Adam and AdamW as torch.optim's `fused=True` runs them: the same ATen kernels, bit for bit, without the wrapper.

Why not torch.optim itself: its `step()` imports `torch._dynamo` on first use (~1.7 s, more than a short run's
training) and spends ~90 µs of Python per step on LeNet-300-100, about a tenth of the step. The update is the
fused kernel either way (`torch._fused_sgd_`, `torch._fused_adam_`, `torch._fused_adamw_`), so the weights after
every step are identical to torch.optim's; `state_dict()` has torch.optim's layout, so checkpoints written by
either load into the other.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

KINDS = ("sgd", "adam", "adamw")
KERNELS = {"sgd": "_fused_sgd_", "adam": "_fused_adam_", "adamw": "_fused_adamw_"}
_USABLE: dict[str, bool] = {}


def kernel(name: str):
    """torch's private fused kernel `name`, or None where this torch has none."""
    return getattr(torch, name, None)


def kernels_usable(kind: str) -> bool:
    """Whether this torch has `kind`'s private kernel with the signature FusedOptimizer calls: tried once, on a
    one-element tensor. A torch that renamed or changed it gets torch.optim(fused=True) instead (optim.py): the
    same kernel behind torch's own wrapper, slower to start, the same numbers."""
    if kind not in _USABLE:
        try:
            p = torch.zeros(1, requires_grad=True)
            p.grad = torch.zeros(1)
            probe = FusedOptimizer([p], kind, lr=0.1, momentum=0.9 if kind == "sgd" else 0.0)
            probe.step()
            probe.step()
            _USABLE[kind] = bool(torch.isfinite(p).all())
        except (AttributeError, TypeError, RuntimeError):
            _USABLE[kind] = False
    return _USABLE[kind]


class FusedOptimizer:
    """One parameter group; `param_groups` and `state` behave like torch.optim's (set_lr_, state.clear())."""

    # A weight that is 0 with gradient 0 and state 0 gets an update of exactly 0 (enforce.MaskEnforcer relies on it).
    zero_preserving = True

    def __init__(self, params: Iterable[torch.Tensor], kind: str, *, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float | None = None, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} must be one of {KINDS}")
        self.kind = kind
        if weight_decay is None:  # torch's defaults: AdamW decays by 0.01, SGD and Adam not at all
            weight_decay = 0.01 if kind == "adamw" else 0.0
        group: dict[str, Any] = {"params": list(params), "lr": lr, "weight_decay": weight_decay, "maximize": False,
                                 "foreach": None, "differentiable": False, "fused": True}
        if kind == "sgd":
            group.update(momentum=momentum, dampening=0.0, nesterov=nesterov)
        else:
            group.update(betas=tuple(betas), eps=eps, amsgrad=False, capturable=False,
                         decoupled_weight_decay=kind == "adamw")
        self.param_groups = [group]
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        with_grad = [p for p in group["params"] if p.grad is not None]
        for params in _by_device_and_dtype(with_grad):
            grads = [p.grad for p in params]
            if self.kind == "sgd":
                self._sgd(group, params, grads)
            else:
                self._adam(group, params, grads)

    def _sgd(self, group, params, grads) -> None:
        momentum = group["momentum"]
        buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params] if momentum else []
        # torch.optim.SGD's rule: the kernel copies the gradient into fresh buffers only when none exists yet.
        first = bool(momentum) and all(b is None for b in buffers)
        if first:
            buffers = [torch.empty_like(g) for g in grads]
        kernel(KERNELS["sgd"])(params, grads, buffers, weight_decay=group["weight_decay"], momentum=momentum,
                          lr=group["lr"], dampening=group["dampening"], nesterov=group["nesterov"],
                          maximize=group["maximize"], is_first_step=first)
        for p, b in zip(params, buffers):
            self.state.setdefault(p, {})["momentum_buffer"] = b

    def _adam(self, group, params, grads) -> None:
        for p in params:
            if p not in self.state:
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        fused = kernel(KERNELS["adamw"] if group["decoupled_weight_decay"] else KERNELS["adam"])
        beta1, beta2 = group["betas"]
        fused(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], steps,
               amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
               eps=group["eps"], maximize=group["maximize"])

    # ---- torch.optim's state_dict layout: params by index, state only for params that have some ----------------
    def state_dict(self) -> dict[str, Any]:
        group = self.param_groups[0]
        index = {id(p): i for i, p in enumerate(group["params"])}
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": [{**group, "params": list(range(len(group["params"])))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        params = self.param_groups[0]["params"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(params):
            raise ValueError("the saved optimizer state has a different number of parameter groups or parameters")
        position = {saved: i for i, saved in enumerate(groups[0]["params"])}
        state: dict[torch.Tensor, dict[str, Any]] = {}
        for saved_index, values in state_dict["state"].items():
            p = params[position[int(saved_index)]]
            restored = {}
            for key, value in values.items():  # SGD's and Adam's states are all tensors
                if key == "step":
                    restored[key] = value.to(dtype=torch.float32, device=p.device)
                else:
                    if value.shape != p.shape:
                        raise ValueError(f"saved optimizer state {key!r} has shape {tuple(value.shape)}, "
                                         f"the parameter {tuple(p.shape)}")
                    restored[key] = value.to(dtype=p.dtype, device=p.device)
            state[p] = restored
        hyper = {k: v for k, v in groups[0].items() if k != "params" and k in self.param_groups[0]}
        if "betas" in hyper:
            hyper["betas"] = tuple(hyper["betas"])
        self.param_groups[0].update(hyper)
        self.state = state


def _by_device_and_dtype(params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[tuple, list[torch.Tensor]] = {}
    for p in params:
        groups.setdefault((p.device, p.dtype), []).append(p)
    return list(groups.values())
