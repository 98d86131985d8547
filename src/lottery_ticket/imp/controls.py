"""Controls as a registry: each says how its network and mask differ from the ticket's, and its own seed.

Frankle & Carbin's two controls, run at every pruned level with the ticket's per-layer weight counts:
  reinit             the ticket's mask on a fresh random init (seed + 10,000)
  random-prune       θ₀ with a random mask of the same per-layer sparsity (seed + 20,000 + level)
Pruning-at-init baselines (pruning/at_init.py), θ₀ under the method's own mask with as many weights pruned as
the ticket, so they compare at equal weights remaining; no random draw, so no seed of their own:
  snip, grasp, synflow, magnitude-init
Frankle et al. 2021's layerwise-shuffle sanity check (pruning/ablations.py), for the mask of any --pruner:
  shuffle-layerwise  θ₀ with the ticket's mask shuffled within each layer (seed + 30,000 + level)
The seeds are defined here once, so LotteryTicketFinder and `lottery-ticket find` run identical controls.
A new control is a Control subclass and one entry in CONTROLS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask
from ..pruning import RandomPruner
from ..pruning.ablations import shuffle_layerwise
from ..pruning.at_init import make_at_init_pruner
from ..sparsity import count_pruned
from ..state import restore_

if TYPE_CHECKING:
    from .engine import IMP


class Control(ABC):
    key: str  # the name users pass (--controls)
    record: str  # the kind in records and file names
    stage_id: int  # distinguishes its training stage's RNG stream from the ticket's
    summary: str = ""  # one line for `lottery-ticket list`

    @abstractmethod
    def seed_for(self, seed: int, level: int) -> int:
        """The control's own seed for run seed `seed` at `level`."""

    @abstractmethod
    def prepare(self, imp: "IMP", level: int, mask: PruningMask, seed: int) -> tuple[nn.Module, PruningMask, dict]:
        """(network to train, mask to train it under, record fields naming the seed used)."""


def theta0_network(imp: "IMP") -> nn.Module:
    """The run's network at θ₀ (the controls that change the mask, not the init)."""
    model = imp.trainable.build_model(imp.seed)
    restore_(model, imp.theta0())
    return model


class RandomReinit(Control):
    key, record, stage_id = "reinit", "random_reinit", 1000
    summary = "the ticket's mask on a fresh random init (F&C's random reinitialization), seed + 10,000"

    def seed_for(self, seed, level):
        return seed + 10_000

    def prepare(self, imp, level, mask, seed):
        return imp.trainable.build_model(seed), mask, {"init_seed": seed}


class RandomPruning(Control):
    key, record, stage_id = "random-prune", "random_pruning", 2000
    summary = "θ₀ under a random mask with the ticket's per-layer counts (F&C's random pruning)"

    def seed_for(self, seed, level):
        return seed + 20_000 + level

    def prepare(self, imp, level, mask, seed):
        return theta0_network(imp), RandomPruner(seed).like(mask), {"mask_seed": seed}


class PruneAtInit(Control):
    """θ₀ under a pruning-at-init method's mask, as many weights pruned as the ticket has (its weights remaining)."""

    def __init__(self, key: str, stage_id: int):
        self.key, self.record, self.stage_id = key, key.replace("-", "_"), stage_id
        self.summary = f"θ₀ under {key}'s mask at init with the ticket's weights remaining (docs/pruning_at_init.md)"

    def seed_for(self, seed, level):
        return seed  # the scores draw nothing at random; SNIP/GraSP's batches are the run seed's

    def prepare(self, imp, level, mask, seed):
        # The ticket pruner's exclusions and collapse guard, so both prune the same layers under the same rule.
        pruner = make_at_init_pruner(self.key, exclude=getattr(imp.pruner, "exclude", ()),
                                     min_density=getattr(imp.pruner, "min_density", 0.0))
        model = imp.initial_network_for(pruner)
        dense = imp.mask(0)
        # The ticket's pruned share of the eligible layers, start-mask pruning included: the pruner's target counts it too.
        pruned, eligible = count_pruned(mask, pruner.eligible(dense))
        at_init = pruner.prune(model, dense, pruned / eligible)
        return model, at_init, {}


class ShuffleLayerwise(Control):
    key, record, stage_id = "shuffle-layerwise", "shuffle_layerwise", 7000
    summary = "θ₀ under the ticket's mask shuffled within each layer (Frankle et al. 2021's ablation)"

    def seed_for(self, seed, level):
        return seed + 30_000 + level

    def prepare(self, imp, level, mask, seed):
        return theta0_network(imp), shuffle_layerwise(mask, seed), {"mask_seed": seed}


CONTROLS: dict[str, Control] = {
    "reinit": RandomReinit(),
    "random-prune": RandomPruning(),
    "snip": PruneAtInit("snip", 3000),
    "grasp": PruneAtInit("grasp", 4000),
    "synflow": PruneAtInit("synflow", 5000),
    "magnitude-init": PruneAtInit("magnitude-init", 6000),
    "shuffle-layerwise": ShuffleLayerwise(),
}


def check_controls(names) -> tuple[str, ...]:
    """`names` if CONTROLS has each; otherwise a one-line error naming the unknown ones and listing the controls."""
    bad = [c for c in names if c not in CONTROLS]
    if bad:
        raise LotteryTicketError(f"unknown control(s) {bad}; choose from {', '.join(CONTROLS)}")
    return tuple(names)
