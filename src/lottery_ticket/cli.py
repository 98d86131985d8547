"""The `lottery-ticket` command line. Parses arguments into an ExperimentConfig and hands it on;
no argparse namespace travels past this module."""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import sys
from pathlib import Path

from .errors import LotteryTicketError

EPILOG = """examples:
  lottery-ticket demo                                   # MNIST-1D, offline, ~2 min on a 2-core CPU
  lottery-ticket find --preset lenet300-mnist --seeds 0,1,2 --controls reinit,random-prune --out runs/lenet
  lottery-ticket find --model conv4 --dataset cifar10 --budget 2000it --rounds 5 --target-sparsity 0.8 --out runs/c4
  lottery-ticket resume runs/lenet                      # continue an interrupted run
  lottery-ticket report runs/lenet                      # table + plots/*.png
  lottery-ticket instability runs/lenet --rewind-steps 0,100,500   # linear mode connectivity
  lottery-ticket list                                   # models, datasets, presets
"""


TRUST_HELP = ("import the model/data/loss code the run folder names even though you did not make it (its config.json "
              "is not signed with your key): only for folders whose code you have read")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem, like every other error of ours."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _csv_ints(text: str) -> tuple[int, ...]:
    try:  # int() also takes '٣' and '1_000': seeds are written in ASCII digits only
        values = tuple(int(x) for x in text.split(",") if x.strip()) if re.fullmatch(r"[\d,\s-]*", text, re.ASCII) else ()
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 0,1,2")
    return values


