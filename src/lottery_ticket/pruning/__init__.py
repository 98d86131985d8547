"""Pruners: each returns a new PruningMask and never revives a pruned weight."""

from .magnitude import MagnitudePruner
from .random import RandomPruner

__all__ = ["MagnitudePruner", "RandomPruner"]
