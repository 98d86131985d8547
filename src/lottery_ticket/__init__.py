"""lottery-ticket: find winning tickets (Frankle & Carbin, ICLR 2019) and make them fast.

Read the package top to bottom as the pipeline:
mask -> pruning (criteria, schedule) -> enforce, training -> imp (the one IMP engine) -> finder (its
in-memory API) -> experiment (run folders) -> cli, with models/, data/ and export/ beside them.
"""

from .enforce import MaskEnforcer, enforce_on_every_step, reset_optimizer_state
from .errors import LotteryTicketError
from .finder import LotteryTicketFinder, load_experiment
from .mask import PruningMask
from .pruning import (
    MagnitudePruner,
    NMConstrainedPruner,
    NMPruner,
    RandomPruner,
    Structured24Pruner,
    verify_24_pattern,
    verify_nm_pattern,
)
from .sparsity import check_sparsity, per_round_rate, sparsity_after_round
from .training import Trainer

__version__ = "0.1.0"

__all__ = [
    "LotteryTicketError",
    "LotteryTicketFinder",
    "MagnitudePruner",
    "MaskEnforcer",
    "NMConstrainedPruner",
    "NMPruner",
    "PruningMask",
    "Trainer",
    "RandomPruner",
    "Structured24Pruner",
    "check_sparsity",
    "enforce_on_every_step",
    "load_experiment",
    "per_round_rate",
    "reset_optimizer_state",
    "sparsity_after_round",
    "verify_24_pattern",
    "verify_nm_pattern",
]