def _positive_ints(text: str) -> tuple[int, ...]:
    values = _csv_ints(text)
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1, e.g. 1,64,1024")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or not text.strip().isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _layer_rate(text: str) -> tuple[str, float]:
    pattern, _, rate = text.rpartition("=")
    try:
        return pattern, float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not PATTERN=RATE, e.g. fc3.weight=0.1") from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the dataset files (default: $LOTTERY_TICKET_DATA, then the cache)")
    p.add_argument("--no-verify-checksums", action="store_true", help="accept data files whose MD5 differs from the official one")
    p.add_argument("--download", action="store_true", help="fetch missing or damaged dataset files (checksums verified; "
                                                           "$LOTTERY_TICKET_MIRROR is tried first)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--checkpoint-every", type=_positive_int, default=500, metavar="N",
                   help="save mid-training state every N steps (default 500)")
    p.add_argument("--distributed", action="store_true", help="train with DDP (launch with torchrun)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars to RUN_DIR/tensorboard "
                                                               "(needs `pip install tensorboard`)")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="train N seeds at once in N processes, one thread each (default 1; resume: the run's own)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lottery-ticket")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lottery-ticket", description="Find winning lottery tickets (Frankle & Carbin, ICLR 2019) "
                                     "by iterative magnitude pruning, with controls, resume, reports and fast export.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lottery-ticket {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    find = sub.add_parser("find", help="run IMP (and controls) into a run folder",
                          description="Run iterative magnitude pruning: train, prune, reset to θ₀ (or rewind), repeat.")
    find.add_argument("--preset", help="a paper protocol from `lottery-ticket list` (default: mnist1d-mlp)")
    find.add_argument("--model", help="override the preset's model: a name from `lottery-ticket list`, or your own "
                                      "'package.module:callable' returning an nn.Module")
    find.add_argument("--dataset", "--data", dest="dataset", help="override the preset's dataset; or your own: "
                      "'package.module:callable' returning {'train', 'test'[, 'val']} iterables of (inputs, targets)")
    find.add_argument("--framework", choices=["torch", "lightning", "huggingface"], help="who trains each network: "
                      "torch (our trainer, default); lightning (--model: your LightningModule factory, --dataset: your "
                      "LightningDataModule factory; docs/lightning.md); huggingface (--model: your PreTrainedModel "
                      "factory, --dataset: a factory of Trainer datasets and arguments; docs/huggingface.md)")
    find.add_argument("--metric", help="what each network is scored by: accuracy (default), perplexity, or "
                      "'package.module:callable' (logits, targets) -> the batch's mean (with --metric-mode); with "
                      "--framework: the value your evaluation logs, e.g. test_acc (lightning: what test_step logs) or "
                      "eval_accuracy (huggingface: Trainer.evaluate's key)")
    find.add_argument("--metric-mode", choices=["max", "min"], help="whether a higher (max) or lower (min) --metric is "
                      "better: needed for a metric of yours, and with --framework for anything but an accuracy")
    find.add_argument("--loss", help="cross_entropy (default), or 'package.module:callable' (outputs, targets) -> loss")
    find.add_argument("--rounds", type=int, help="number of pruning levels after the dense one")
    find.add_argument("--rate", type=float, help="fraction of the surviving weights pruned per level (the paper's form; "
                                                 "replaces the preset's per-layer rates)")
    find.add_argument("--target-sparsity", type=float, help="instead of a rate: the sparsity of the eligible weights "
                                                            "after the last level, in [0, 1)")
    find.add_argument("--pruner", help="pruning criterion: magnitude (default), random, nm, 2:4, sparse-global (open_lth), "
                                          "snip, grasp, synflow, magnitude-init (at initialization)")
    find.add_argument("--nm", help="N:M pattern for --pruner nm, e.g. 2:4 or 1:4")
    find.add_argument("--rewind-iteration", type=int, help="0: reset to θ₀ (paper); k: rewind to the weights after k steps")
    find.add_argument("--rewind-mode", choices=("continue", "restart"), help="continue (default, Frankle et al. 2020): "
                      "a rewound level trains steps k..T with the schedule and data order at k; restart: T steps from 0")
    find.add_argument("--one-shot", action="store_true", help="prune each level straight from the dense weights")
    find.add_argument("--global-pruning", dest="global_pruning", action="store_true", default=None, help="rank all layers together")
    find.add_argument("--layerwise", dest="global_pruning", action="store_false", help="prune each layer separately")
    find.add_argument("--seeds", type=_csv_ints, help="comma-separated seeds, e.g. 0,1,2")
    find.add_argument("--controls", type=_csv, help="reinit,random-prune (F&C's controls); also snip, grasp, synflow, "
                                                          "magnitude-init, shuffle-layerwise")
    find.add_argument("--budget", help="training length per round: '50000it' or '40ep'")
    find.add_argument("--lr", type=float, help="learning rate")
    find.add_argument("--batch-size", type=int, help="batch size")
    find.add_argument("--optimizer", help="sgd | adam | adamw")
    find.add_argument("--eval-every", help="evaluate every N ('100it', '1ep') for the early-stop iteration")
    find.add_argument("--early-stop-on-test", action="store_true", default=None, help="your data has no 'val' split: "
                      "pick the early-stopping iteration on the test set anyway (recorded; refused otherwise)")
    find.add_argument("--early-bird", type=float, metavar="EPS", help="stop dense training once the mask changes by less than EPS")
    find.add_argument("--momentum", type=float, help="SGD momentum")
    find.add_argument("--weight-decay", type=float, help="weight decay")
    find.add_argument("--warmup", help="linear LR warmup length, e.g. '2000it'")
    find.add_argument("--schedule", choices=("constant", "step", "cosine"), help="LR schedule")
    find.add_argument("--milestones", type=_csv, help="step schedule: where LR *= gamma, e.g. 20000it,25000it")
    find.add_argument("--augment", action="store_true", default=None, help="pad-4 random crop + flip (CIFAR)")
    find.add_argument("--amp", choices=("bf16",), help="mixed precision (autocast) where the device supports it")
    find.add_argument("--sparse-training", choices=("auto", "on", "off"),
                      help="train pruned Linear layers through their survivors only: off (default: the masked dense "
                           "step, the same path on every machine), on, or auto (where this machine measured it faster: "
                           "a timing, so results depend on the machine; each record names the layers it chose)")
    find.add_argument("--stack", choices=("on", "auto", "off"),
                      help="on: train a level's networks (seeds, controls) together as one stacked model; auto: on a "
                           "GPU only (on this project's 2-core CPU it was slower, docs/stacked.md); off (default): "
                           "one at a time")
    find.add_argument("--exclude", type=_csv, help="name patterns never pruned, e.g. fc3.weight (masked, kept "
                      "whole), or type:Class, e.g. type:MultiheadAttention (left out of the mask, reported as dense)")
    find.add_argument("--include", type=_csv, help="pruned besides every weight matrix (the default; embeddings and "
                      "norms are not): name patterns or module types, e.g. 'type:Embedding' or '*.wte.weight'")
    find.add_argument("--layer-rate", type=_layer_rate, action="append", metavar="PATTERN=RATE",
                      help="per-level rate of the layers a pattern names (repeatable), e.g. fc3.weight=0.1")
    find.add_argument("--config", metavar="FILE.toml", help="every setting in a TOML file; flags override it")
    find.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    find.add_argument("--out", help="run folder to create (or to continue, if it holds this same experiment)")
    _add_run_options(find)

    resume = sub.add_parser("resume", help="continue an interrupted run folder")
    resume.add_argument("run_dir")
    resume.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    _add_run_options(resume)

    rep = sub.add_parser("report", help="print the summary table and write plots/*.png")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--no-plots", action="store_true")

    cmp_ = sub.add_parser("compare", help="one table and plot of test accuracy vs weights remaining across runs",
                          description="Compare run folders of one dataset: mean ± std over seeds per level, one column "
                                      "(and plot line) per run, labelled by the settings that differ between the runs.")
    cmp_.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    cmp_.add_argument("--out", default="compare", help="folder for compare.csv and compare.png (default: ./compare)")
    cmp_.add_argument("--kind", default="ticket", choices=("ticket", "random_reinit", "random_pruning", "snip", "grasp", "synflow",
                                                                 "magnitude_init", "shuffle_layerwise"),
                      help="which result to compare (default: ticket)")

    demo = sub.add_parser("demo", help="the main job in one command: IMP + random-ticket control, EXPERIMENT SUMMARY")
    demo.add_argument("--dataset", default=None, help="mnist1d (default, offline), mnist, fashion-mnist, cifar10")
    demo.add_argument("--model", default=None, help="model to use (default: per dataset)")
    demo.add_argument("--out", default=None, help="run folder (default: a fresh temporary folder)")
    demo.add_argument("--data-dir")
    demo.add_argument("--no-verify-checksums", action="store_true")
    demo.add_argument("--download", action="store_true", help="fetch missing or damaged dataset files")
    demo.add_argument("--quiet", action="store_true")

    sub.add_parser("list", help="models, datasets, presets, pruners and controls")

    bench = sub.add_parser("bench-inference", help="measure dense vs sparse vs INT8 inference of a run's final ticket")
    bench.add_argument("run_dir")
    bench.add_argument("--seed", type=int, default=None, help="which seed's ticket (default: the first)")
    bench.add_argument("--batch-sizes", type=_positive_ints, default=(1, 64, 1024))
    bench.add_argument("--device", default="cpu")

    inst = sub.add_parser("instability", help="linear mode connectivity: error barrier between two copies trained from step k",
                          description="Instability analysis (Frankle, Dziugaite, Roy & Carbin, ICML 2020): for each level "
                                      "and k, train two copies of the level's network at step k to the end of the budget "
                                      "with different data orders, and measure the test error along the straight line "
                                      "between them. Results in RUN_DIR/instability/; rerunning skips what is done.")
    inst.add_argument("run_dir", metavar="RUN_DIR")
    inst.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    inst.add_argument("--rewind-steps", type=_csv_ints, required=True, metavar="K,...",
                      help="steps k at which the two copies split, e.g. 0,100,500 (each below the run's budget)")
    inst.add_argument("--levels", type=_csv_ints, metavar="L,...",
                      help="IMP levels to analyse (default: 0, the dense network, and the run's last finished level)")
    inst.add_argument("--points", type=int, default=11, help="interpolation points α in [0, 1], ends included (default 11)")
    inst.add_argument("--seed", type=int, default=None, help="which of the run's seeds (default: the first)")
    inst.add_argument("--data-dir", help="folder with the dataset files (default: $LOTTERY_TICKET_DATA, then the cache)")
    inst.add_argument("--no-verify-checksums", action="store_true", help="accept data files whose MD5 differs from the official one")
    inst.add_argument("--download", action="store_true", help="fetch missing or damaged dataset files")
    inst.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    inst.add_argument("--quiet", action="store_true", help="no progress bars")
    inst.add_argument("--checkpoint-every", type=_positive_int, default=500, metavar="N",
                      help="save a copy's mid-training state every N steps (default 500)")
    return parser


