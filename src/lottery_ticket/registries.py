"""Where the names a config may use are checked: each registry beside what it registers.

config.py is plain data (it imports no model, dataset, pruner or control code); a config's names are checked here,
once, before any folder is touched: by the runner, the command line and a stored run's reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import LotteryTicketError

if TYPE_CHECKING:
    from .config import ExperimentConfig


# Who trains each network of a run: our Trainer, or a framework's. Each integration module gives Trainable (the
# engine's Trainable), preflight(runner) and load_data(path), and is imported only when a run names it.
FRAMEWORKS = {"torch": None, "lightning": "lottery_ticket.integrations.lightning",
              "huggingface": "lottery_ticket.integrations.huggingface"}


def framework(name: str):
    """The integration module of framework `name` (None for our own Trainer)."""
    import importlib

    return importlib.import_module(FRAMEWORKS[name]) if FRAMEWORKS[name] else None


def check_names(config: "ExperimentConfig") -> "ExperimentConfig":
    """`config` if its model, dataset, framework, pruner and controls name registered entries (or import paths)."""
    from .data import DATASETS
    from .imp.controls import check_controls
    from .models import get_model_class
    from .plugins import is_import_path
    from .pruning.registry import check_pruner

    if not is_import_path(config.model):
        get_model_class(config.model)
    if not is_import_path(config.dataset) and config.dataset not in DATASETS:
        raise LotteryTicketError(f"unknown dataset {config.dataset!r}; choose from {', '.join(DATASETS)}, "
                                 "or give your own as 'package.module:callable'")
    if config.framework not in FRAMEWORKS:
        raise LotteryTicketError(f"unknown framework {config.framework!r}; choose from {', '.join(FRAMEWORKS)}")
    check_pruner(config.prune.pruner)
    check_controls(config.controls)
    return config
