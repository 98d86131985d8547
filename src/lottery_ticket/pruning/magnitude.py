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

    Masks only shrink: a pruned weight is never revived.
    """

    name = "magnitude"

    def __init__(self, global_pruning: bool = True, layer_rates: Mapping[str, float] | None = None, exclude: Iterable[str] = ()):
        super().__init__(layer_rates, exclude)
        self.global_pruning = bool(global_pruning)

    def __repr__(self) -> str:
        return f"MagnitudePruner(global_pruning={self.global_pruning}, layer_rates={self.layer_rates or None}, exclude={self.exclude})"

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
        return self._prune_group(model, mask, [names], [round(target * total) - already])

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
            return self._prune_group(model, mask, [names], [round(fraction * remaining)])
        counts = [round(self.rate_for(n, fraction) * count_alive(mask[n])) for n in names]
        return self._prune_group(model, mask, [[n] for n in names], counts)

    def _prune_layers(self, model, mask, targets: Mapping[str, float]) -> PruningMask:
        groups, counts = [], []
        for n, t in targets.items():
            numel = mask[n].numel()
            groups.append([n])
            counts.append(round(t * numel) - (numel - count_alive(mask[n])))
        return self._prune_group(model, mask, groups, counts)

    @staticmethod
    def _prune_group(model, mask: PruningMask, groups: list[list[str]], counts: list[int]) -> PruningMask:
        params = named_parameters(model)
        alive = [sum(count_alive(mask[n]) for n in names) for names in groups]
        if sum(alive) and sum(max(0, a - max(0, c)) for a, c in zip(alive, counts)) == 0:
            # 0.9999999 rounds to every weight; a ticket with no weight left is not one (1.0 is refused outright).
            raise LotteryTicketError("this target prunes every remaining weight it may touch; pass a lower sparsity "
                                     "(e.g. 0.99)")
        new = mask.copy()
        for names, count in zip(groups, counts):
            if count <= 0:
                continue
            bad = [n for n in names if not bool(torch.isfinite(params[n].detach()).all())]
            if bad:
                raise LotteryTicketError(f"weights of {', '.join(bad[:3])} are NaN or infinite, so their magnitudes "
                                         "rank nothing; training diverged: lower the learning rate (--lr) or add warmup")
            keeps = select_lowest([params[n] for n in names], [mask[n] for n in names], count)
            for n, k in zip(names, keeps):
                new.masks[n] = k
        return new