def _default_device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def config_from_args(args: argparse.Namespace):
    """Preset + explicit overrides -> a validated ExperimentConfig."""
    from .config import ExperimentConfig, PruneConfig, TrainConfig
    from .registries import check_names

    preset = base_config(args)
    train_overrides = {k: v for k, v in (("budget", args.budget), ("lr", args.lr), ("batch_size", args.batch_size),
                                         ("optimizer", args.optimizer), ("eval_every", args.eval_every),
                                         ("loss", args.loss), ("momentum", args.momentum),
                                         ("weight_decay", args.weight_decay), ("warmup", args.warmup),
                                         ("schedule", args.schedule), ("milestones", args.milestones),
                                         ("augment", args.augment), ("amp", args.amp),
                                         ("sparse_training", args.sparse_training), ("stack", args.stack),
                                         ("early_stop_on_test", args.early_stop_on_test))
                       if v is not None}
    prune_overrides = {k: v for k, v in (("rounds", args.rounds), ("rewind_iteration", args.rewind_iteration),
                                         ("rewind_mode", args.rewind_mode), ("global_pruning", args.global_pruning),
                                         ("pruner", args.pruner), ("nm", args.nm)) if v is not None}
    if args.one_shot:
        prune_overrides["one_shot"] = True
    if args.exclude is not None:
        prune_overrides["exclude"] = args.exclude
    if args.include is not None:
        prune_overrides["include"] = args.include
    if args.rate is not None and args.target_sparsity is not None:
        raise LotteryTicketError("--rate and --target-sparsity both given; pass the per-level rate or the final target")
    if args.rate is not None:
        prune_overrides.update(rate=args.rate, target_sparsity=None)
    if args.target_sparsity is not None:
        prune_overrides.update(target_sparsity=args.target_sparsity, rate=None)
    if args.rate is not None or args.target_sparsity is not None or args.global_pruning is not None:
        # An explicit schedule or ranking replaces the preset's per-layer rates, which would otherwise fix it.
        prune_overrides.setdefault("layer_rates", {})
    model = args.model or preset.model
    model_kwargs = preset.model_kwargs if model == preset.model else {}
    if model != preset.model:
        # Rates and exclusions name the preset model's layers; another model keeps only the schedule.
        prune_overrides.setdefault("layer_rates", {})
        prune_overrides.setdefault("exclude", ())
    if args.layer_rate:
        prune_overrides["layer_rates"] = dict(args.layer_rate)
    framework = args.framework or preset.framework
    if framework != "torch":
        # Your module trains with its own optimizer and batches: of the training settings only the budget is used,
        # so none of a preset's is shown or recorded (its rates and exclusions name another model's layers).
        ours = preset.framework != "torch"  # the base is your own --config file for this framework, not a preset
        unused = sorted(k for k in train_overrides if k != "budget")
        if unused:
            raise LotteryTicketError(f"--framework {framework} trains with your module's own optimizer and your "
                                     f"DataModule's batches; drop {', '.join('--' + k.replace('_', '-') for k in unused)}")
        if args.budget is None and not ours:
            raise LotteryTicketError(f"--framework {framework} needs --budget, the steps each training runs "
                                     "(e.g. --budget 2000it)")
        if not ours and (args.dataset is None or args.metric is None):
            raise LotteryTicketError(f"--framework {framework} needs --dataset (your DataModule factory, "
                                     "package.module:callable) and --metric (the test accuracy your module logs)")
        return check_names(ExperimentConfig(
            model=model, dataset=args.dataset or preset.dataset, model_kwargs=dict(model_kwargs),
            train=TrainConfig(budget=args.budget or preset.train.budget),
            prune=dataclasses.replace(preset.prune if ours else PruneConfig(), **prune_overrides),
            seeds=args.seeds or (preset.seeds if ours else (0,)),
            controls=args.controls if args.controls is not None else (preset.controls if ours else ()),
            preset=preset.preset if ours else None, early_bird=args.early_bird if args.early_bird is not None else (
                preset.early_bird if ours else None), framework=framework, metric=args.metric or preset.metric,
            metric_mode=args.metric_mode or (preset.metric_mode if ours else None)))
    from .plugins import is_import_path

    base_train = preset.train
    if is_import_path(args.dataset or preset.dataset):
        # Your loaders batch and augment: a preset's batch size or augmentation would be recorded but never used.
        given = [flag for flag, key in (("--batch-size", "batch_size"), ("--augment", "augment"))
                 if key in train_overrides]
        if given:
            raise LotteryTicketError(f"your data's loaders set their own batches and augmentation; drop "
                                     f"{', '.join(given)} (set them in your DataLoaders)")
        base_train = dataclasses.replace(base_train, batch_size=TrainConfig.batch_size, augment=False)
    return check_names(ExperimentConfig(
        model=model, dataset=args.dataset or preset.dataset, model_kwargs=dict(model_kwargs),
        train=dataclasses.replace(base_train, **train_overrides),
        prune=dataclasses.replace(preset.prune, **prune_overrides),
        seeds=args.seeds or preset.seeds, controls=args.controls if args.controls is not None else preset.controls,
        preset=preset.preset, early_bird=args.early_bird if args.early_bird is not None else preset.early_bird,
        metric=args.metric or preset.metric, metric_mode=args.metric_mode or preset.metric_mode,
    ))


