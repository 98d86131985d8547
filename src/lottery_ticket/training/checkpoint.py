"""Mid-training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is two files, written atomically in this order: `<name>.safetensors` (model and
optimizer tensors) then `<name>.json` (iteration, param groups, callback state, and the SHA-256 of
the tensor file). The JSON is the commit record: a checkpoint whose JSON is missing, unreadable, or
whose hash does not match its tensors is ignored and training restarts from the round's start.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..io import file_digest, load_tensors, read_json, save_tensors, write_json
from ..state import restore_, snapshot


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, iteration: int, extra: dict[str, Any],
                    extra_tensors: dict[str, torch.Tensor] | None = None) -> None:
    """`extra` is JSON (callback state, RNG); `extra_tensors` travel in the tensor file under `extra/`."""
    path = Path(path)
    tensors = {f"model/{k}": v for k, v in snapshot(model).items()}
    tensors.update({f"extra/{k}": v.detach().to("cpu") for k, v in (extra_tensors or {}).items()})
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in opt_state["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{key}"] = value.detach().to("cpu", copy=True)
            else:
                scalars.setdefault(str(idx), {})[key] = value
    tensor_path = path.with_suffix(".safetensors")
    save_tensors(tensor_path, tensors, metadata={"format": FORMAT})
    record = {
        "format": FORMAT,
        "iteration": iteration,
        "param_groups": opt_state["param_groups"],
        "optimizer_scalars": scalars,
        "extra": extra,
        "tensors_sha256": file_digest(tensor_path),
    }
    write_json(path.with_suffix(".json"), {**record, "record_sha256": _record_digest(record)})


FORMAT = "lottery_ticket.checkpoint/2"


def _record_digest(record: dict[str, Any]) -> str:
    """The JSON record is hashed too: an edited iteration or optimizer scalar must not be trusted."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def checkpoint_iteration(path: str | Path | None) -> int | None:
    """The step a checkpoint's record names, without checking it (None: no record, or unreadable): enough to
    group trainings that will resume together; load_checkpoint checks it in full."""
    if path is None or not Path(path).with_suffix(".json").is_file():
        return None
    try:
        iteration = read_json(Path(path).with_suffix(".json")).get("iteration")
    except (LotteryTicketError, AttributeError):  # unreadable JSON, or JSON that is not a record
        return None
    return iteration if isinstance(iteration, int) and not isinstance(iteration, bool) else None


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Restore model and optimizer in place; return the JSON record (with the extra tensors under
    "extra_tensors"), or None if there is no valid checkpoint."""
    path = Path(path)
    meta_path, tensor_path = path.with_suffix(".json"), path.with_suffix(".safetensors")
    if not meta_path.is_file() or not tensor_path.is_file():
        return None
    try:
        meta = read_json(meta_path)
        record = {k: v for k, v in meta.items() if k != "record_sha256"}
        if meta.get("record_sha256") != _record_digest(record) or meta.get("tensors_sha256") != file_digest(tensor_path):
            return None
        if meta.get("format") != FORMAT:  # another version's layout: start the stage again rather than misread it
            return None
        tensors = load_tensors(tensor_path)
    except (LotteryTicketError, AttributeError):
        return None
    # Restore into copies first: a checkpoint that does not fit (another model, a damaged record) is ignored, and
    # the stage restarts from its beginning with the model and optimizer untouched.
    model_state, optimizer_state = snapshot(model), optimizer.state_dict()
    try:
        restore_(model, {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, idx, name = key.split("/", 2)
                state.setdefault(int(idx), {})[name] = value
        for idx, values in meta["optimizer_scalars"].items():
            state.setdefault(int(idx), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        if not isinstance(meta["iteration"], int) or not isinstance(meta["extra"], dict):
            raise ValueError("iteration or extra has the wrong type")
    except (LotteryTicketError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        restore_(model, model_state)
        optimizer.load_state_dict(optimizer_state)
        return None
    meta["extra_tensors"] = {k[len("extra/"):]: v for k, v in tensors.items() if k.startswith("extra/")}
    return meta
