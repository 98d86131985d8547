"""The IMP engine: one implementation of every level step, behind the Python API and the CLI.

    store.py       where a seed's stages live: in memory (LotteryTicketFinder) or a run folder (the CLI)
    controls.py    the registry of controls (random reinit, random pruning), each with its own seed
    records.py     the one per-level record both entry points write
    collective.py  what a distributed run injects (writer rank, barrier, mask broadcast); a no-op alone
    engine.py      IMP for one seed: prune to a level, train a level, run a control, each skipped if stored
"""

from .collective import SINGLE_PROCESS, Collective
from .controls import CONTROLS, Control
from .engine import IMP, EarlyBirdSpec, Trainable
from .records import level_record
from .store import FolderStore, MemoryStore, Store

__all__ = ["CONTROLS", "Collective", "Control", "EarlyBirdSpec", "FolderStore", "IMP", "MemoryStore", "SINGLE_PROCESS",
           "Store", "Trainable", "level_record"]
