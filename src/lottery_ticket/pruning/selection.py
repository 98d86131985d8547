"""Exact, deterministic selection of the k lowest-scoring surviving weights.

Why numpy: `torch.quantile` refuses tensors over 16M elements and `torch.kthvalue` takes ~6 s on
VGG19's 143.7M weights here, while an in-place `np.partition` (introselect) takes ~1 s and needs no
second copy. Ties at the threshold are broken by layer order, then flat index, so the same weights
always give the same mask.
"""

from __future__ import annotations

import numpy as np
import torch


def select_lowest(scores: list[torch.Tensor], keep: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """Return new keep-masks with exactly `count` more weights pruned: the lowest scores among survivors.

    `scores` and `keep` are parallel lists of same-shaped tensors (keep is bool, True = alive).
    Already-pruned weights are never revived and never counted.
    """
    new_keep = [k.clone() for k in keep]
    alive_total = sum(int(k.sum()) for k in keep)
    count = max(0, min(int(count), alive_total))
    if count == 0:
        return new_keep

    # Gather the surviving scores into one float32 buffer, partitioned in place.
    buffer = np.empty(alive_total, dtype=np.float32)
    offset = 0
    flat_scores = []
    for s, k in zip(scores, keep):
        s = s.detach().to("cpu", torch.float32).reshape(-1)
        flat_scores.append(s)
        alive = s[k.reshape(-1)].numpy()
        buffer[offset:offset + alive.size] = alive
        offset += alive.size
    buffer.partition(count - 1)
    threshold = float(buffer[count - 1])
    del buffer

    # Everything strictly below the threshold goes; ties fill the remainder in a fixed order.
    below_masks = []
    pruned_below = 0
    for s, k in zip(flat_scores, new_keep):
        below = k.reshape(-1) & (s < threshold)
        below_masks.append(below)
        pruned_below += int(below.sum())
    ties_needed = count - pruned_below
    for s, k, below in zip(flat_scores, new_keep, below_masks):
        flat_keep = k.view(-1)
        flat_keep[below] = False
        if ties_needed > 0:
            tie_idx = torch.nonzero(flat_keep & (s == threshold)).reshape(-1)[:ties_needed]
            flat_keep[tie_idx] = False
            ties_needed -= tie_idx.numel()
    return new_keep
