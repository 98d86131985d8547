"""`lottery-ticket bench-inference RUN_DIR`: the final ticket of a run folder, measured dense vs sparse vs INT8."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import LotteryTicketError
from ..experiment.runfolder import RunFolder, read_run_config
from ..mask import PruningMask
from ..state import load_state, restore_
from .bench import benchmark_inference, format_table
from .size import storage_sizes


def load_final_ticket(run_dir: str | Path, seed: int | None = None) -> tuple[torch.nn.Module, PruningMask, int]:
    """The trained weights and mask of the last finished round of `seed` (default: the first seed)."""
    folder = RunFolder(Path(run_dir))
    return _final_ticket(folder, read_run_config(folder), seed)


def _final_ticket(folder: RunFolder, config, seed: int | None) -> tuple[torch.nn.Module, PruningMask, int]:
    from ..data import DATASETS
    from ..models import build_model_for_data

    run_dir = folder.root
    seed = config.seeds[0] if seed is None else seed
    sf = folder.seed(seed)
    finished = sorted(int(p.stem.split("_")[1]) for p in (sf.root / "rounds").glob("round_*.json"))
    finished = [r for r in finished if sf.trained(r).is_file() and sf.mask(r).is_file()]
    if not finished:
        raise LotteryTicketError(f"{run_dir} has no finished round for seed {seed}; run or resume it first")
    r = finished[-1]
    if config.dataset not in DATASETS or ":" in config.model:
        raise LotteryTicketError(f"bench-inference measures built-in models on built-in datasets; {run_dir} uses "
                                 f"{config.model} on {config.dataset}: load its ticket with lottery_ticket.state.load_state "
                                 "and lottery_ticket.export.benchmark_inference instead")
    spec = DATASETS[config.dataset]
    try:
        model = build_model_for_data(config.model, seed, spec.num_classes, spec.input_shape, **config.model_kwargs)
    except LotteryTicketError:
        raise
    except Exception as exc:  # the model's constructor refused the folder's [model_kwargs]
        raise LotteryTicketError(f"{run_dir}: model {config.model!r} with model_kwargs {config.model_kwargs} failed to "
                                 f"build: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    restore_(model, load_state(sf.trained(r)))
    mask = PruningMask.load(sf.mask(r), model)
    model.eval()
    return model, mask, r


def bench_run_folder(run_dir: str | Path, seed: int | None = None, batch_sizes=(1, 64, 1024), device: str = "cpu") -> str:
    import math
    import os

    from ..data import DATASETS

    folder = RunFolder(Path(run_dir))
    config = read_run_config(folder)
    model, mask, r = _final_ticket(folder, config, seed)
    shape = tuple(DATASETS[config.dataset].input_shape)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    # The inputs, the activations and the dense copy each export keeps: a batch whose input alone takes an eighth of
    # the machine's memory cannot be timed, and trying would swap or be killed, not say so.
    too_big = [b for b in batch_sizes if memory and shape and 8 * 4 * b * math.prod(shape) > memory]
    if too_big:
        raise LotteryTicketError(f"--batch-sizes {too_big[0]} cannot be allocated on this machine "
                                 f"({memory / 2**30:.0f} GiB); pass smaller batch sizes, e.g. 1,64,1024")
    try:
        rows = benchmark_inference(model, mask, batch_sizes=tuple(batch_sizes), device=device, threads=1)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise LotteryTicketError(f"--batch-sizes {max(batch_sizes)} ran out of memory ({str(exc).splitlines()[0]}); "
                                 "pass smaller batch sizes") from None
    sizes = storage_sizes(model, mask)
    lines = [f"{run_dir}: round {r}, {100 * mask.density:.1f}% of prunable weights remaining", format_table(rows), "",
             "size on disk (safetensors): " + ", ".join(f"{k} {v['bytes']:,} B" for k, v in sizes.items())]
    return "\n".join(lines)
