"""The spec's module name for 2:4 / N:M structured sparsity (`from lottery_ticket.structured_sparsity import
Structured24Pruner`); the implementation lives in lottery_ticket/pruning/structured.py."""

from .pruning.structured import (  # noqa: F401
    NMConstrainedPruner,
    NMPruner,
    Structured24Pruner,
    nm_mask,
    verify_24_pattern,
    verify_nm_pattern,
)

__all__ = ["NMConstrainedPruner", "NMPruner", "Structured24Pruner", "nm_mask", "verify_24_pattern", "verify_nm_pattern"]
