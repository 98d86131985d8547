"""The record of one trained level or control: the same fields from the Python API and the CLI."""

from __future__ import annotations

from typing import Any, Mapping

from ..mask import PruningMask
from ..sparsity import count_pruned


def mask_stats(mask: PruningMask, eligible: list[str]) -> dict[str, Any]:
    """Overall sparsity (every masked weight) and eligible sparsity (the weights the pruner may touch)."""
    pruned, total = count_pruned(mask)
    eligible_pruned, eligible_total = count_pruned(mask, eligible)
    return {"sparsity": pruned / total, "eligible_sparsity": eligible_pruned / eligible_total if eligible_total else 0.0,
            "weights_remaining_pct": 100.0 * (total - pruned) / total, "num_remaining": total - pruned,
            "num_total": total, "layer_sparsities": mask.layer_sparsities}


def level_record(seed: int, level: int, kind: str, mask: PruningMask, eligible: list[str],
                 result: Mapping[str, Any]) -> dict[str, Any]:
    """kind: 'dense' (level 0), 'ticket', or a control's record name. `result` holds accuracy and training metrics."""
    return {**result, "seed": seed, "round": level, "kind": kind, **mask_stats(mask, eligible)}