def base_config(args: argparse.Namespace):
    """What the flags change: the --config file over its preset (or --preset, or the default preset)."""
    from .config import ExperimentConfig
    from .config_file import merged, read_config_file
    from .presets import DEFAULT_PRESET, get_preset

    file = read_config_file(args.config) if args.config else {}
    name = args.preset or file.get("preset") or (None if "model" in file else DEFAULT_PRESET)
    if name is None:  # a file that describes its own experiment from the defaults
        return ExperimentConfig.from_dict(file)
    preset = get_preset(name)
    base = ExperimentConfig(model=preset.model, dataset=preset.dataset, model_kwargs=dict(preset.model_kwargs),
                            train=preset.train, prune=preset.prune, preset=preset.name).to_dict()
    if file.get("model", preset.model) != preset.model:  # the preset's rates name its own model's layers
        base["prune"].update(layer_rates={}, exclude=[])
        base["model_kwargs"] = {}
    return ExperimentConfig.from_dict(merged(base, {**file, "preset": preset.name}))


def _runner(config, out: str, args, distributed: bool):
    from .experiment.runner import ExperimentRunner
    from .imp import SINGLE_PROCESS

    device = _default_device(args.device)
    collective = SINGLE_PROCESS
    if distributed:
        from .distributed import DDPCollective

        collective = DDPCollective(args.device)
        device = str(collective.device)
    progress = not args.quiet and sys.stderr.isatty()
    return ExperimentRunner(config, out, data_dir=args.data_dir, verify_checksums=not args.no_verify_checksums,
                            device=device, progress=progress, checkpoint_every=args.checkpoint_every,
                            collective=collective, workers=args.workers or 1, tensorboard=args.tensorboard,
                            download=args.download,
                            log=None if collective.is_writer else _quiet,
                            command=shlex.join(["lottery-ticket", *(sys.argv[1:] if _ARGV is None else _ARGV)]))


