"""Crash-safe file writes and safe tensor loading.

Every file is written to a temporary name in the same folder, flushed, fsync'ed and renamed, so
a reader sees either the old file or the complete new one, never half of it. Tensors live in
safetensors (no pickle, so loading a shared file cannot run code); metadata lives in JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save as safetensors_bytes

from .errors import LotteryTicketError
from .safefs import read_regular_file, refuse_links


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks (data files are checked with md5, our checkpoints with sha256)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600 whatever the umask; results on a shared machine should be readable as the user's
# umask allows, like any file they create.
FILE_MODE = 0o666 & ~_current_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    tmp = None
    refuse_links(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError):
            raise LotteryTicketError(f"could not write {path}: {exc.strerror or exc}; free disk space (or inodes), "
                                     "check the folder's permissions, or choose another --out") from exc
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    # Insertion order, not sorted keys: a dict whose order means something (per-layer rates) must read back as written.
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


MAX_JSON_BYTES = 256 << 20  # records, configs and summaries are kilobytes; a bigger one is not ours


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(read_regular_file(path, MAX_JSON_BYTES).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LotteryTicketError(f"{path} is not valid JSON ({exc})") from None
    except RecursionError:  # '[[[[...' 200,000 deep
        raise LotteryTicketError(f"{path} is not a file of ours: its JSON is nested too deep to read") from None


_META_KEY = "lottery_ticket"


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write tensors as safetensors. The metadata travels as ONE JSON string under one key: safetensors
    stores its metadata map in hash order, so several keys would make identical saves differ in bytes."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {**dict(metadata or {}), _DIGEST_KEY: tensors_digest(cpu)}
    header = {_META_KEY: json.dumps(meta, sort_keys=True)}
    return atomic_write_bytes(path, safetensors_bytes(cpu, metadata=header))


_DIGEST_KEY = "content_sha256"


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes: a flipped bit anywhere in the data is caught
    on load (safetensors itself checks only that the header and the lengths agree)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file; anything else (a pickle, a truncated file) is refused with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise LotteryTicketError(f"{path} does not exist; check the path")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. Only a file that is not that and
    # starts like a pickle (protocol 2+ opcode) or a zip (torch.save) is called one; a header of 128 bytes also
    # starts with 0x80.
    looks_safetensors = len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= path.stat().st_size
    if not looks_safetensors and (head[:1] == b"\x80" or head[:2] == b"PK"):
        raise LotteryTicketError(
            f"{path} is a pickle/torch.save file, which can run code when loaded; refusing it. "
            "Re-save it as safetensors (lottery_ticket only reads .safetensors)"
        )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LotteryTicketError(f"{path} is not a valid safetensors file ({exc}); it may be truncated or damaged") from None
    expected = read_tensor_metadata(path).get(_DIGEST_KEY)
    if expected is not None and expected != tensors_digest(tensors):
        raise LotteryTicketError(f"{path} is damaged: its tensors do not match the hash written with them")
    return tensors


def read_tensor_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata save_tensors stored in a safetensors header (empty when there is none)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise LotteryTicketError(f"{path} is not a valid safetensors file ({exc}); delete it and redo that stage") from None
    try:
        meta = json.loads(raw[_META_KEY]) if _META_KEY in raw else raw
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}
