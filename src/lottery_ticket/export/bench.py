"""Inference benchmark of a ticket's export paths: dense, masked dense, CSR, INT8, CSR+INT8, GPU 2:4.

Timing is torch.utils.benchmark's blocked_autorange with the thread count fixed. Variants are
measured interleaved, `repeats` times, and each row reports the median of those medians, so a load
spike from another process hits every variant alike and the speedups (ratios within one run) stay
meaningful on a shared machine.
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import warnings
from typing import Callable

import torch
import torch.utils.benchmark as tbench
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask
from .csr import sparse_layers, to_sparse_csr
from .quantize import quantize_int8, to_sparse_csr_int8


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device, dtype: torch.dtype, threads: int) -> dict:
    env = {"device": str(device), "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
           "threads": threads, "cpu": cpu_model(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _input_shape(model: nn.Module, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if input_shape is not None:
        return tuple(input_shape)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return (module.in_features,)
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            break
    raise LotteryTicketError("cannot infer the input shape of a model that starts with a conv; pass input_shape=(C, H, W)")


def _variants(model: nn.Module, mask: PruningMask, device: torch.device, dtype: torch.dtype,
              min_sparsity: float | None) -> tuple[dict[str, nn.Module | None], dict[str, str]]:
    """Name -> module (None when it cannot run here) and name -> note."""
    dense = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    masked = mask.apply(copy.deepcopy(model)).to(device=device, dtype=dtype).eval()
    variants: dict[str, nn.Module | None] = {"dense": dense, "masked-dense": masked}
    notes = {"dense": "unpruned weights: a different function, no diff"}
    cpu_f32 = device.type == "cpu" and dtype == torch.float32
    if device.type == "cpu" and dtype not in (torch.float32, torch.float64):
        variants["csr"], notes["csr"] = None, f"CPU CSR needs float32/float64, not {dtype}"
    else:
        variants["csr"] = to_sparse_csr(masked, None, min_sparsity).eval()
        converted = sparse_layers(variants["csr"])
        notes["csr"] = f"{len(converted)} CSR layer(s)" if converted else "no layer sparse enough: same as masked-dense"
    if cpu_f32:
        variants["int8"] = quantize_int8(masked).eval()
        variants["csr+int8"] = to_sparse_csr_int8(masked, None, min_sparsity).eval()
        n_csr = len(sparse_layers(variants["csr+int8"]))
        n_lin = sum(type(m) is nn.Linear for m in masked.modules())
        notes["csr+int8"] = f"CSR on {n_csr} layer(s), INT8 on the other {n_lin - n_csr}" + (" (= CSR)" if n_csr == n_lin else "")
    else:
        for name in ("int8", "csr+int8"):
            variants[name], notes[name] = None, "INT8 dynamic quantization runs on CPU float32 only"
    if device.type == "cuda":
        from .semi_structured import SUPPORTED_DTYPES, to_semi_structured

        if dtype not in SUPPORTED_DTYPES:
            variants["2:4"], notes["2:4"] = None, "2:4 kernels need dtype float16 or bfloat16"
        else:
            try:
                variants["2:4"] = to_semi_structured(masked, mask, dtype=dtype, device=device).eval()
            except LotteryTicketError as exc:  # e.g. the mask is not 2:4: say so in the table
                variants["2:4"], notes["2:4"] = None, str(exc)
    return variants, notes


def benchmark_inference(
    model: nn.Module,
    mask: PruningMask,
    batch_sizes: tuple[int, ...] = (1, 64, 1024),
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    threads: int | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    min_sparsity: float | None = None,
    min_run_time: float = 0.2,
    repeats: int = 3,
    variants: tuple[str, ...] | None = None,
    seed: int = 0,
) -> list[dict]:
    """Time every export of (model, mask) at each batch size; one dict per (variant, batch).

    Row keys: variant, batch, latency_us (median over the repeats), latency_iqr_us (their
    interquartile range: the noise), speedup (dense latency / this), max_abs_diff
    (vs the masked dense model on the same input; None for dense), note, and the environment
    (device, dtype, torch, threads, cpu, cpu_count[, gpu]). A variant that cannot run here has
    latency_us None and says why in note. `threads` defaults to torch.get_num_threads().
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LotteryTicketError("device='cuda' but no CUDA device is available; use device='cpu'")
    mask.validate(model)
    threads = torch.get_num_threads() if threads is None else int(threads)
    if threads < 1:
        raise LotteryTicketError(f"threads={threads} must be >= 1")
    shape = _input_shape(model, input_shape)
    env = environment(device, dtype, threads)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            built, notes = _variants(model, mask, device, dtype, min_sparsity)
            if variants is not None:
                unknown = [v for v in variants if v not in built]
                if unknown:
                    raise LotteryTicketError(f"unknown variant(s) {unknown}; choose from {list(built)}")
                built = {k: v for k, v in built.items() if k in variants or k in ("dense", "masked-dense")}
            rows = []
            for batch in batch_sizes:
                rows.extend(_bench_batch(built, notes, batch, shape, device, dtype, threads, min_run_time, repeats, seed, env))
    finally:
        torch.set_num_threads(previous_threads)
    return rows


