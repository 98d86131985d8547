"""lottery-ticket: find winning tickets (Frankle & Carbin, ICLR 2019) and make them fast.

Read the package top to bottom as the pipeline:
mask -> pruning (criteria, schedule) -> enforce, training -> imp (the one IMP engine) -> finder (its
in-memory API) -> experiment (run folders) -> cli, with models/, data/ and export/ beside them.

The names below are imported on first use (PEP 562), so `lottery-ticket --help` answers without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import LotteryTicketError

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "LotteryTicketFinder": "finder", "load_experiment": "finder",
    "MaskEnforcer": "enforce", "enforce_on_every_step": "enforce", "reset_optimizer_state": "enforce",
    "PruningMask": "mask",
    "MagnitudePruner": "pruning", "NMConstrainedPruner": "pruning", "NMPruner": "pruning", "RandomPruner": "pruning",
    "Structured24Pruner": "pruning", "verify_24_pattern": "pruning", "verify_nm_pattern": "pruning",
    "check_sparsity": "sparsity", "per_round_rate": "sparsity", "sparsity_after_round": "sparsity",
    "Trainer": "training",
}

__all__ = ["LotteryTicketError", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lottery_ticket' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from .enforce import MaskEnforcer, enforce_on_every_step, reset_optimizer_state  # noqa: F401
    from .finder import LotteryTicketFinder, load_experiment  # noqa: F401
    from .mask import PruningMask  # noqa: F401
    from .pruning import (  # noqa: F401
        MagnitudePruner, NMConstrainedPruner, NMPruner, RandomPruner, Structured24Pruner, verify_24_pattern,
        verify_nm_pattern,
    )
    from .sparsity import check_sparsity, per_round_rate, sparsity_after_round  # noqa: F401
    from .training import Trainer  # noqa: F401
