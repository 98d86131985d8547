"""Keeping pruned weights at exactly zero while an optimizer trains the rest.

The step is: zero the pruned gradients, optimizer.step(), zero the pruned weights. Zeroing the
gradients keeps momentum and Adam moments of pruned weights at zero (so they carry no junk into
later steps); zeroing the weights afterwards makes the result exact whatever the optimizer does
(weight decay, AdamW's decoupled decay, eps terms). Optimizer state is cleared on every reset or
rewind, because moments built up for the previous round's weights do not belong to the new round.

The weight pass is skipped when it provably changes nothing: for SGD (momentum, Nesterov, weight decay),
Adam/AdamW (weight decay, amsgrad) and plain gradient descent, a weight that is 0, whose gradient is 0 and whose
optimizer state is 0 gets an update of exactly 0. An optimizer handed over with empty state builds its state
only from masked gradients, so it qualifies; any other optimizer, or one with state from before, gets the pass.
That halves the enforcement cost of our trainer's step.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch import nn

from .mask import PruningMask, named_parameters

# Optimizers whose update of an element is exactly 0 when its weight, gradient and state are all 0.
# Our FusedOptimizer (training/fused.py) runs the same kernels and says so with a `zero_preserving` class attribute.
ZERO_PRESERVING_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


class MaskEnforcer:
    """A mask bound to one model's parameters, with the masks cached on the parameters' device and dtype."""

    def __init__(self, mask: PruningMask, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 exempt: Iterable[str] = ()):
        """`exempt`: layers trained through their survivors (training/sparse.py): no dense gradient to mask, and
        their pruned weights are never written."""
        mask.validate(model)
        # Checked now, not per step: only state built under this enforcer is known to be 0 at pruned positions.
        fresh = optimizer is not None and not optimizer.state
        zero_preserving = type(optimizer) in ZERO_PRESERVING_OPTIMIZERS or getattr(type(optimizer), "zero_preserving", False)
        self.weight_pass_free_for = optimizer if fresh and zero_preserving else None
        params = named_parameters(model)
        # Fully dense layers need no work: the dense round of IMP then trains at the bare step's speed.
        exempt = set(exempt)
        names = [n for n in mask.names if n not in exempt and not bool(mask[n].all())]
        self.params = [params[n] for n in names]
        self.keep = [mask[n].to(device=params[n].device, dtype=params[n].dtype) for n in names]

    @torch.no_grad()
    def zero_grads(self) -> None:
        grads = [p.grad for p in self.params]
        # `None not in grads` would compare tensors with == (34 us for LeNet's 3 layers, more than the masking itself)
        if all(g is not None for g in grads):
            if grads:
                torch._foreach_mul_(grads, self.keep)
            return
        pairs = [(g, k) for g, k in zip(grads, self.keep) if g is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [k for _, k in pairs])

    @torch.no_grad()
    def zero_weights(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.keep)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """optimizer.step() with the mask enforced on both sides of it (the weight pass only where it can matter)."""
        self.zero_grads()
        optimizer.step()
        if optimizer is not self.weight_pass_free_for:
            self.zero_weights()


def reset_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Forget momentum buffers, Adam moments and step counts (call on every reset/rewind)."""
    optimizer.state.clear()


@contextlib.contextmanager
def enforce_on_every_step(mask: PruningMask, model: nn.Module) -> Iterator[MaskEnforcer]:
    """Enforce `mask` around every optimizer.step() that touches `model`'s parameters.

    For training functions that know nothing of masks: global optimizer hooks zero the pruned
    gradients before each step and the pruned weights after it. Our own Trainer calls
    MaskEnforcer.step explicitly instead, so the enforcement is visible in its step.
    """
    enforcer = MaskEnforcer(mask, model)
    param_ids = {id(p) for p in enforcer.params}

    def touches_model(optimizer) -> bool:
        return any(id(p) in param_ids for group in optimizer.param_groups for p in group["params"])

    def before(optimizer, args, kwargs):
        if touches_model(optimizer):
            enforcer.zero_grads()

    def after(optimizer, args, kwargs):
        if touches_model(optimizer):
            enforcer.zero_weights()

    pre = register_optimizer_step_pre_hook(before)
    post = register_optimizer_step_post_hook(after)
    try:
        enforcer.zero_weights()
        yield enforcer
    finally:
        pre.remove()
        post.remove()
