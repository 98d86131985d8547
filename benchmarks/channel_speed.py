"""CPU speed of channel pruning: the masked dense model vs the physically smaller one remove_pruned_channels builds.

    python benchmarks/channel_speed.py                                   # Conv-4, ResNet-20, CIFAR VGG-16
    python benchmarks/channel_speed.py --models conv4 --removed 0.5 --batch-sizes 1 64

Each model is channel-pruned (ChannelL1Pruner.prune: that fraction of every eligible conv's filters, smallest
L1 norm first) from its initial weights: latency depends on the shapes, not on the values, so training first
would not change the timings. ResNet-20 prunes only the first conv of each block (the others feed residual
additions), so its compute falls by about half the fraction. Timing follows benchmarks/inference.py and
export/bench.py: torch.utils.benchmark's blocked_autorange at a fixed thread count, the two variants measured
interleaved `--repeats` times, the median reported, so a load spike from another process hits both alike.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch
import torch.utils.benchmark as tbench

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lottery_ticket import LotteryTicketError, PruningMask  # noqa: E402
from lottery_ticket.export import count_flops, count_params, remove_pruned_channels  # noqa: E402
from lottery_ticket.export.bench import cpu_model  # noqa: E402
from lottery_ticket.models import build_model  # noqa: E402
from lottery_ticket.pruning.channel import ChannelL1Pruner  # noqa: E402

SHAPE = (3, 32, 32)


def time_pair(masked, small, x, threads: int, min_run_time: float, repeats: int) -> tuple[float, float]:
    times = {"masked": [], "small": []}
    for _ in range(repeats):
        for name, module in (("masked", masked), ("small", small)):
            timer = tbench.Timer("module(x)", globals={"module": module, "x": x}, num_threads=threads)
            times[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
    return statistics.median(times["masked"]), statistics.median(times["small"])


@torch.no_grad()
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["conv4", "cifar_resnet20", "cifar_vgg16"])
    parser.add_argument("--removed", type=float, nargs="+", default=[0.25, 0.5, 0.75],
                        help="fraction of each eligible conv's filters removed")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=1, help="fixed thread count (default 1: reproducible on a shared machine)")
    parser.add_argument("--min-run-time", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats per variant; the median is reported")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"CPU {cpu_model()} ({torch.get_num_threads()} thread(s) used), torch {torch.__version__}, float32, input {SHAPE}")
    print("params and MMACs: masked dense (the dense compute) -> exported; latency: median of interleaved repeats\n")
    print("| model | filters removed | params | MMACs | batch | masked dense (ms) | exported (ms) | speedup | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        model = build_model(name, seed=0).eval()
        params, macs = count_params(model), count_flops(model, SHAPE)
        for removed in args.removed:
            mask = ChannelL1Pruner().prune(model, PruningMask(model), removed)
            masked = mask.apply(copy.deepcopy(model)).eval()
            small = remove_pruned_channels(model, mask)
            p_small, f_small = count_params(small), count_flops(small, SHAPE)
            for batch in args.batch_sizes:
                x = torch.randn(batch, *SHAPE, generator=torch.Generator().manual_seed(batch))
                diff = float((masked(x) - small(x)).abs().max())
                t_masked, t_small = time_pair(masked, small, x, args.threads, args.min_run_time, args.repeats)
                print(f"| {name} | {removed:.0%} | {params / 1e6:.2f}M -> {p_small / 1e6:.2f}M | {macs / 1e6:.1f} -> "
                      f"{f_small / 1e6:.1f} | {batch} | {t_masked * 1e3:.2f} | {t_small * 1e3:.2f} | "
                      f"{t_masked / t_small:.2f}x | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    try:
        main()
    except LotteryTicketError as exc:
        print(f"channel_speed: {exc}", file=sys.stderr)
        sys.exit(2)
