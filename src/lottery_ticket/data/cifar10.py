"""CIFAR-10 from its original python pickle batches, read with a restricted unpickler.

The batches are pickles, and pickle can run code. We only ever allow the few numpy globals needed
to rebuild an ndarray; anything else is refused before it can execute.
"""

from __future__ import annotations

import io
import math
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


_NDARRAY = object()  # what the pickle gets for numpy.ndarray: only _reconstruct's first argument, never called


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, limit: int, **kwargs):
        super().__init__(file, **kwargs)
        self.limit = limit  # no array of the file can be larger than the file itself

    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy", "ndarray"):
            return _NDARRAY
        if name == "_reconstruct" and (module, name) in _ALLOWED:
            return self._reconstruct
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise LotteryTicketError(f"refusing to load {module}.{name} from a CIFAR-10 batch: the file is not a plain "
                                 "CIFAR-10 pickle (it could run code); replace it with the original batch")


    def _reconstruct(self, subtype, shape, dtype):
        """numpy's _reconstruct, for ndarrays only and no larger than the file (a pickle asking for 2**40
        elements would otherwise allocate them before anything can check)."""
        dims = shape if isinstance(shape, tuple) else (shape,)
        if subtype is not _NDARRAY or not all(isinstance(d, int) and d >= 0 for d in dims) or math.prod(dims) > self.limit:
            raise LotteryTicketError(f"a CIFAR-10 batch asks for an array of shape {shape!r}, larger than the file; "
                                     "it is not a plain CIFAR-10 pickle: replace it with the original batch")
        return np.ndarray.__new__(np.ndarray, dims, dtype)


def safe_load_batch(path: Path) -> dict:
    from ..safefs import read_regular_file

    try:
        data = read_regular_file(path)
        obj = _SafeUnpickler(io.BytesIO(data), len(data), encoding="bytes").load()
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


def check_batch(path: Path, batch: dict, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 3, 32, 32] uint8 and labels [N] int64 of one batch. A label too few or too many would shift
    every later label by one (training then runs, at chance accuracy); a label out of range crashes only when sampled."""
    try:
        data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    except (ValueError, TypeError):  # ragged lists
        raise LotteryTicketError(f"{path}: 'data'/'labels' are not arrays; the batch is corrupt: replace it "
                                 "(or --download)") from None
    if data.dtype != np.uint8 or data.ndim < 2 or data.shape[0] == 0 or math.prod(data.shape[1:]) != 3072:
        raise LotteryTicketError(f"{path}: data has shape {data.shape} and dtype {data.dtype}, expected uint8 (N, 3072); "
                                 "replace the file (or --download)")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise LotteryTicketError(f"{path}: {len(data)} images but labels of shape {labels.shape} and dtype {labels.dtype} "
                                 f"(expected {len(data)} integers); the batch is corrupt: replace it (or --download)")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise LotteryTicketError(f"{path}: label {low if low < 0 else high} is outside 0..{num_classes - 1}; the batch is "
                                 "corrupt or not CIFAR-10: replace it (or --download)")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_batches(folder: Path, names: list[str], num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for name in names:
        x, y = check_batch(folder / name, safe_load_batch(folder / name), num_classes)
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
