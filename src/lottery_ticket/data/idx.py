"""MNIST and Fashion-MNIST: LeCun's IDX format, gzipped, read with numpy."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import LotteryTicketError

_DTYPE_CODE = 0x08  # unsigned byte: the only type MNIST-style files use


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Read a gzipped IDX file; a wrong magic number, shape or length is a clear error."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise LotteryTicketError(f"{path} is not a readable .gz file ({exc}); it may be truncated: delete it and "
                                 "download it again (--download) or copy a good one") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _DTYPE_CODE or raw[3] != expected_dims:
        raise LotteryTicketError(f"{path} is not an IDX file of {expected_dims} dimension(s) (bad magic number); "
                                 "check that it is the right MNIST-format file")
    header_end = 4 + 4 * expected_dims
    if len(raw) < header_end:
        raise LotteryTicketError(f"{path} ends inside its IDX header ({len(raw)} of {header_end} bytes); the file is "
                                 "truncated: replace it")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_dims))
    expected = math.prod(dims)  # exact: np.prod would wrap around for absurd dims and could "match" a short file
    if len(raw) - header_end != expected:
        raise LotteryTicketError(f"{path} holds {len(raw) - header_end} bytes of data but its header promises {expected} "
                                 f"(shape {dims}); the file is truncated or corrupt: replace it")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(dims)


def load_idx_split(folder: Path, prefix: str, num_classes: int = 10,
                   image_shape: tuple[int, int] = (28, 28)) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 3)
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 1)
    # The header's dims are only self-consistent; a 784x1 or 14x56 file would reach the model as the wrong shape.
    if images.shape[0] == 0 or images.shape[1:] != tuple(image_shape):
        raise LotteryTicketError(f"{folder}: {prefix} images have shape {images.shape}, expected (N, "
                                 f"{', '.join(map(str, image_shape))}); not an MNIST-format image file: replace it")
    if images.shape[0] != labels.shape[0]:
        raise LotteryTicketError(f"{folder}: {prefix} has {images.shape[0]} images but {labels.shape[0]} labels; "
                                 "the files come from different datasets: replace them")
    # Labels are unsigned bytes, so only the top can be out of range; a bad one would crash only when sampled.
    if int(labels.max()) >= num_classes:
        raise LotteryTicketError(f"{folder}: {prefix} has label {int(labels.max())}, outside 0..{num_classes - 1}; the "
                                 "labels file is corrupt or from another dataset: replace it")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # [N, 1, 28, 28] uint8
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y
