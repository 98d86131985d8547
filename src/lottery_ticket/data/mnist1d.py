"""MNIST-1D (Greydanus, 2020), generated offline by the `mnist1d` package and cached as .npz."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write_bytes

# The package's defaults (4,000 train / 1,000 test); num_samples is the total before the 80/20 split.
DEFAULT_ARGS = {"num_samples": 5000, "seed": 42}


def generate(cache_dir: Path | None, **overrides) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    for key, value in {**DEFAULT_ARGS, **overrides}.items():
        setattr(args, key, value)
    key = hashlib.sha256(json.dumps(sorted(vars(args).items()), default=str).encode()).hexdigest()[:16]
    cache = cache_dir / f"mnist1d_{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError):
            pass  # a corrupt cache is regenerated below
    data = make_dataset(args)  # pure numpy; no download
    arrays = {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
    if cache is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            atomic_write_bytes(cache, buffer.getvalue())
        except Exception:
            pass  # caching is an optimization; a read-only cache dir must not stop the run
    return arrays


def load_mnist1d(cache_dir: Path | None, **overrides) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    a = generate(cache_dir, **overrides)
    as_x = lambda v: torch.from_numpy(v.astype(np.float32))
    as_y = lambda v: torch.from_numpy(v.astype(np.int64))
    return as_x(a["x"]), as_y(a["y"]), as_x(a["x_test"]), as_y(a["y_test"])
