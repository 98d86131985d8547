"""Controls as a registry: each says how its network and mask differ from the ticket's, and its own seed.

Frankle & Carbin's two controls, run at every pruned level with the ticket's per-layer weight counts:
  reinit        the ticket's mask on a fresh random init (seed + 10,000)
  random-prune  θ₀ with a random mask of the same per-layer sparsity (seed + 20,000 + level)
The seeds are defined here once, so LotteryTicketFinder and `lottery-ticket find` run identical controls.
A new control is a Control subclass and one entry in CONTROLS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from torch import nn

from ..mask import PruningMask
from ..pruning import RandomPruner
from ..state import restore_

if TYPE_CHECKING:
    from .engine import IMP


class Control(ABC):
    key: str  # the name users pass (--controls)
    record: str  # the kind in records and file names
    stage_id: int  # distinguishes its training stage's RNG stream from the ticket's

    @abstractmethod
    def seed_for(self, seed: int, level: int) -> int:
        """The control's own seed for run seed `seed` at `level`."""

    @abstractmethod
    def prepare(self, imp: "IMP", level: int, mask: PruningMask, seed: int) -> tuple[nn.Module, PruningMask, dict]:
        """(network to train, mask to train it under, record fields naming the seed used)."""


class RandomReinit(Control):
    key, record, stage_id = "reinit", "random_reinit", 1000

    def seed_for(self, seed, level):
        return seed + 10_000

    def prepare(self, imp, level, mask, seed):
        return imp.trainable.build_model(seed), mask, {"init_seed": seed}


class RandomPruning(Control):
    key, record, stage_id = "random-prune", "random_pruning", 2000

    def seed_for(self, seed, level):
        return seed + 20_000 + level

    def prepare(self, imp, level, mask, seed):
        model = imp.trainable.build_model(imp.seed)
        restore_(model, imp.theta0())
        return model, RandomPruner(seed).like(mask), {"mask_seed": seed}


CONTROLS: dict[str, Control] = {"reinit": RandomReinit(), "random-prune": RandomPruning()}
