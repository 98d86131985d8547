"""GPU 2:4 semi-structured sparsity vs dense, float16 (needs CUDA with compute capability >= 8.0).

    python benchmarks/gpu_24.py                    # LeNet-300-100 (padded) and a wide MLP, batch 1/64/1024/4096
    python benchmarks/gpu_24.py --hidden 4096 11008 --batch-sizes 64 4096

2:4 tickets come from Structured24Pruner on the initial weights (speed does not depend on accuracy).
LeNet-300-100 is too small for sparse tensor cores to pay off (its layers need zero padding to the
kernel's block multiples, and a launch costs more than its math); the wide MLP has the
transformer-sized layers where NVIDIA and torchao report ~1.1-1.6x for 2:4. Exits with the reason
when no suitable GPU is present.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lottery_ticket import LotteryTicketError  # noqa: E402
from lottery_ticket.export import benchmark_inference, check_device, format_table  # noqa: E402
from lottery_ticket.pruning import Structured24Pruner  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import build_lenet300  # noqa: E402


class WideMLP(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[4096, 4096, 4096], help="widths of the wide MLP (input first)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--dtype", choices=["float16", "bfloat16"], default="float16")
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        check_device()
    except LotteryTicketError as exc:
        print(f"gpu_24: {exc}", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    models = {"LeNet-300-100": build_lenet300(seed=0), f"MLP {'-'.join(map(str, args.hidden))}": WideMLP(args.hidden)}
    for title, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = Structured24Pruner().prune_model(model)
            rows = benchmark_inference(model.eval(), mask, tuple(args.batch_sizes), device="cuda", dtype=dtype,
                                       min_run_time=args.min_run_time, repeats=args.repeats)
        print(f"\n## {title}: 2:4 ticket, {mask.sparsity:.1%} sparse\n")
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