def _quiet(message: str) -> None:
    pass


def cmd_find(args) -> int:
    from .experiment.report import format_table

    config = config_from_args(args)
    if args.print_config:
        from .config_file import to_toml

        print(to_toml(config.to_dict()), end="")
        return 0
    if not args.out:
        raise LotteryTicketError("find needs --out RUN_DIR, the run folder to create or continue")
    runner = _runner(config, args.out, args, args.distributed)
    summary = runner.run()
    if runner.is_writer:
        print(format_table(summary, f"{config.model} on {config.dataset}"))
        print(f"run folder: {args.out}  (lottery-ticket report {args.out} writes plots)")
    return 0


def cmd_resume(args) -> int:
    from .experiment.report import format_table
    from .experiment.runfolder import RunFolder, changed_environment, read_run_config, reuse_execution

    folder = RunFolder(Path(args.run_dir))
    config = read_run_config(folder, run_code=True, trust_code=args.trust_code)
    if args.workers is None:  # the process/thread setup the run was made with: float sums in the same order
        args.workers = reuse_execution(folder)
    changes = changed_environment(folder)
    if changes:  # still resumed: the levels to come are valid, but not bit-identical to an uninterrupted run's
        print(f"warning: {args.run_dir} was made with {'; '.join(changes)}: the levels resumed here may differ in the "
              "last digits from an uninterrupted run", file=sys.stderr)
    runner = _runner(config, args.run_dir, args, args.distributed)
    summary = runner.run()
    if runner.is_writer:
        print(format_table(summary, f"{config.model} on {config.dataset}"))
    return 0


