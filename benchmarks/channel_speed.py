"""CPU speed of channel pruning: the masked dense model vs the physically smaller one remove_pruned_channels builds.

    python benchmarks/channel_speed.py                                   # Conv-4, ResNet-20, CIFAR VGG-16
    python benchmarks/channel_speed.py --models conv4 --removed 0.5 --batch-sizes 1 64
    python benchmarks/channel_speed.py --run-dir runs/conv2-channel-1500it   # a channel-l1 run's trained levels

Each model is channel-pruned (ChannelL1Pruner.prune: that fraction of every eligible conv's filters, smallest
L1 norm first) from its initial weights: latency depends on the shapes, not on the values, so training first
would not change the timings. ResNet-20 prunes only the first conv of each block (the others feed residual
additions), so its compute falls by about half the fraction. Timing follows benchmarks/inference.py and
export/bench.py: torch.utils.benchmark's blocked_autorange at a fixed thread count, the two variants measured
interleaved `--repeats` times, the median reported, so a load spike from another process hits both alike.

With --run-dir, the networks are instead every finished level of a `lottery-ticket find --pruner channel-l1` run
(its trained weights and mask), reported with the level's test accuracy from the run's record.
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
from lottery_ticket.data import DATASETS  # noqa: E402
from lottery_ticket.experiment.runfolder import RunFolder, read_run_config  # noqa: E402
from lottery_ticket.export.bench import cpu_model  # noqa: E402
from lottery_ticket.io import load_tensors, read_json  # noqa: E402
from lottery_ticket.models import build_model, build_model_for_data  # noqa: E402
from lottery_ticket.pruning.channel import ChannelL1Pruner  # noqa: E402
from lottery_ticket.state import restore_  # noqa: E402

SHAPE = (3, 32, 32)


def time_pair(masked, small, x, threads: int, min_run_time: float, repeats: int) -> tuple[float, float]:
    times = {"masked": [], "small": []}
    for _ in range(repeats):
        for name, module in (("masked", masked), ("small", small)):
            timer = tbench.Timer("module(x)", globals={"module": module, "x": x}, num_threads=threads)
            times[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
    return statistics.median(times["masked"]), statistics.median(times["small"])


def trained_levels(run_dir: str, seed: int):
    """(level, record, masked trained network, mask, input shape) for every finished level of a run folder."""
    folder = RunFolder(Path(run_dir))
    config = read_run_config(folder)
    spec = DATASETS[config.dataset]
    seed_folder = folder.seed(seed)
    level = 0
    while seed_folder.trained(level).is_file() and seed_folder.round_result(level).is_file():
        model = build_model_for_data(config.model, seed, spec.num_classes, spec.input_shape, **config.model_kwargs)
        restore_(model, load_tensors(seed_folder.trained(level)))
        mask = PruningMask.load(seed_folder.mask(level), model)
        yield level, read_json(seed_folder.round_result(level)), mask.apply(model).eval(), mask, spec.input_shape
        level += 1


def measured_rows(masked, mask, shape, args):
    """params, MMACs, then per batch size: latency of both variants and their largest output difference."""
    small = remove_pruned_channels(masked, mask)
    for batch in args.batch_sizes:
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
        diff = float((masked(x) - small(x)).abs().max())
        t_masked, t_small = time_pair(masked, small, x, args.threads, args.min_run_time, args.repeats)
        yield (count_params(small), count_flops(small, shape), batch,
               f"{t_masked * 1e3:.2f} | {t_small * 1e3:.2f} | {t_masked / t_small:.2f}x | {diff:.1e}")


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
    parser.add_argument("--run-dir", help="time the trained levels of this channel-l1 run folder instead")
    parser.add_argument("--seed", type=int, default=0, help="with --run-dir: which of the run's seeds")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.run_dir:
        print(f"CPU {cpu_model()} ({torch.get_num_threads()} thread(s) used), torch {torch.__version__}, {args.run_dir}")
        print("| level | weights left | test accuracy | params | MMACs | batch | masked (ms) | exported (ms) | speedup | max abs diff |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for level, record, masked, mask, shape in trained_levels(args.run_dir, args.seed):
            for params, macs, batch, timings in measured_rows(masked, mask, shape, args):
                print(f"| {level} | {record['weights_remaining_pct']:.1f} % | {100 * record['accuracy']:.2f} % | "
                      f"{params / 1e6:.2f}M | {macs / 1e6:.1f} | {batch} | {timings} |", flush=True)
        return
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
            for p_small, f_small, batch, timings in measured_rows(masked, mask, SHAPE, args):
                print(f"| {name} | {removed:.0%} | {params / 1e6:.2f}M -> {p_small / 1e6:.2f}M | {macs / 1e6:.1f} -> "
                      f"{f_small / 1e6:.1f} | {batch} | {timings} |", flush=True)


if __name__ == "__main__":
    try:
        main()
    except LotteryTicketError as exc:
        print(f"channel_speed: {exc}", file=sys.stderr)
        sys.exit(2)
