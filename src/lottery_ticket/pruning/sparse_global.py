"""open_lth's `sparse_global` rule, for runs whose weight counts must agree with open_lth's level by level.

facebookresearch/open_lth, pruning/sparse_global.py, differs from MagnitudePruner's global rate twice:
- the number to prune is ceil(rate x every surviving weight in the mask), the excluded layers (its
  `pruning_layers_to_ignore`, e.g. the output layer) counted too, though they are never pruned;
- it keeps only the eligible survivors strictly above the magnitude found at that index of the sorted
  survivors, so it prunes one weight more than that number (more where magnitudes tie at the threshold).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask, count_alive, named_parameters
from ..sparsity import check_sparsity
from .magnitude import MagnitudePruner


class SparseGlobalPruner(MagnitudePruner):
    """Global magnitude pruning with open_lth's counting (see the module docstring).

    `prune_fraction` (IMP with a per-level rate) follows open_lth exactly; `prune` to a target sparsity is
    MagnitudePruner's exact global rule, since open_lth has no target form.
    """

    name = "sparse-global"

    def __init__(self, exclude=()):
        super().__init__(global_pruning=True, exclude=exclude)

    def __repr__(self) -> str:
        return f"SparseGlobalPruner(exclude={self.exclude})"

    def prune_fraction(self, model: nn.Module, mask: PruningMask, fraction: float) -> PruningMask:
        mask.validate(model)
        fraction = check_sparsity(fraction, "fraction")
        names = self.eligible(mask)
        params = named_parameters(model)
        remaining = sum(count_alive(m) for _, m in mask.items())  # excluded layers included, as open_lth counts
        count = math.ceil(fraction * remaining)
        magnitudes = {n: params[n].detach().abs().float().cpu() for n in names}
        survivors = torch.cat([magnitudes[n][mask[n]] for n in names])
        if count >= survivors.numel():
            raise LotteryTicketError(f"rate {fraction} of {remaining:,} weights is {count:,}, not fewer than the {survivors.numel():,} "
                                     "prunable survivors; lower the rate or the number of rounds")
        threshold = survivors.sort().values[count]
        new = mask.copy()
        for n in names:
            new.masks[n] = mask[n] & (magnitudes[n] > threshold)
        return new