def cmd_report(args) -> int:
    from .experiment.report import report

    for run_dir in args.run_dirs:
        print(report(run_dir, plots=not args.no_plots))
        print()
    return 0


def cmd_compare(args) -> int:
    from .experiment.compare import compare

    print(compare(args.run_dirs, out=args.out, kind=args.kind))
    return 0


def cmd_list(args) -> int:
    from .data import DATASETS
    from .imp.controls import CONTROLS
    from .models import MODELS
    from .presets import PRESETS
    from .pruning.registry import PRUNER_SUMMARIES, PRUNERS

    print("models:   " + ", ".join(MODELS))
    print("datasets: " + ", ".join(DATASETS))
    print("presets:")
    for name, preset in PRESETS.items():
        print(f"  {name:28s} {preset.model} on {preset.dataset}: {preset.train.optimizer} lr {preset.train.lr:g}, "
              f"batch {preset.train.batch_size}, {preset.train.budget}/round, {preset.prune.rounds} rounds")
    print("pruners (--pruner):")
    for name in PRUNERS:
        print(f"  {name:28s} {PRUNER_SUMMARIES.get(name, '(registered without a summary)')}")
    print("controls (--controls):")
    for name, control in CONTROLS.items():
        print(f"  {name:28s} {control.summary or '(registered without a summary)'}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(dataset=args.dataset, model=args.model, out=args.out, data_dir=args.data_dir,
             verify_checksums=not args.no_verify_checksums, progress=not args.quiet and sys.stderr.isatty(),
             download=args.download)
    return 0


def cmd_bench_inference(args) -> int:
    from .export.cli import bench_run_folder

    print(bench_run_folder(args.run_dir, seed=args.seed, batch_sizes=args.batch_sizes, device=args.device))
    return 0


def cmd_instability(args) -> int:
    from .experiment.instability import format_instability, run_instability

    try:
        summary = run_instability(args.run_dir, rewind_steps=args.rewind_steps, levels=args.levels, points=args.points,
                                  seed=args.seed, data_dir=args.data_dir, verify_checksums=not args.no_verify_checksums,
                                  download=args.download, device=_default_device(args.device),
                                  progress=not args.quiet and sys.stderr.isatty(), checkpoint_every=args.checkpoint_every,
                                  trust_code=args.trust_code)
    except KeyboardInterrupt:
        print("\nlottery-ticket: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    print(format_instability(summary))
    return 0


COMMANDS = {"find": cmd_find, "resume": cmd_resume, "report": cmd_report, "compare": cmd_compare, "list": cmd_list,
            "demo": cmd_demo, "bench-inference": cmd_bench_inference, "instability": cmd_instability}


def _log_to_stdout() -> None:
    """The library logs through `logging` ('lottery_ticket'); the command line shows those lines on stdout."""
    import logging

    class Stdout(logging.Handler):
        def emit(self, record):  # the current sys.stdout, whatever replaced it since (pytest's capture, a notebook)
            print(self.format(record), file=sys.stdout, flush=True)

    logger = logging.getLogger("lottery_ticket")
    if not any(type(h).__name__ == "Stdout" for h in logger.handlers):
        logger.addHandler(Stdout())
    logger.setLevel(logging.INFO)


_ARGV: list[str] | None = None  # the arguments main() was given, for the run folder's record


def main(argv: list[str] | None = None) -> int:
    global _ARGV
    _ARGV = list(argv) if argv is not None else None
    _log_to_stdout()
    parser = build_parser()
    args = parser.parse_args(argv)
    empty = [name for name, value in vars(args).items()
             if any(isinstance(v, str) and not v.strip() for v in (value if isinstance(value, list) else [value]))]
    if empty:
        option = "RUN_DIR" if empty[0] in ("run_dir", "run_dirs") else "--" + empty[0].replace("_", "-")
        print(f"lottery-ticket: error: {option} is empty; give it a value or leave it out", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except LotteryTicketError as exc:
        print(f"lottery-ticket: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        target = getattr(args, "out", None) or getattr(args, "run_dir", None)
        hint = f"; continue with `lottery-ticket resume {target}`" if target else ""
        print(f"\nlottery-ticket: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
