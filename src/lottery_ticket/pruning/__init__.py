"""Pruners: each returns a new PruningMask and never revives a pruned weight."""

from .magnitude import MagnitudePruner
from .random import RandomPruner
from .sparse_global import SparseGlobalPruner
from .structured import NMConstrainedPruner, NMPruner, Structured24Pruner, nm_mask, verify_24_pattern, verify_nm_pattern

__all__ = [
    "MagnitudePruner",
    "NMConstrainedPruner",
    "NMPruner",
    "RandomPruner",
    "SparseGlobalPruner",
    "Structured24Pruner",
    "nm_mask",
    "verify_24_pattern",
    "verify_nm_pattern",
]
