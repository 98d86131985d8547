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


DIGEST = "record_sha256"


def seal(row: dict[str, Any]) -> dict[str, Any]:
    """The record with a SHA-256 of its own content, so an edited or bit-flipped accuracy is caught on read."""
    body = {k: v for k, v in row.items() if k != DIGEST}
    return {**body, DIGEST: _digest(body)}


def unseal(row: Any) -> dict[str, Any] | None:
    """The record without its digest, or None when the digest does not match (records from before digests
    existed have none and are read as they are)."""
    if not isinstance(row, dict):
        return None
    body = {k: v for k, v in row.items() if k != DIGEST}
    if DIGEST in row:
        return body if row[DIGEST] == _digest(body) else None
    return None if any(k.startswith("record_") for k in body) else body


def _digest(body: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=True).encode()).hexdigest()
