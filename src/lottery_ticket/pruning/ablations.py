"""Sanity-check ablations of a mask (Frankle et al., ICLR 2021, arXiv 2009.08576, §5).

A method whose mask can be shuffled within each layer, or whose surviving weights can be re-initialized,
without losing accuracy has learned only how many weights each layer keeps, not which ones. The re-init
ablation is the `reinit` control (imp/controls.py); the shuffle is here.
"""

from __future__ import annotations

import torch

from ..mask import PruningMask


def shuffle_layerwise(mask: PruningMask, seed: int) -> PruningMask:
    """`mask` with each layer's keep pattern randomly permuted within that layer: the same number of survivors per
    layer, in random places. Seeded, so the same (mask, seed) always gives the same result.

    Applied to an IMP (magnitude) ticket this is distributed like the random-prune control (a random mask with the
    ticket's per-layer counts); its point is that it applies to any method's mask, e.g. `--pruner snip`.
    """
    gen = torch.Generator().manual_seed(int(seed))
    shuffled = {}
    for name, keep in mask.items():
        flat = keep.reshape(-1)
        shuffled[name] = flat[torch.randperm(flat.numel(), generator=gen)].view_as(keep)
    return PruningMask(masks=shuffled)
