"""Which pruned Linear layers train sparse: a measured break-even density per layer shape, cached per machine.

The sparse step (sparse.py) wins only below some density, and where depends on the machine, the thread count,
the layer's shape and the batch. So it is measured, once: what a training step spends on a layer of that shape
(forward, backward, masking, an Adam update), masked-dense and sparse with each way of forming the weight
gradient, at densities from 70 % down to 3 %, timed by their medians. A variant's break-even density is the
highest one at which it takes at most MARGIN of the dense pass's time in every one of SWEEPS sweeps (0 when it
never does), kept in $XDG_CACHE_HOME/lottery_ticket/sparse_break_even.json (default ~/.cache) under the torch
version, threads, shape and batch. The same machine then makes the same choice in every later run, so reruns and resumed runs
stay identical; `sparse_training="off"` (or "on") fixes the choice for runs compared across machines.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LotteryTicketError
from ..mask import PruningMask
from .sparse import SparseLinear, SparseTraining

DENSITIES = (0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03)
MARGIN = 0.9  # a sparse pass must save at least 10 %: timing noise must not pick the slower path
SWEEPS = 3
MODES = ("auto", "on", "off")
NEVER = {"gather": 0.0, "gemm": 0.0}


def cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lottery_ticket" / "sparse_break_even.json"


def break_even(out_features: int, in_features: int, batch: int, input_grad: bool,
               measure: Callable[..., tuple[float, float, float]] | None = None) -> dict[str, float]:
    """For each way of forming the weight gradient (sparse.WEIGHT_GRADIENTS), the highest density at which the
    sparse pass built on it is worth it for this shape (0.0: never); "gather" only where it also beats "gemm".
    Measured once per machine and shape, then read from the cache."""
    from ..io import read_json, write_json

    key = (f"torch {torch.__version__} threads {torch.get_num_threads()} | {out_features}x{in_features} "
           f"batch {batch} input_grad {int(input_grad)}")
    path = cache_path()
    try:
        cached = read_json(path) if path.is_file() else {}
    except LotteryTicketError:
        cached = {}  # a damaged cache is measured again and rewritten
    if not isinstance(cached, dict):  # valid JSON, but not the cache's object: ignored, and rewritten below
        cached = {}
    entry = cached.get(key)
    valid = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0
    if measure is None and isinstance(entry, dict) and all(valid(entry.get(k)) for k in NEVER):
        return {k: float(entry[k]) for k in NEVER}
    measure = measure or time_passes
    # Whole sweeps, repeated: a burst of load elsewhere on the host can flatter one sweep; the lowest break-even
    # of the SWEEPS is kept, so a layer goes sparse only where it paid every time.
    found = {k: 1.0 for k in NEVER}
    for _ in range(SWEEPS):
        sweep = dict(NEVER)
        for d in DENSITIES:  # descending: the first density at which a variant pays is its break-even
            dense_s, gather_s, gemm_s = measure(out_features, in_features, batch, input_grad, d)
            if not sweep["gemm"] and gemm_s <= MARGIN * dense_s:
                sweep["gemm"] = d
            if not sweep["gather"] and gather_s <= MARGIN * dense_s and gather_s <= gemm_s:
                sweep["gather"] = d
        found = {k: min(found[k], sweep[k]) for k in found}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {**cached, key: found})
    except (OSError, LotteryTicketError):
        pass  # a read-only home: measure again next time
    return found


def time_passes(out_features: int, in_features: int, batch: int, input_grad: bool, density: float,
                repeats: int = 21) -> tuple[float, float, float]:
    """Median seconds of one training pass of the layer at `density`: masked dense, sparse with the gathered
    weight gradient, sparse with the GEMM weight gradient. A pass is what a step spends on the layer: forward,
    backward, masking the dense gradient (dense only) and an Adam update of the weights it trains (the whole
    matrix, or the survivors)."""
    from .fused import FusedOptimizer

    g = torch.Generator().manual_seed(0)
    module = nn.Linear(in_features, out_features)
    keep = torch.rand(out_features, in_features, generator=g) < density
    keep_f = keep.float()
    x = torch.randn(batch, in_features, generator=g).requires_grad_(input_grad)
    grad_y = torch.randn(batch, out_features, generator=g)
    gather, gemm = SparseLinear(module, keep, "gather"), SparseLinear(module, keep, "gemm")
    # A tiny learning rate: the weights barely move, so every repeat times the same computation.
    optimizers = [FusedOptimizer([p], "adam", lr=1e-12) for p in (module.weight, gather.values, gemm.values)]

    def dense():
        F.linear(x, module.weight, module.bias).backward(grad_y)
        module.weight.grad.mul_(keep_f)
        optimizers[0].step()

    def gathered():
        gather.forward(x).backward(grad_y)
        optimizers[1].step()

    def through_gemm():
        gemm.forward(x).backward(grad_y)
        optimizers[2].step()

    def clear_grads():
        for p in (x, module.weight, module.bias, gather.values, gemm.values):
            p.grad = None

    return _interleaved_medians([dense, gathered, through_gemm], repeats, before_each=clear_grads)


def _interleaved_medians(passes: list[Callable[[], None]], repeats: int,
                         before_each: Callable[[], None]) -> tuple[float, ...]:
    """Median seconds of each pass, run in turn within every repeat so a load spike hits them alike;
    `before_each` (untimed) runs before every pass."""
    for fn in passes:
        before_each()
        fn()
    times: list[list[float]] = [[] for _ in passes]
    for _ in range(repeats):
        for fn, record in zip(passes, times):
            before_each()
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return tuple(sorted(t)[len(t) // 2] for t in times)


def plan_sparse_training(model: nn.Module, mask: PruningMask, mode: str, batch: int | None,
                         break_even: Callable[..., dict[str, float]] = break_even) -> SparseTraining:
    """The layers to train sparse this round: pruned Linear layers, all of them ("on"), none ("off"), or those
    at or below their measured break-even density ("auto"; needs the batch size), each with the cheaper way to
    form its weight gradient."""
    if mode not in MODES:
        raise LotteryTicketError(f"sparse_training={mode!r} is unknown; choose auto, on or off")
    layers: dict[str, SparseLinear] = {}
    if mode == "off":
        return SparseTraining(layers)
    seen_params = False
    uses = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    for name, module in model.named_modules():
        # The model's first layer gets raw inputs, which need no gradient: its sparse pass skips that product.
        input_grad = seen_params
        seen_params = seen_params or any(True for _ in module.parameters(recurse=False))
        weight_name = f"{name}.weight" if name else "weight"
        # Exactly nn.Linear, with an untied weight: subclasses (attention's out_proj) and tied weights are read
        # outside the module's forward, where the survivors' values would never be seen.
        if type(module) is not nn.Linear or weight_name not in mask.names or uses[id(module.weight)] > 1:
            continue
        keep = mask[weight_name]
        density = float(keep.sum()) / keep.numel()
        if density == 1.0 or module.weight.dtype != torch.float32 or module.weight.device.type != "cpu":
            continue
        if mode == "on":
            layers[name] = SparseLinear(module, keep, "gather" if density <= 0.1 else "gemm")
            continue
        if not batch:
            continue
        limits = break_even(module.out_features, module.in_features, batch, input_grad)
        if density <= limits["gather"]:
            layers[name] = SparseLinear(module, keep, "gather")
        elif density <= limits["gemm"]:
            layers[name] = SparseLinear(module, keep, "gemm")
    return SparseTraining(layers)
