"""Where one seed's IMP stages live. The engine is written once against this interface.

Keys: states "init" (θ₀), "rewind" (weights after step k), "trained/<level>"; masks by level; records by
(kind, level). A stage whose output is stored is skipped, so resume falls out of the structure.

MemoryStore backs LotteryTicketFinder; FolderStore is a run folder's seed_<s>/ (see experiment/runfolder.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch import nn

from ..errors import LotteryTicketError
from ..io import read_json, write_json
from ..mask import PruningMask
from ..safefs import refuse_links
from ..state import load_state, save_state
from .records import seal, unseal


class Store(Protocol):
    def load_state(self, key: str) -> dict | None: ...
    def save_state(self, key: str, state: dict) -> None: ...
    def load_mask(self, level: int, model: nn.Module) -> PruningMask | None: ...
    def save_mask(self, level: int, mask: PruningMask) -> None: ...
    def load_record(self, kind: str, level: int) -> dict | None: ...
    def save_record(self, kind: str, level: int, row: dict) -> None: ...
    def checkpoint(self, stage: str) -> Path | None: ...
    def clear_checkpoint(self, stage: str) -> None: ...


STACKED_CHECKPOINT = "_stacked"  # a stacked training's checkpoint: checkpoints/<stage>_stacked (experiment/stacking.py)


class MemoryStore:
    """Everything in dicts. Keeps θ₀, the rewind point, every mask and record, and only the trained weights
    IMP still needs (level 0, for one-shot, and the latest level), so VGG-sized models fit."""

    def __init__(self):
        self.states: dict[str, dict] = {}
        self.masks: dict[int, PruningMask] = {}
        self.records: dict[tuple[str, int], dict] = {}

    def load_state(self, key):
        return self.states.get(key)

    def save_state(self, key, state):
        if key.startswith("trained/"):
            for old in [k for k in self.states if k.startswith("trained/") and k not in ("trained/0", key)]:
                del self.states[old]
        self.states[key] = state

    def load_mask(self, level, model):
        return self.masks.get(level)

    def save_mask(self, level, mask):
        self.masks[level] = mask

    def load_record(self, kind, level):
        return self.records.get((kind, level))

    def save_record(self, kind, level, row):
        self.records[(kind, level)] = row

    def checkpoint(self, stage):
        return None

    def clear_checkpoint(self, stage):
        pass


class FolderStore:
    """A run folder's seed_<s>/: safetensors for tensors, JSON for records, each written atomically.

    Only the writer (rank 0 of a distributed run) writes; the other ranks read what it wrote after a barrier.
    """

    def __init__(self, seed_folder, is_writer: bool = True):
        self.sf, self.is_writer = seed_folder, is_writer

    def _state_path(self, key: str) -> Path:
        if key == "init":
            return self.sf.init
        if key == "rewind":
            return self.sf.rewind
        if key.startswith("trained/"):
            return self.sf.trained(int(key.removeprefix("trained/")))
        raise LotteryTicketError(f"unknown state key {key!r}")

    def load_state(self, key):
        # A damaged file is a missing one (load_state refuses both): every state is reproducible (θ₀ from the
        # seed, the others by training).
        path = self._state_path(key)
        try:
            return load_state(path)
        except LotteryTicketError:
            return None

    def save_state(self, key, state):
        if self.is_writer:
            save_state(self._state_path(key), state)

    def load_mask(self, level, model):
        try:
            return PruningMask.load(self.sf.mask(level), model)
        except LotteryTicketError:  # missing, damaged or another model's: recomputed (the same mask)
            return None

    def save_mask(self, level, mask):
        if self.is_writer:
            mask.save(self.sf.mask(level))

    def _record_path(self, kind: str, level: int) -> Path:
        return self.sf.round_result(level) if kind in ("dense", "ticket") else self.sf.control_result(kind, level)

    def load_record(self, kind, level) -> dict[str, Any] | None:
        """The stored record, or None (the stage is redone) when it is missing or not a valid record of it."""
        path = self._record_path(kind, level)
        if not path.is_file():
            return None
        try:
            row = unseal(read_json(path))
        except LotteryTicketError:
            return None
        return row if valid_record(row, self.sf.seed_number, kind, level) else None

    def save_record(self, kind, level, row):
        if self.is_writer:
            write_json(self._record_path(kind, level), seal(row))

    def checkpoint(self, stage):
        return self.sf.checkpoint(stage)

    def clear_checkpoint(self, stage):
        if self.is_writer:  # the Trainer's checkpoint and a stacked training's (experiment/stacking.py)
            for name in (stage, f"{stage}{STACKED_CHECKPOINT}"):
                for suffix in (".json", ".safetensors"):
                    refuse_links(self.sf.checkpoint(name).with_suffix(suffix))
                    self.sf.checkpoint(name).with_suffix(suffix).unlink(missing_ok=True)


def valid_record(row: Any, seed: int | None, kind: str, level: int) -> bool:
    """A record is trusted only if it is the record of this stage: right seed, level and kind, and a finite score
    under the key it states (accuracy when it states none: scores.py)."""
    from ..scores import finite_number, score_of_record

    if not isinstance(row, dict):
        return False
    try:
        key = score_of_record(row).key
    except LotteryTicketError:
        return False
    return (row.get("round") == level and row.get("kind") == kind and (seed is None or row.get("seed") == seed)
            and finite_number(row.get(key))
            and isinstance(row.get("iterations", 0), int) and isinstance(row.get("layer_sparsities", {}), dict))