@torch.no_grad()
def _bench_batch(built, notes, batch, shape, device, dtype, threads, min_run_time, repeats, seed, env) -> list[dict]:
    gen = torch.Generator().manual_seed(seed + batch)
    x = torch.randn(batch, *shape, generator=gen).to(device=device, dtype=dtype)
    runnable: dict[str, Callable] = {n: m for n, m in built.items() if m is not None}
    reference = built["masked-dense"](x).float()
    outputs, notes = {}, dict(notes)
    for name, module in list(runnable.items()):  # also the warm-up
        try:
            outputs[name] = module(x)
        except RuntimeError as exc:  # a kernel missing for this device/dtype: report it, time the rest
            del runnable[name]
            notes[name] = f"failed here: {str(exc).splitlines()[0][:120]}"
    times: dict[str, list[float]] = {n: [] for n in runnable}
    for _ in range(repeats):
        for name, module in runnable.items():
            timer = tbench.Timer("module(x)", globals={"module": module, "x": x}, num_threads=threads)
            times[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
    dense_s = statistics.median(times["dense"])
    rows = []
    for name in built:
        if name not in runnable:
            rows.append({"variant": name, "batch": batch, "latency_us": None, "latency_iqr_us": None, "speedup": None, "max_abs_diff": None,
                         "note": notes.get(name, ""), **env})
            continue
        latency = statistics.median(times[name])
        quartiles = statistics.quantiles(times[name], n=4) if len(times[name]) > 1 else [latency, latency, latency]
        diff = None
        if name != "dense":
            diff = float((outputs[name].float() - reference).abs().max())
        rows.append({"variant": name, "batch": batch, "latency_us": latency * 1e6,
                     "latency_iqr_us": (quartiles[2] - quartiles[0]) * 1e6, "speedup": dense_s / latency,
                     "max_abs_diff": diff, "note": notes.get(name, ""), **env})
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table (Markdown-compatible) with the environment as a header line."""
    if not rows:
        return "(no rows)"
    env = rows[0]
    head = f"device={env['device']} ({env.get('gpu') or env['cpu']}), dtype={env['dtype']}, torch {env['torch']}, threads={env['threads']}"
    lines = [head, "", "| variant | batch | latency (µs, median ± IQR/2) | speedup vs dense | max abs diff vs masked | note |",
             "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lat = "—" if r["latency_us"] is None else f"{r['latency_us']:.1f} ± {r.get('latency_iqr_us', 0.0) / 2:.1f}"
        spd = "—" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        diff = "—" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
        lines.append(f"| {r['variant']} | {r['batch']} | {lat} | {spd} | {diff} | {r['note']} |")
    return "\n".join(lines)
