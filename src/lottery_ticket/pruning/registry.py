"""Pruning criteria by name: the config's `pruner` field (`--pruner`) picks one.

A new criterion is a Pruner subclass in its own file plus one entry here; IMP, the CLI and run
folders find it through this dict and need no other edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import LotteryTicketError
from ..sparsity import parse_nm
from .at_init import AT_INIT_PRUNERS, ScorePruner
from .base import Pruner
from .channel import ChannelL1Pruner
from .magnitude import MagnitudePruner
from .random import RandomPruner
from .sparse_global import SparseGlobalPruner
from .structured import NMConstrainedPruner

if TYPE_CHECKING:
    from ..config import PruneConfig


def _magnitude(p: "PruneConfig", seed: int) -> Pruner:
    return MagnitudePruner(global_pruning=p.global_pruning, layer_rates=p.layer_rates or None, exclude=p.exclude,
                           min_density=p.min_density)


def _nm(p: "PruneConfig", seed: int) -> Pruner:
    n, m = parse_nm(p.nm)
    return NMConstrainedPruner(_magnitude(p, seed), n, m, exclude=p.exclude)


def _at_init(name: str) -> Callable[["PruneConfig", int], Pruner]:
    """A pruning-at-init method (pruning/at_init.py): θ₀'s scores ranked over all eligible layers at once."""
    def build(p: "PruneConfig", seed: int) -> ScorePruner:
        if p.layer_rates:
            raise LotteryTicketError(f"--pruner {name} ranks all layers together and takes no per-layer rates; pass "
                                     "--rate or --target-sparsity (either drops the preset's per-layer rates)")
        return AT_INIT_PRUNERS[name](exclude=p.exclude, min_density=p.min_density)
    return build


PRUNERS: dict[str, Callable[["PruneConfig", int], Pruner]] = {
    # F&C: the smallest-magnitude survivors, globally or per layer.
    "magnitude": _magnitude,
    # Random survivors of each layer: the random-pruning control as a criterion of its own.
    "random": lambda p, seed: RandomPruner(seed, layer_rates=p.layer_rates or None, exclude=p.exclude,
                                           min_density=p.min_density),
    # Magnitude pruning inside an N:M pattern (`nm` field, e.g. '2:4' or '1:4').
    "nm": _nm,
    # open_lth's sparse_global counting (ceil of the rate over all survivors, strictly-above threshold).
    "sparse-global": lambda p, seed: SparseGlobalPruner(exclude=p.exclude),
    # 2:4, the pattern NVIDIA's sparse tensor cores run.
    "2:4": lambda p, seed: NMConstrainedPruner(_magnitude(p, seed), 2, 4, exclude=p.exclude),
    # Pruning at initialization: scores of θ₀ (IMP hands these θ₀), meaningful one-shot; see docs/pruning_at_init.md.
    "snip": _at_init("snip"),  # |g ⊙ w|, Lee et al. 2019
    "grasp": _at_init("grasp"),  # -w ⊙ Hg, highest pruned, Wang et al. 2020
    "synflow": _at_init("synflow"),  # data-free, 100 iterations, Tanaka et al. 2020
    "magnitude-init": _at_init("magnitude-init"),  # |w| of θ₀
    # Whole conv filters, smallest L1 norm first, each layer separately (Li et al. 2017); docs/channel_pruning.md.
    "channel-l1": lambda p, seed: ChannelL1Pruner(layer_rates=p.layer_rates or None, exclude=p.exclude,
                                                  min_density=p.min_density),
}


# One line each for `lottery-ticket list`; a pruner you register without one is listed as such.
PRUNER_SUMMARIES: dict[str, str] = {
    "magnitude": "the smallest-magnitude survivors, globally or per layer (Frankle & Carbin; the default)",
    "random": "random survivors of each layer, at the same rates",
    "nm": "magnitude inside an N:M pattern (--nm 2:4, 1:4, ...)",
    "sparse-global": "open_lth's sparse_global: ceil of the rate over all survivors, strictly-above threshold",
    "2:4": "magnitude inside the 2:4 pattern NVIDIA's sparse tensor cores run",
    "snip": "pruning at init by |g ⊙ w| (Lee et al. 2019), one shot",
    "grasp": "pruning at init by -w ⊙ Hg, highest pruned (Wang et al. 2020), one shot",
    "synflow": "data-free pruning at init, 100 iterations (Tanaka et al. 2020), one shot",
    "magnitude-init": "pruning at init by |w| of θ₀, one shot",
    "channel-l1": "whole conv filters, smallest L1 norm first, per layer (Li et al. 2017)",
}


def check_pruner(name: str) -> str:
    """`name` if PRUNERS has it; otherwise a one-line error listing the criteria."""
    if name not in PRUNERS:
        raise LotteryTicketError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")
    return name


def make_pruner(prune: "PruneConfig", seed: int = 0) -> Pruner:
    """The pruner a PruneConfig names; `seed` feeds the criteria that draw random numbers."""
    return PRUNERS[check_pruner(prune.pruner)](prune, seed)
