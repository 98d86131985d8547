"""The pruner protocol: what IMP asks of a pruning criterion, and the name-pattern rules all pruners share.

A pruner returns a *new* PruningMask and never revives a pruned weight. IMP (pruning/schedule.py) asks
for one of two things:

    prune(model, mask, target)          cumulative target: a float (over the eligible weights) or a
                                        {layer: sparsity} mapping; exactly round(target * n) pruned
    prune_fraction(model, mask, rate)   one IMP level: prune `rate` of the surviving weights (each
                                        layer's own rate where `layer_rates` names one)

Subclasses implement `prune`; `prune_fraction` has a default built on it. A new criterion is one file
with a subclass and one entry in pruning/registry.py.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
import math
import warnings
from typing import Iterable, Mapping

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask, count_alive
from ..sparsity import check_min_density, check_sparsity  # noqa: F401 (check_min_density: re-exported)


def pattern_specificity(pattern: str) -> tuple[int, int]:
    """How specific an fnmatch pattern is: literal characters first, then fewer wildcards.

    'fc3.weight' (10 literals) beats 'fc*' (2) beats '*' (0), whatever order a dict or a JSON file
    keeps them in: most-specific-pattern-wins makes per-layer rates independent of key order.
    """
    wildcards = sum(pattern.count(c) for c in "*?[")
    return len(pattern) - wildcards, -wildcards


def most_specific_match(name: str, patterns: Iterable[str]) -> str | None:
    """The most specific pattern matching `name` (ties: the first given), or None."""
    best, best_key = None, None
    for pattern in patterns:
        if fnmatch.fnmatchcase(name, pattern):
            key = pattern_specificity(pattern)
            if best_key is None or key > best_key:
                best, best_key = pattern, key
    return best


class Pruner(ABC):
    """Base of every pruner: per-layer rates and exclusions by name pattern, and the default level step.

    layer_rates   per-level rate by parameter-name pattern; the most specific matching pattern wins
                  (an exact name beats 'fc*' beats '*'), e.g. {"fc3.weight": 0.1, "*": 0.2} (F&C Figure 2)
    exclude       name patterns never pruned (e.g. the output layer in open_lth's protocol)
    min_density   layer-collapse guard: every eligible layer keeps at least max(1, ceil(min_density * size))
                  weights (0.0, the default: never empty a layer). None: no guard, but a warning names any
                  layer emptied (the paper's pure magnitude ranking)
    """

    name = "pruner"

    def __init__(self, layer_rates: Mapping[str, float] | None = None, exclude: Iterable[str] = (),
                 min_density: float | None = 0.0):
        self.layer_rates = {p: check_sparsity(r, f"layer_rates[{p!r}]") for p, r in (layer_rates or {}).items()}
        self.exclude = tuple(exclude)
        self.min_density = check_min_density(min_density)

    def eligible(self, mask: PruningMask) -> list[str]:
        """The layers this pruner may prune: the mask's layers minus the excluded ones."""
        return [n for n in mask.names if not any(fnmatch.fnmatchcase(n, p) for p in self.exclude)]

    def rate_for(self, name: str, default: float) -> float:
        pattern = most_specific_match(name, self.layer_rates)
        return default if pattern is None else self.layer_rates[pattern]

    @abstractmethod
    def prune(self, model: nn.Module, mask: PruningMask, target_sparsity: float | Mapping[str, float]) -> PruningMask:
        """A new mask at the cumulative target (see the module docstring); the one method a criterion must write."""

    def prune_fraction(self, model: nn.Module, mask: PruningMask, fraction: float) -> PruningMask:
        """One IMP level: each eligible layer loses round(rate * its survivors) (rate from `layer_rates`)."""
        fraction = check_sparsity(fraction, "fraction")
        targets = {}
        for n in self.eligible(mask):
            numel, alive = mask[n].numel(), count_alive(mask[n])
            targets[n] = (numel - alive + round(self.rate_for(n, fraction) * alive)) / numel
        return self.prune(model, mask, targets)

    def level_targets(self, mask: PruningMask, rate: float, level: int) -> dict[str, float]:
        """Per-layer sparsity after `level` levels of `rate` from a dense mask (one-shot pruning to that level)."""
        if level < 0:
            raise LotteryTicketError(f"level={level} must be >= 0")
        return {n: 1.0 - (1.0 - self.rate_for(n, rate)) ** level for n in self.eligible(mask)}

    def floor_for(self, keep: torch.Tensor) -> int:
        """Survivors the collapse guard leaves in a layer (0 without a guard; never more than it has)."""
        if self.min_density is None:
            return 0
        # round() first: 0.07 * 100 is 7.000000000000001 in floating point, which ceil would make 8.
        need = max(1, math.ceil(round(self.min_density * keep.numel(), 6)))
        return min(count_alive(keep), need)

    def warn_collapse(self, protected: list[str], emptied: list[str], stacklevel: int = 3) -> None:
        """One warning per call: the layers the guard protected, or (no guard) the layers pruning emptied."""
        if protected:
            warnings.warn(f"min_density={self.min_density} stopped pruning {len(protected)} layer(s) at their floor: "
                          f"{', '.join(protected)}; lower min_density to let them be pruned further",
                          stacklevel=stacklevel)
        if emptied:
            warnings.warn(f"pruning emptied {len(emptied)} layer(s): {', '.join(emptied)}; pass min_density=0.0 to "
                          "keep at least one weight in every layer", stacklevel=stacklevel)
