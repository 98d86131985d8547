"""Inference speed of a 95%-sparse LeNet-300-100 ticket: dense vs masked dense vs CSR vs INT8 vs CSR+INT8.

    python benchmarks/inference.py                 # the table at batch 1, 64, 1024 (CPU, 1 thread)
    python benchmarks/inference.py --sweep         # CSR vs dense across sparsities: the break-even
    python benchmarks/inference.py --kernels       # per layer: dense vs torch.sparse.mm vs addmm vs embedding_bag
    python benchmarks/inference.py --gpu           # float16 on CUDA with a 2:4 ticket and the 2:4 path (cc >= 8.0)

The ticket is magnitude-pruned from the *initial* (untrained) weights, 95% in every layer
(MagnitudePruner(global_pruning=False)). Latency depends on the shapes and on how many weights
survive, not on accuracy, so training first would not change the timings; a trained LeNet often
has whole dead input pixels (all-zero columns), which a CSR kernel would only find easier.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import warnings
from pathlib import Path

import torch
import torch.utils.benchmark as tbench
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask  # noqa: E402
from lottery_ticket.export import benchmark_inference, format_table, to_sparse_csr  # noqa: E402


class LocalLeNet300(nn.Module):
    """Stand-in for lottery_ticket.models' LeNet-300-100 (same names and shapes) while that is not importable."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def build_lenet300(seed: int = 0) -> nn.Module:
    try:
        from lottery_ticket.models import build_model
    except ImportError:
        torch.manual_seed(seed)
        return LocalLeNet300()
    return build_model("lenet300", seed=seed)


def magnitude_ticket(model: nn.Module, sparsity: float) -> PruningMask:
    return MagnitudePruner(global_pruning=False).prune(model, PruningMask(model), sparsity)


def sweep(model: nn.Module, batches: list[int], threads: int, min_run_time: float, repeats: int) -> None:
    """Masked dense vs CSR (every layer converted) per sparsity and batch; prints ratios and interpolated break-evens."""
    torch.set_num_threads(threads)
    levels = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99]
    masks = {s: magnitude_ticket(model, s) for s in levels}
    print(f"CSR vs masked dense, LeNet-300-100 (magnitude ticket per layer), threads {threads}, torch {torch.__version__}")
    break_evens = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch in batches:
            x = torch.randn(batch, 784, generator=torch.Generator().manual_seed(0))
            print(f"\nbatch {batch}\n| sparsity | dense (µs) | CSR (µs) | CSR speedup |\n|---:|---:|---:|---:|")
            points = []
            for s in levels:
                dense = masks[s].apply(copy.deepcopy(model)).eval()
                csr = to_sparse_csr(dense, None, min_sparsity=0.0).eval()
                times = {"dense": [], "csr": []}
                for _ in range(repeats):
                    for name, m in (("dense", dense), ("csr", csr)):
                        t = tbench.Timer("m(x)", globals={"m": m, "x": x}, num_threads=threads)
                        times[name].append(t.blocked_autorange(min_run_time=min_run_time).median)
                d, c = statistics.median(times["dense"]), statistics.median(times["csr"])
                points.append((s, d / c))
                print(f"| {s:.0%} | {d * 1e6:.1f} | {c * 1e6:.1f} | {d / c:.2f}x |")
            break_evens[batch] = _break_even(points)
    print("\nbreak-even sparsity (CSR as fast as dense; the last crossing from below):")
    for batch, value in break_evens.items():
        print(f"  batch {batch}: {value}")


def _break_even(points: list[tuple[float, float]]) -> str:
    if points[-1][1] < 1.0:
        return "above 99%"
    if all(r >= 1.0 for _, r in points):
        return "at or below 50%"
    crossing = None
    for (s0, r0), (s1, r1) in zip(points, points[1:]):
        if r0 < 1.0 <= r1:
            crossing = s0 + (1.0 - r0) * (s1 - s0) / (r1 - r0)
    return f"{crossing:.1%}"


