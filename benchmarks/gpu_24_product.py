"""GPU 2:4 product alone: the weight is compressed once, outside the timed call (issue 24 item 6).

    python benchmarks/gpu_24_product.py                      # sizes 1024..8192, batch 64..16384, float16

docs/runs/gpu-h200/gpu_24.txt timed the whole sparse module call and found ~1 ms at every size: that looked like
a per-call setup cost, not the product. Here the one-time costs are reported on their own:
`compress_ms` (to_sparse_semi_structured: pruning metadata and cuSPARSELt's compressed layout) and
`first_call_ms` (the first product, where cuSPARSELt makes its plan and searches its algorithms). The
`dense_ms` / `sparse_ms` columns time only `F.linear(x, W)` on the prepared operands: CUDA events around
REPEATS back-to-back products after warm-up, median of 5 such runs. Rows are printed as they finish.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lottery_ticket.pruning import nm_mask  # noqa: E402


def two_four_weight(n_out: int, n_in: int, generator: torch.Generator) -> torch.Tensor:
    weight = torch.randn(n_out, n_in, generator=generator)
    return (weight * nm_mask(weight, 2, 4)).half().cuda()


def time_product(x: torch.Tensor, weight, repeats: int) -> float:
    for _ in range(3):
        F.linear(x, weight)
    torch.cuda.synchronize()
    runs = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            F.linear(x, weight)
        end.record()
        end.synchronize()
        runs.append(start.elapsed_time(end) / repeats)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 1024, 16384])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 0):
        print("gpu_24_product: needs a CUDA GPU with compute capability >= 8.0; none here")
        return 0
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    SparseSemiStructuredTensor._FORCE_CUTLASS = False  # cuSPARSELt: CUTLASS's 2:4 kernels refuse sm_90 here
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, float16, y = x @ W.T, W n x n 2:4")
    print("| n | batch | compress_ms | first_call_ms | dense_ms | sparse_ms | speedup | dense TFLOP/s | max rel err |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    generator = torch.Generator().manual_seed(0)
    for n in args.sizes:
        weight = two_four_weight(n, n, generator)
        for batch in args.batch_sizes:
            x = torch.randn(batch, n, generator=generator).half().cuda()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            sparse_weight = to_sparse_semi_structured(weight)
            torch.cuda.synchronize()
            compress_ms = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            sparse_out = F.linear(x, sparse_weight)
            torch.cuda.synchronize()
            first_ms = (time.perf_counter() - t0) * 1e3
            dense_out = F.linear(x, weight)
            err = ((sparse_out.float() - dense_out.float()).abs().max() / dense_out.float().abs().max()).item()
            dense_ms = time_product(x, weight, args.repeats)
            sparse_ms = time_product(x, sparse_weight, args.repeats)
            tflops = 2 * batch * n * n / (dense_ms * 1e-3) / 1e12
            print(f"| {n} | {batch} | {compress_ms:.2f} | {first_ms:.2f} | {dense_ms:.4f} | {sparse_ms:.4f} | "
                  f"{dense_ms / sparse_ms:.2f}x | {tflops:.0f} | {err:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
