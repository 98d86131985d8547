"""Pruners: each returns a new PruningMask and never revives a pruned weight."""

from .ablations import shuffle_layerwise
from .at_init import GraspPruner, MagnitudeInitPruner, ScorePruner, ScoringData, SnipPruner, SynFlowPruner
from .magnitude import MagnitudePruner
from .random import RandomPruner
from .sparse_global import SparseGlobalPruner
from .structured import NMConstrainedPruner, NMPruner, Structured24Pruner, nm_mask, verify_24_pattern, verify_nm_pattern

__all__ = [
    "GraspPruner",
    "MagnitudeInitPruner",
    "MagnitudePruner",
    "NMConstrainedPruner",
    "NMPruner",
    "RandomPruner",
    "ScorePruner",
    "ScoringData",
    "SnipPruner",
    "SparseGlobalPruner",
    "Structured24Pruner",
    "SynFlowPruner",
    "nm_mask",
    "shuffle_layerwise",
    "verify_24_pattern",
    "verify_nm_pattern",
]
