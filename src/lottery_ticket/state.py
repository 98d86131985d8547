"""Model weights as plain tensor dicts keyed by canonical names (θ₀, rewind points, tickets)."""

from __future__ import annotations

import os

import torch
from torch import nn

from .errors import LotteryTicketError
from .io import load_tensors, read_tensor_metadata, save_tensors
from .mask import canonical_name


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of every parameter and buffer (so later training cannot change it)."""
    return {canonical_name(k): v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@torch.no_grad()
def restore_(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy `state` into `model` in place, matching canonical names; a mismatch is a clear error."""
    own = {canonical_name(k): v for k, v in model.state_dict().items()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise LotteryTicketError(
            f"saved weights do not fit this model (missing: {missing[:5]}, unexpected: {unexpected[:5]}); "
            "build the same model class and kwargs the weights came from"
        )
    for k, v in own.items():
        if v.shape != state[k].shape:
            raise LotteryTicketError(f"saved weight {k} has shape {tuple(state[k].shape)}, model has {tuple(v.shape)}; use the same architecture")
        v.copy_(state[k])
    return model


def save_state(path: str | os.PathLike, state: dict[str, torch.Tensor]) -> None:
    # clone: safetensors refuses tensors that share storage (e.g. tied weights)
    save_tensors(path, {k: v.clone() for k, v in state.items()}, metadata={"format": "lottery_ticket.state/1", "order": list(state)})


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    tensors = load_tensors(path)
    order = read_tensor_metadata(path).get("order")
    if isinstance(order, list) and sorted(order) == sorted(tensors):
        return {k: tensors[k] for k in order}
    return tensors