def kernels(model: nn.Module, mask: PruningMask, batch: int, threads: int, min_run_time: float, repeats: int) -> None:
    """Per layer, the CSR formulations SparseLinear chose between, against the dense kernel."""
    torch.set_num_threads(threads)
    params = dict(model.named_parameters())
    print(f"Kernels per layer, {mask.sparsity:.0%}-sparse LeNet-300-100, batch {batch}, threads {threads}, torch {torch.__version__}")
    print("| layer | dense F.linear | torch.sparse.mm, int64 CSR, x.t() view | addmm, int32 CSR, contiguous xᵀ | embedding_bag SpMM | xᵀ copy |")
    print("|---|---:|---:|---:|---:|---:|")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for layer in ("fc1", "fc2", "fc3"):
            w = params[f"{layer}.weight"].detach() * mask[f"{layer}.weight"]
            b = params[f"{layer}.bias"].detach()
            csr64 = w.to_sparse_csr()
            crow, col, values = csr64.crow_indices().int(), csr64.col_indices().int(), csr64.values()
            csr32 = torch.sparse_csr_tensor(crow, col, values, w.shape)
            x = torch.randn(batch, w.shape[1], generator=torch.Generator().manual_seed(0))
            xt = x.t().contiguous()
            env = {"F": nn.functional, "torch": torch, "x": x, "xt": xt, "w": w, "b": b, "bcol": b[:, None].contiguous(),
                   "csr64": csr64, "csr32": csr32, "crow": crow, "col": col, "values": values}
            stmts = {
                "dense": "F.linear(x, w, b)",
                "sparse.mm": "torch.sparse.mm(csr64, x.t()).t() + b",
                "addmm": "torch.addmm(bcol, csr32, xt)",
                "embedding_bag": "F.embedding_bag(col, xt, crow, mode='sum', per_sample_weights=values, include_last_offset=True).add_(bcol)",
                "transpose": "x.t().contiguous()",
            }
            times = {k: [] for k in stmts}
            for _ in range(repeats):
                for name, stmt in stmts.items():
                    times[name].append(tbench.Timer(stmt, globals=env, num_threads=threads).blocked_autorange(min_run_time=min_run_time).median)
            med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
            print(f"| {layer} {tuple(w.shape)} | {med['dense']:.1f} | {med['sparse.mm']:.1f} | {med['addmm']:.1f} | {med['embedding_bag']:.1f} | {med['transpose']:.1f} |")
    print("(µs, median; xᵀ copy is paid once per chain of sparse layers, by the first)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparsity", type=float, default=0.95)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--threads", type=int, default=1, help="fixed thread count (default 1: reproducible on a shared machine)")
    parser.add_argument("--min-run-time", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats per variant; the median is reported")
    parser.add_argument("--sweep", action="store_true", help="CSR vs dense speed across sparsities 50..99%%")
    parser.add_argument("--sweep-batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--kernels", action="store_true", help="per-layer timings of the CSR formulations at --sweep-batches")
    parser.add_argument("--gpu", action="store_true", help="run on CUDA in float16 with a 2:4 ticket and the 2:4 path")
    args = parser.parse_args(argv)

    model = build_lenet300(seed=0).eval()
    if args.sweep:
        sweep(model, args.sweep_batches, args.threads, args.min_run_time, args.repeats)
        return
    if args.kernels:
        for batch in args.sweep_batches:
            kernels(model, magnitude_ticket(model, args.sparsity), batch, args.threads, args.min_run_time, args.repeats)
        return
    if args.gpu:
        from lottery_ticket.pruning import Structured24Pruner

        mask = Structured24Pruner().prune_model(model)  # 50%: the 2:4 kernels take exactly this pattern
        rows = benchmark_inference(model, mask, tuple(args.batch_sizes), device="cuda", dtype=torch.float16,
                                   threads=args.threads, min_run_time=args.min_run_time, repeats=args.repeats)
    else:
        mask = magnitude_ticket(model, args.sparsity)
        rows = benchmark_inference(model, mask, tuple(args.batch_sizes), threads=args.threads,
                                   min_run_time=args.min_run_time, repeats=args.repeats)
    print(f"LeNet-300-100 ticket: {mask.sparsity:.1%} sparse ({mask.num_remaining:,} of {mask.num_total:,} weights), "
          f"magnitude-pruned from the initial weights")
    print(format_table(rows))


if __name__ == "__main__":
    try:
        main()
    except LotteryTicketError as exc:
        print(f"inference: {exc}", file=sys.stderr)
        sys.exit(2)
