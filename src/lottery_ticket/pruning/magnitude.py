"""Magnitude pruning, global or per layer, as in Frankle & Carbin (2019)."""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask, count_alive, named_parameters
from ..sparsity import check_sparsity, count_pruned
from .base import Pruner
from .selection import select_lowest


class MagnitudePruner(Pruner):
    """Prune the smallest-magnitude surviving weights.

    global_pruning=True   rank all eligible weights together (the paper's VGG/ResNet setting)
    global_pruning=False  each layer separately (the paper's LeNet/Conv setting)
    layer_rates           per-round rates by parameter-name pattern for `prune_fraction`; the most
                          specific pattern wins, e.g. {"fc3.weight": 0.1, "conv*": 0.15, "*": 0.2} (F&C Figure 2)
    exclude               name patterns never pruned (e.g. the output layer in open_lth's protocol)
    min_density           layer-collapse guard: each eligible layer keeps at least max(1, ceil(min_density *
                          size)) weights. Global pruning still prunes the exact total, taking the protected
                          layers' share from the others (an error when they cannot give it); per layer, a
                          protected layer stops at its floor. One warning names the protected layers.
                          None (default): no guard; a warning names any layer a call empties

    Masks only shrink: a pruned weight is never revived.
    """

    name = "magnitude"

    def __init__(self, global_pruning: bool = True, layer_rates: Mapping[str, float] | None = None,
                 exclude: Iterable[str] = (), min_density: float | None = 0.0):
        super().__init__(layer_rates, exclude, min_density)
        self.global_pruning = bool(global_pruning)

    def __repr__(self) -> str:
        # min_density only when not the default: run records keep this text, and old runs must still compare equal.
        guard = "" if self.min_density == 0.0 else f", min_density={self.min_density}"
        return (f"MagnitudePruner(global_pruning={self.global_pruning}, layer_rates={self.layer_rates or None}, "
                f"exclude={self.exclude}{guard})")

    def prune(self, model: nn.Module, mask: PruningMask, target_sparsity: float | Mapping[str, float]) -> PruningMask:
        """Return a new mask at `target_sparsity` (cumulative fraction pruned, not per call).

        A float is the sparsity over all eligible weights (global) or of every eligible layer
        (per layer); a mapping gives each layer its own target. Exactly round(target * n) weights
        end up pruned; a target below the current sparsity prunes nothing more.
        """
        mask.validate(model)
        names = self.eligible(mask)
        if isinstance(target_sparsity, Mapping):
            unknown = [n for n in target_sparsity if n not in mask.masks]
            if unknown:
                raise LotteryTicketError(f"target_sparsity names layers not in the mask: {unknown}; use names from mask.names")
            targets = {n: check_sparsity(s, f"target_sparsity[{n!r}]") for n, s in target_sparsity.items() if n in names}
            return self._prune_layers(model, mask, targets)
        target = check_sparsity(target_sparsity, "target_sparsity")
        if not self.global_pruning:
            return self._prune_layers(model, mask, {n: target for n in names})
        already, total = count_pruned(mask, names)
        return self._prune_group(model, mask, [names], [round(target * total) - already], exact_total=True)

    def prune_fraction(self, model: nn.Module, mask: PruningMask, fraction: float) -> PruningMask:
        """One IMP round: prune round(rate * remaining) of the surviving weights.

        Global: `fraction` of all surviving eligible weights. Per layer: each layer loses its
        `layer_rates` rate (or `fraction` where none matches) of its own survivors.
        """
        mask.validate(model)
        fraction = check_sparsity(fraction, "fraction")
        names = self.eligible(mask)
        if self.global_pruning and not self.layer_rates:
            remaining = sum(count_alive(mask[n]) for n in names)
            return self._prune_group(model, mask, [names], [round(fraction * remaining)], exact_total=True)
        counts = [round(self.rate_for(n, fraction) * count_alive(mask[n])) for n in names]
        return self._prune_group(model, mask, [[n] for n in names], counts)

    def _prune_layers(self, model, mask, targets: Mapping[str, float]) -> PruningMask:
        groups, counts = [], []
        for n, t in targets.items():
            numel = mask[n].numel()
            groups.append([n])
            counts.append(round(t * numel) - (numel - count_alive(mask[n])))
        return self._prune_group(model, mask, groups, counts)

    def _prune_group(self, model, mask: PruningMask, groups: list[list[str]], counts: list[int],
                     exact_total: bool = False) -> PruningMask:
        """Prune counts[i] of group i's survivors; `exact_total`: a group's count is a global total the guard
        must not shrink (an error if it cannot be met), else a guarded layer just stops at its floor."""
        params = self._ranking_values(model, mask, [n for names in groups for n in names])
        alive = [sum(count_alive(mask[n]) for n in names) for names in groups]
        empties = sum(alive) and sum(max(0, a - max(0, c)) for a, c in zip(alive, counts)) == 0
        if empties and self.min_density is None:
            # 0.9999999 rounds to every weight; a ticket with no weight left is not one (1.0 is refused outright).
            raise LotteryTicketError("this target prunes every remaining weight it may touch; pass a lower sparsity "
                                     "(e.g. 0.99)")
        new, protected = mask.copy(), []
        for names, count in zip(groups, counts):
            if count <= 0:
                continue
            bad = [n for n in names if not bool(torch.isfinite(params[n].detach()).all())]
            if bad:
                raise LotteryTicketError(f"weights of {', '.join(bad[:3])} are NaN or infinite, so their magnitudes "
                                         "rank nothing; training diverged: lower the learning rate (--lr) or add warmup")
            keeps, held = self._select(params, mask, names, count, exact_total)
            new.masks.update(keeps)
            protected += held
        emptied = [n for names in groups for n in names if count_alive(mask[n]) and not count_alive(new[n])]
        self.warn_collapse(protected, emptied, stacklevel=4)
        return new

    def _select(self, params, mask: PruningMask, names: list[str], count: int, exact_total: bool) -> tuple[dict, list[str]]:
        """New keep-masks pruning the `count` lowest survivors of `names`, no layer below its floor; and the held layers.

        A layer that would lose more than it may is held at its floor and the rest are ranked again for the
        remainder. That is the exact answer, found in at most len(names) passes: the remainder raises the
        threshold, so a layer that overshot once overshoots in every later pass.
        """
        caps = {n: count_alive(mask[n]) - self.floor_for(mask[n]) for n in names}
        if exact_total and self.min_density is not None and count > sum(caps.values()):
            floor = sum(count_alive(mask[n]) - caps[n] for n in names)
            raise LotteryTicketError(f"this target leaves {sum(count_alive(mask[n]) for n in names) - count} weights but "
                                     f"min_density={self.min_density} keeps at least {floor} in {len(names)} layers; "
                                     "pass a lower sparsity or a smaller min_density")
        held: list[str] = []
        while True:
            free = [n for n in names if n not in held]
            keeps = self._select_lowest([params[n] for n in free], [mask[n] for n in free], count - sum(caps[n] for n in held))
            over = [n for n, k in zip(free, keeps) if count_alive(mask[n]) - count_alive(k) > caps[n]]
            if not over:
                break
            held += over
        chosen = dict(zip(free, keeps))
        chosen.update({n: self._select_lowest([params[n]], [mask[n]], caps[n])[0] for n in held})
        return {n: chosen[n] for n in names}, [n for n in names if n in held]

    # The two steps a subclass may replace to rank something other than |w| with the same exact counts, guard
    # and tie order (pruning/at_init.py ranks scores of θ₀ through them).
    def _ranking_values(self, model: nn.Module, mask: PruningMask, names: list[str]) -> dict[str, torch.Tensor]:
        """What `_select` ranks, by layer name: the weights themselves here (their magnitudes are ranked)."""
        return named_parameters(model)

    @staticmethod
    def _select_lowest(values: list[torch.Tensor], keep: list[torch.Tensor], count: int) -> list[torch.Tensor]:
        return select_lowest(values, keep, count)
