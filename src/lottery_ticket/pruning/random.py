"""Random pruning: the control that keeps each layer's weight count but chooses weights at random."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..mask import PruningMask, count_alive
from ..sparsity import check_sparsity
from .base import Pruner


class RandomPruner(Pruner):
    """Random masks from a seeded generator, so the same seed gives the same control.

    As an IMP criterion (`--pruner random`) it prunes random survivors of each eligible layer, each
    stopping at its `min_density` floor when one is set (see Pruner).
    """

    name = "random"

    def __init__(self, seed: int = 0, layer_rates: Mapping[str, float] | None = None, exclude=(),
                 min_density: float | None = 0.0):
        super().__init__(layer_rates, exclude, min_density)
        self.seed = int(seed)

    def __repr__(self) -> str:
        # min_density only when not the default: run records keep this text, and old runs must still compare equal.
        guard = "" if self.min_density == 0.0 else f", min_density={self.min_density}"
        return f"RandomPruner(seed={self.seed}, layer_rates={self.layer_rates or None}, exclude={self.exclude}{guard})"

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def like(self, mask: PruningMask) -> PruningMask:
        """A random mask with exactly the same number of survivors in every layer as `mask`."""
        gen = self._generator()
        masks = {}
        for name, m in mask.items():
            keep = torch.zeros(m.numel(), dtype=torch.bool)
            keep[torch.randperm(m.numel(), generator=gen)[: count_alive(m)]] = True
            masks[name] = keep.view_as(m)
        return PruningMask(masks=masks)

    def prune(self, model: nn.Module | None, mask: PruningMask, target_sparsity: float | Mapping[str, float]) -> PruningMask:
        """Prune random survivors of each layer up to `target_sparsity` (float or per-layer mapping)."""
        gen = self._generator()
        new = mask.copy()
        eligible = set(self.eligible(mask))
        protected, emptied = [], []
        for name, m in mask.items():
            if name not in eligible:
                continue
            target = target_sparsity.get(name) if isinstance(target_sparsity, Mapping) else target_sparsity
            if target is None:
                continue
            target = check_sparsity(target, "target_sparsity")
            count = round(target * m.numel()) - (m.numel() - count_alive(m))
            cap = count_alive(m) - self.floor_for(m)
            if count > cap:  # only under a guard: without one, cap is every survivor
                protected.append(name)
                count = cap
            if count <= 0:
                continue
            if count == count_alive(m):
                emptied.append(name)
            alive = torch.nonzero(m.reshape(-1)).reshape(-1)
            chosen = alive[torch.randperm(alive.numel(), generator=gen)[:count]]
            flat = new.masks[name].view(-1)
            flat[chosen] = False
        self.warn_collapse(protected, emptied)
        return new
