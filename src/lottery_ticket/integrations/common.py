"""What every framework integration shares: the settings a framework's own trainer cannot honour, refused before
a run folder is written, and the factory call that builds your data."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import LotteryTicketError
from ..mask import PruningMask, named_parameters


def check_framework_run(config) -> None:
    """One line for each setting a framework run cannot honour (its trainer owns the loop)."""
    from ..config import Budget
    from ..imp.controls import CONTROLS, PruneAtInit
    from ..pruning.at_init import make_at_init_pruner
    from ..pruning.registry import make_pruner

    name = config.framework
    if Budget.parse(config.train.budget).unit != "it":
        raise LotteryTicketError(f"framework {name} takes a budget in optimizer steps (max_steps), not "
                                 f"{config.train.budget!r}; pass e.g. --budget 2000it")
    if config.early_bird is not None:
        raise LotteryTicketError(f"framework {name} has no early-bird; drop --early-bird")
    if config.prune.rewind_iteration and config.prune.rewind_mode != "restart":
        raise LotteryTicketError(f"framework {name} rewinds by restarting your schedule from the step-k weights; "
                                 "pass --rewind-mode restart (continue would need the trainer's loop state at step k)")
    needs_data = [c for c in config.controls if isinstance(CONTROLS[c], PruneAtInit)
                  and make_at_init_pruner(CONTROLS[c].key).needs_data]
    if getattr(make_pruner(config.prune), "needs_data", False) or needs_data:
        raise LotteryTicketError(f"framework {name} does not hand batches to data-scored pruning at init "
                                 f"({', '.join(needs_data) or config.prune.pruner}); use magnitude, random or "
                                 "magnitude-init")


def call_factory(path: str, what: str) -> Any:
    """`path`() for your data factory, its own error as one line."""
    from ..plugins import load_object

    factory = load_object(path, what)
    try:
        return factory()
    except Exception as exc:
        raise LotteryTicketError(f"{what} {path!r} raised {type(exc).__name__}: {exc}") from None


def check_score(config, found: dict) -> dict[str, float]:
    """The record's score: `found[config.metric]`, an accuracy in [0, 1] unless config.metric_mode says it is
    another number (scores.py), recorded under its own name."""
    import math

    from ..scores import ACCURACY, score_of

    metric, score = config.metric, score_of(config.framework, config.metric, config.metric_mode)
    if metric not in found:
        raise LotteryTicketError(f"evaluation gave no {metric!r} (it gave {sorted(found)}); log or compute it, or pass "
                                 "the name it has")
    value = float(found[metric])
    if score == ACCURACY and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise LotteryTicketError(f"{metric}={value!r} is not an accuracy in [0, 1]; score networks by an accuracy, or "
                                 "say --metric-mode max or min for another number")
    if not math.isfinite(value):
        raise LotteryTicketError(f"{metric}={value!r} is not a finite number")
    return {score.key: value}


class GradientMask:
    """Pruned weights stay exactly zero under any optimizer: a hook zeroes their gradients as backward writes
    them (before clipping or accumulation sees them), and `zero_weights()` re-zeroes them after each step (weight
    decay and momentum would otherwise move them)."""

    def __init__(self, model: torch.nn.Module, mask: PruningMask):
        params = named_parameters(model)
        self.pairs = [(params[name], keep.to(params[name].device)) for name, keep in mask.masks.items()]
        self.handles = [p.register_hook(lambda g, keep=keep: g * keep.to(g.device)) for p, keep in self.pairs]
        self.zero_weights()

    @torch.no_grad()
    def zero_weights(self) -> None:
        for p, keep in self.pairs:
            p.mul_(keep.to(p.device))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
