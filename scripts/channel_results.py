"""Accuracy against compute for a channel-pruned run: each level's trained network exported without its pruned
filters, its MACs and parameters counted, and its CPU latency measured against the masked dense network.

    python scripts/channel_results.py RUN_DIR [--seed 0] [--batches 1,64] [--repeats 5]

RUN_DIR is a `lottery-ticket find --pruner channel-l1` run. For every level with a trained network: the test
accuracy of the run's record, MMACs and parameters of the exported model (export.channel.count_flops and
count_params), the largest output difference between the exported and the masked model on a batch of test-shaped
noise, and the median over --repeats of each one's mean latency per forward pass (0.1 s of passes per measurement) at each
batch size, measured interleaved on one thread. Prints a markdown
table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from lottery_ticket import PruningMask
from lottery_ticket.experiment.runfolder import RunFolder, read_run_config
from lottery_ticket.export.channel import count_flops, count_params, remove_pruned_channels
from lottery_ticket.io import load_tensors, read_json
from lottery_ticket.models import build_model_for_data
from lottery_ticket.state import restore_

SHAPES = {"cifar10": ((3, 32, 32), 10), "mnist": ((1, 28, 28), 10), "fashion-mnist": ((1, 28, 28), 10)}


def latency(model: torch.nn.Module, x: torch.Tensor, min_seconds: float = 0.1) -> float:
    """Mean seconds per forward pass over as many passes as fill `min_seconds` (after one warm-up pass)."""
    with torch.no_grad():
        model(x)
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_seconds:
            model(x)
            calls += 1
        return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = RunFolder(Path(args.run_dir))
    config = read_run_config(folder)
    shape, classes = SHAPES[config.dataset]
    seed = folder.seed(args.seed)
    print(f"# {args.run_dir}: {config.model} on {config.dataset}, pruner {config.prune.pruner}, "
          f"budget {config.train.budget}/level, torch {torch.__version__}, 1 thread")
    print("| level | weights left | test accuracy | params | MMACs | batch | masked dense (ms) | exported (ms) | speedup | max abs diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    level = 0
    while seed.trained(level).is_file() and seed.round_result(level).is_file():
        record = read_json(seed.round_result(level))
        model = build_model_for_data(config.model, args.seed, classes, shape, **config.model_kwargs)
        restore_(model, load_tensors(seed.trained(level)))
        mask = PruningMask.load(seed.mask(level), model)
        mask.apply(model)
        model.eval()
        small = remove_pruned_channels(model, mask)
        x_check = torch.randn(8, *shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            diff = float((small(x_check) - model(x_check)).abs().max())
        macs = count_flops(small, shape) / 1e6
        params = count_params(small) / 1e6
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, *shape)
            dense, exported = [], []
            for _ in range(args.repeats):  # interleaved: a load spike hits both
                dense.append(latency(model, x))
                exported.append(latency(small, x))
            d_ms, e_ms = 1e3 * statistics.median(dense), 1e3 * statistics.median(exported)
            print(f"| {level} | {record['weights_remaining_pct']:.1f} % | {100 * record['accuracy']:.2f} % | "
                  f"{params:.2f}M | {macs:.1f} | {batch} | {d_ms:.2f} | {e_ms:.2f} | {d_ms / e_ms:.2f}x | {diff:.1e} |",
                  flush=True)
        level += 1


if __name__ == "__main__":
    main()
