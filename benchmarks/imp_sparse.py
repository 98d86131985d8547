"""Whole-IMP wall time with sparse-aware training on and off (issue 16), interleaved level by level.

    python benchmarks/imp_sparse.py [--budget 2000it] [--rounds 15] [--out runs/bench-imp-sparse] [--reference]

Two IMP runs of the lenet300-mnist preset (LeNet-300-100, paper per-layer rates: hidden 20 %, output 10 % per
level; 15 levels after the dense one reach 3.5 % of the hidden weights) differ only in
`train.sparse_training` ("off": today's masked dense step; "auto": pruned Linear layers train through their
survivors where this machine's measured break-even says so). Each level is the engine's whole level (prune the
previous level's trained weights, reset to θ₀, train the budget, evaluate, store), timed for one mode and then
the other, alternating which goes first, so machine noise hits both alike. Reported per level: seconds of each,
their ratio, which layers trained sparse, the masks' agreement (fraction of positions equal) and the accuracies.
Data: MNIST from ../shared/datasets/mnist (or LOTTERY_TICKET_DATA); the break-even calibration runs before the
timing starts, so it is not counted (it is cached per machine, once).

--reference adds a third run, untimed: the masked dense step on one thread instead of torch's default. It
changes nothing but the order of the sums inside the products, like the sparse path does, and shows how far
that alone moves the masks and accuracies of this experiment.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import torch

from lottery_ticket.cli import build_parser, config_from_args
from lottery_ticket.experiment.runner import ExperimentRunner
from lottery_ticket.training.calibration import break_even, plan_sparse_training

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"


def runner_for(mode: str, budget: str, rounds: int, out: Path, data_dir: str | None) -> ExperimentRunner:
    # The experiment exactly as `lottery-ticket find` would build it from these flags.
    config = config_from_args(build_parser().parse_args([
        "find", "--preset", "lenet300-mnist", "--seeds", "0", "--budget", budget, "--eval-every", budget,
        "--rounds", str(rounds), "--sparse-training", mode]))
    runner = ExperimentRunner(config, out / mode, data_dir=data_dir, verify_checksums=False, progress=False,
                              log=lambda line: None, checkpoint_every=0)
    runner.config = runner.claim_folder()
    return runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="2000it")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default="runs/bench-imp-sparse")
    parser.add_argument("--reference", action="store_true", help="also run the masked dense step on one thread")
    parser.add_argument("--data-dir", default=os.environ.get("LOTTERY_TICKET_DATA") or (str(SHARED) if SHARED.is_dir() else None))
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    runners = {mode: runner_for(mode, args.budget, args.rounds, out, args.data_dir) for mode in ("off", "auto")}
    if args.reference:
        runners["one thread"] = runner_for("off", args.budget, args.rounds, out / "one-thread", args.data_dir)
    imps = {mode: r.imp(0) for mode, r in runners.items()}
    threads = torch.get_num_threads()
    for r in runners.values():
        r.data  # loaded before the clock starts
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"lenet300-mnist, {args.budget}/level, {args.rounds} levels after the dense one")
    # Calibrate before timing: the break-even of every layer shape is measured once and cached.
    start = time.perf_counter()
    model = imps["auto"].trainable.build_model(0)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            print(f"# break-even density {name} ({module.out_features}x{module.in_features}, batch 60): "
                  f"{break_even(module.out_features, module.in_features, 60, name != 'fc1')}")
    print(f"# calibration (or cache read): {time.perf_counter() - start:.1f} s")
    extra = " | masks agree, 1 thread | acc dense, 1 thread" if args.reference else ""
    print("| level | weights left | masked dense s | sparse-aware s | ratio | sparse layers | masks agree | acc dense | "
          f"acc sparse{extra} |")
    print("| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---:" + (" | ---: | ---:" if extra else "") + " |")
    totals = {"off": 0.0, "auto": 0.0}
    for level in range(args.rounds + 1):
        seconds, rows = {}, {}
        for mode in (("off", "auto") if level % 2 == 0 else ("auto", "off")):
            start = time.perf_counter()
            rows[mode] = imps[mode].train_level(level)
            seconds[mode] = time.perf_counter() - start
            totals[mode] += seconds[mode]
        if args.reference:
            torch.set_num_threads(1)
            rows["one thread"] = imps["one thread"].train_level(level)
            torch.set_num_threads(threads)
        masks = {mode: imps[mode].mask(level) for mode in imps}

        def agree(mode):
            equal = sum(int((masks["off"][n] == masks[mode][n]).sum()) for n in masks["off"].names)
            return f"{100 * equal / masks['off'].num_total:.3f} %"

        reference = (f" | {agree('one thread')} | {100 * rows['one thread']['accuracy']:.2f}" if args.reference else "")
        sparse = plan_sparse_training(imps["auto"].trainable.build_model(0), masks["auto"], "auto", 60)
        print(f"| {level} | {rows['off']['weights_remaining_pct']:.1f} % | {seconds['off']:.2f} | {seconds['auto']:.2f} | "
              f"{seconds['auto'] / seconds['off']:.2f} | {', '.join(sparse.layers) or '-'} | {agree('auto')} | "
              f"{100 * rows['off']['accuracy']:.2f} | {100 * rows['auto']['accuracy']:.2f}{reference} |", flush=True)
    print(f"\nwhole IMP: masked dense {totals['off']:.1f} s, sparse-aware {totals['auto']:.1f} s, "
          f"ratio {totals['auto'] / totals['off']:.2f}")


if __name__ == "__main__":
    main()
