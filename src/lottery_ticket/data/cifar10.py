"""CIFAR-10 from its original python pickle batches, read with a restricted unpickler.

The batches are pickles, and pickle can run code. We only ever allow the few numpy globals needed
to rebuild an ndarray; anything else is refused before it can execute.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import LotteryTicketError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise LotteryTicketError(f"refusing to load {module}.{name} from a CIFAR-10 batch: the file is not a plain "
                                 "CIFAR-10 pickle (it could run code); replace it with the original batch")


def safe_load_batch(path: Path) -> dict:
    try:
        data = path.read_bytes()
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except LotteryTicketError:
        raise
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError) as exc:
        raise LotteryTicketError(f"{path} is not a readable CIFAR-10 batch ({exc.__class__.__name__}); it may be "
                                 "truncated: replace it (or --download)") from None
    if not isinstance(obj, dict):
        raise LotteryTicketError(f"{path} does not hold a CIFAR-10 batch dict; check the data dir")
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise LotteryTicketError(f"{path} has no 'data'/'labels' entries: it is not a CIFAR-10 batch (CIFAR-100 uses "
                                 "'fine_labels'); point --data-dir at cifar-10-batches-py")
    return obj


def load_batches(folder: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for name in names:
        batch = safe_load_batch(folder / name)
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise LotteryTicketError(f"{folder / name}: data has shape {data.shape}, expected (N, 3072); replace the file")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch["labels"], dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
