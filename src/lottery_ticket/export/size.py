"""How many bytes a ticket takes on disk: dense vs CSR vs bitmask storage, written and measured.

Every format is a safetensors file written through lottery_ticket.io (atomic). Tensors the mask
does not cover (biases, normalization) are stored densely in all formats; each masked weight is
stored as:
  dense    the float weight with its zeros
  csr      values of the mask's survivors + column indices + row pointers over the weight viewed as
           [out, in*kh*kw]; indices use the narrowest of int16/int32/int64 that holds them
  bitmask  the mask packed 8 weights per byte + the survivors' values in row-major order
Survivors are the mask's True entries, not the nonzeros, so the mask itself round-trips exactly.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import LotteryTicketError
from ..io import load_tensors, read_tensor_metadata, save_tensors
from ..mask import PruningMask
from ..state import snapshot

FORMATS = ("dense", "csr", "bitmask")
TICKET_FORMAT = "lottery_ticket.sparse_ticket/1"


def index_dtype(max_value: int) -> torch.dtype:
    """The narrowest signed integer dtype holding 0..max_value (safetensors has no unsigned 16/32)."""
    for dtype in (torch.int16, torch.int32):
        if max_value <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def _encode(name: str, weight: torch.Tensor, keep: torch.Tensor, fmt: str) -> dict[str, torch.Tensor]:
    if fmt == "dense":
        return {name: weight * keep.to(weight.dtype)}
    flat_keep = keep.reshape(-1)
    values = weight.reshape(-1)[flat_keep].clone()
    if fmt == "bitmask":
        bits = np.packbits(flat_keep.numpy().astype(np.uint8), bitorder="little")
        return {f"{name}::bitmask": torch.from_numpy(bits), f"{name}::values": values}
    rows = keep.shape[0]
    cols = keep.numel() // rows
    keep2 = keep.reshape(rows, cols)
    counts = keep2.sum(dim=1)
    crow = torch.zeros(rows + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(counts, 0)
    col = torch.nonzero(keep2)[:, 1]
    return {
        f"{name}::values": values,
        f"{name}::col_indices": col.to(index_dtype(max(cols - 1, 0))),
        f"{name}::crow_indices": crow.to(index_dtype(int(crow[-1]))),
    }


def save_ticket(path: str | os.PathLike, model: nn.Module, mask: PruningMask, format: str = "csr") -> Path:
    """Write `model`'s weights with `mask` applied in `format` (dense | csr | bitmask); returns the path."""
    if format not in FORMATS:
        raise LotteryTicketError(f"format={format!r} is unknown; choose one of {', '.join(FORMATS)}")
    mask.validate(model)
    state = snapshot(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name in mask.masks:
            tensors.update(_encode(name, value, mask[name], format))
        else:
            tensors[name] = value
    layers = {n: list(mask[n].shape) for n in mask.names}
    meta = {"format": TICKET_FORMAT, "storage": format, "layers": json.dumps(layers), "dtypes": json.dumps({n: str(state[n].dtype) for n in mask.names})}
    return save_tensors(path, tensors, metadata=meta)


def load_ticket(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], PruningMask]:
    """Read a file from save_ticket: (state dict with dense masked weights, the mask)."""
    meta = read_tensor_metadata(path)
    if meta.get("format") != TICKET_FORMAT:
        raise LotteryTicketError(f"{path} is not a sparse ticket (format {TICKET_FORMAT!r} expected); write it with save_ticket")
    tensors = load_tensors(path)
    try:
        return _decode_ticket(meta, tensors)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, json.JSONDecodeError) as exc:
        raise LotteryTicketError(f"{path} is a damaged sparse ticket ({type(exc).__name__}: {exc}); write it again "
                                 "with save_ticket") from None


def _decode_ticket(meta: dict, tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], PruningMask]:
    fmt, layers = meta["storage"], json.loads(meta["layers"])
    dtypes = {n: getattr(torch, d.removeprefix("torch.")) for n, d in json.loads(meta["dtypes"]).items()}
    state = {k: v for k, v in tensors.items() if "::" not in k}
    masks = {}
    for name, shape in layers.items():
        numel = int(np.prod(shape))
        if fmt == "dense":
            masks[name] = state[name] != 0  # dense storage cannot tell an alive zero from a pruned one
            continue
        values = tensors[f"{name}::values"]
        if fmt == "bitmask":
            bits = np.unpackbits(tensors[f"{name}::bitmask"].numpy(), count=numel, bitorder="little")
            keep = torch.from_numpy(bits.astype(bool))
        else:
            rows = shape[0]
            crow = tensors[f"{name}::crow_indices"].long()
            col = tensors[f"{name}::col_indices"].long()
            row = torch.repeat_interleave(torch.arange(rows), crow[1:] - crow[:-1])
            keep = torch.zeros(rows, numel // rows, dtype=torch.bool)
            keep[row, col] = True
            keep = keep.reshape(-1)
        weight = torch.zeros(numel, dtype=dtypes[name])
        weight[keep] = values
        state[name] = weight.reshape(shape)
        masks[name] = keep.reshape(shape)
    return state, PruningMask(masks=masks)


def storage_sizes(model: nn.Module, mask: PruningMask, directory: str | os.PathLike | None = None) -> dict[str, dict]:
    """Write the ticket in every format and measure it: {format: {bytes, tensor_bytes, vs_dense, path}}.

    `bytes` is the file size on disk (safetensors header included); `tensor_bytes` the payload alone.
    Files go to `directory` (kept) or a temporary folder (deleted afterwards, path then None).
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(directory) if directory is not None else Path(tmp)
        out = {}
        for fmt in FORMATS:
            path = save_ticket(folder / f"ticket_{fmt}.safetensors", model, mask, fmt)
            payload = sum(t.numel() * t.element_size() for t in load_tensors(path).values())
            out[fmt] = {"bytes": path.stat().st_size, "tensor_bytes": payload, "path": str(path) if directory is not None else None}
    for fmt in FORMATS:
        out[fmt]["vs_dense"] = out[fmt]["bytes"] / out["dense"]["bytes"]
    return out
