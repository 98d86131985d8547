"""MNIST-1D (Greydanus, 2020), generated offline by the `mnist1d` package and cached as .npz."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import LotteryTicketError
from ..io import atomic_write_bytes

# The package's defaults (4,000 train / 1,000 test); num_samples is the total before the 80/20 split.
DEFAULT_ARGS = {"num_samples": 5000, "seed": 42}
_KEYS = ("x", "y", "x_test", "y_test")


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        v = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{v.dtype.str}:{v.shape};".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def _read_cache(cache: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the cache is missing, unreadable, truncated or altered (it is then
    regenerated: generation is deterministic, so a bad cache must never stop a run or change its data)."""
    try:
        with np.load(cache, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception:  # a damaged zip raises BadZipFile, EOFError, ValueError, TokenError, NotImplementedError...
        return None
    stored = arrays.pop("sha256", None)
    if stored is None or stored.shape != () or str(stored) != _digest(arrays) or set(arrays) != set(_KEYS):
        return None
    return arrays


def _check(arrays: dict[str, np.ndarray]) -> None:
    """What the models and splits assume; a different `mnist1d` version could break it, so say so here."""
    for x, y in ((arrays["x"], arrays["y"]), (arrays["x_test"], arrays["y_test"])):
        if (x.ndim != 2 or y.shape != (len(x),) or len(x) == 0 or y.dtype.kind not in "iu" or y.min() < 0
                or y.max() >= 10 or not np.isfinite(x).all()):
            raise LotteryTicketError(f"the mnist1d package generated x {x.shape}, y {y.shape} {y.dtype}, not finite (N, L) "
                                     "signals with N labels in 0..9; reinstall it (pip install --force-reinstall mnist1d)")


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnist1d")
    except PackageNotFoundError:
        raise LotteryTicketError("MNIST-1D needs the mnist1d package: pip install mnist1d") from None


def generate(cache_dir: Path | None, **overrides) -> dict[str, np.ndarray]:
    # The cache key is our arguments plus the package's version, not its full argument set: reading that set
    # imports mnist1d.data, which pulls in matplotlib and scipy (~1.4 s) even when the cache answers.
    settings = {**DEFAULT_ARGS, **overrides}
    key = hashlib.sha256(json.dumps([sorted(settings.items()), _package_version()], default=str).encode()).hexdigest()[:16]
    cache = cache_dir / f"mnist1d_{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file() and (arrays := _read_cache(cache)) is not None:
        return arrays
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    for name, value in settings.items():
        setattr(args, name, value)
    data = make_dataset(args)  # pure numpy; no download
    arrays = {k: np.asarray(data[k]) for k in _KEYS}
    _check(arrays)
    if cache is not None:
        buffer = io.BytesIO()
        # The digest travels inside the one file, so an atomic write keeps it and the arrays in step.
        np.savez(buffer, sha256=np.array(_digest(arrays)), **arrays)
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
