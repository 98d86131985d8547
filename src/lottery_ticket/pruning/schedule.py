"""IMP's sparsity schedule: which mask each level gets. One meaning of each number, stated here.

Two forms, and a Schedule holds exactly one:
  rate    the paper's and open_lth's "prune p % per level": every level removes `rate` of the surviving
          eligible weights (each layer's own rate where the pruner's `layer_rates` names one);
          `rounds` only says how many levels to run, so more rounds go sparser.
  target  a final sparsity over the eligible weights, reached at level `rounds`; level r lands on
          1 - (1 - target) ** (r / rounds), so changing `rounds` changes every level.

Eligible weights are the mask's weights minus the pruner's exclusions; `sparsity.count_pruned` counts
both that and the overall sparsity, for the pruners and the reports alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask
from ..sparsity import check_rounds, check_sparsity, sparsity_after_round
from .base import Pruner


@dataclass(frozen=True)
class Schedule:
    rounds: int
    rate: float | None = None  # fraction of survivors pruned per level
    target: float | None = None  # final sparsity at level `rounds`
    one_shot: bool = False  # every level pruned straight from the dense-trained weights

    def __post_init__(self):
        check_rounds(self.rounds, "rounds")
        if (self.rate is None) == (self.target is None):
            raise LotteryTicketError("a schedule takes a per-level rate or a final target sparsity, exactly one; "
                                     "pass e.g. rate=0.2 or target_sparsity=0.9")
        if self.rate is not None:
            check_sparsity(self.rate, "rate")
        else:
            check_sparsity(self.target, "target_sparsity")

    @classmethod
    def of(cls, prune) -> "Schedule":
        """The schedule a PruneConfig describes."""
        return cls(prune.rounds, rate=prune.rate, target=prune.target_sparsity, one_shot=prune.one_shot)

    @property
    def extendable(self) -> bool:
        """Whether more rounds leave the earlier levels as they are (true of the rate form only)."""
        return self.rate is not None


def next_mask(pruner: Pruner, schedule: Schedule, model: nn.Module, mask: PruningMask, dense_mask: PruningMask,
              level: int) -> PruningMask:
    """The mask of IMP level `level` (1-based), pruned from `model`'s trained weights.

    Iterative: `mask` is the previous level's mask. One-shot: `dense_mask` is pruned straight to
    where `level` levels of the schedule would be.
    """
    if level < 1:
        raise LotteryTicketError(f"level={level}: level 0 is the dense network, pruning starts at level 1")
    if schedule.target is not None:
        base = dense_mask if schedule.one_shot else mask
        return pruner.prune(model, base, sparsity_after_round(schedule.target, schedule.rounds, level))
    if not schedule.one_shot:
        return pruner.prune_fraction(model, mask, schedule.rate)
    if pruner.layer_rates:
        return pruner.prune(model, dense_mask, pruner.level_targets(dense_mask, schedule.rate, level))
    return pruner.prune(model, dense_mask, 1.0 - (1.0 - schedule.rate) ** level)
