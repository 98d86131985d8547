"""Checks before a run folder is written: the model builds, and your own model, data and loss work on one batch.

So a wrong [model_kwargs], a factory that raises or a loss that returns one value per example is one line, and
the corrected command then runs on the same --out.
"""

from __future__ import annotations

import fnmatch
from contextlib import ExitStack, contextmanager
from typing import Iterator

import torch

from ..errors import LotteryTicketError


@contextmanager
def weightless() -> Iterator[None]:
    """Build models with no weights: on the meta device, their in-place initializations skipped."""
    with ExitStack() as stack:
        stack.enter_context(torch.device("meta"))
        stack.enter_context(_SkipInitialization())
        yield


def check_model(runner) -> None:
    """Build the model once, so a factory that fails, [model_kwargs] the model refuses, or a model with no real
    weights stop in one line before any write. Registry models are built weightless (torch.device('meta')):
    building VGG-19 for real just to check it would cost seconds."""
    from ..plugins import is_import_path
    from .runner import RunTrainable

    c, seed = runner.config, runner.config.seeds[0]
    trainable = RunTrainable(runner, seed, None)
    try:
        if is_import_path(c.model):
            model = trainable.construct_model(seed)
        else:
            with weightless():
                model = trainable.construct_model(seed)
    except LotteryTicketError:
        raise
    except Exception as exc:  # the model's own constructor refused its arguments (num_classes=-3, ...)
        raise LotteryTicketError(f"model {c.model!r} with model_kwargs {c.model_kwargs} failed to build: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; fix "
                                 "--model or [model_kwargs]") from None
    if is_import_path(c.model) and any(p.is_meta for p in model.parameters()):
        raise LotteryTicketError(f"model {c.model!r} returned a model on the meta device (no weights to train); "
                                 "build it on the CPU, the run moves it to --device")
    names = [name for name, _ in model.named_parameters()]
    for option, patterns in (("--layer-rate", c.prune.layer_rates), ("--exclude", c.prune.exclude)):
        for pattern in patterns:
            if option == "--exclude" and pattern.startswith("type:"):
                continue  # a module class: resolved by the mask selection (runner.mask_selection), one line there
            if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
                raise LotteryTicketError(f"{option} pattern {pattern!r} matches no parameter of {c.model}; its "
                                         f"names look like {', '.join(names[:4])}")


def check_one_batch(runner) -> None:
    """Your own model, data or loss, tried on one real training batch (forward and loss, no update) before
    config.json is written: a data factory that yields nothing, labels out of range, a loss that raises or is
    not one finite number are one line, and the corrected command then runs on the same --out."""
    from ..data.loader import InMemoryLoader
    from ..data.types import DataSplits
    from ..training.batches import call_model, describe, logits_and_loss, split_batch, to_device, training_loss
    from ..training.trainer import resolve_loss
    from .runner import RunTrainable

    c, data = runner.config, runner.data
    if not c.code_paths():
        return
    where = f"{c.model} on {c.dataset} with loss {c.train.loss}"
    if isinstance(data, DataSplits):
        first = torch.arange(min(c.train.batch_size, len(data.train)))
        batches = {"train": InMemoryLoader(data.train.subset(first), len(first), mean=data.mean, std=data.std,
                                           shuffle=False, device="cpu")}
    else:
        batches = {"train": data.train, "test": data.test}
    found = {}
    for split, loader in batches.items():
        try:
            found[split] = next(iter(loader))
        except StopIteration:
            raise LotteryTicketError(f"data {c.dataset!r}: its {split!r} split yields no batch; give it at "
                                     "least one (inputs, targets) batch") from None
        except Exception as exc:
            raise LotteryTicketError(f"data {c.dataset!r}: iterating its {split!r} split raised "
                                     f"{type(exc).__name__}: {exc}") from None
    x, y = split_batch(found["train"])  # one line for a batch that is neither a pair nor a dict
    model = RunTrainable(runner, c.seeds[0], None).build_model(c.seeds[0])
    try:
        with torch.no_grad():
            outputs = call_model(model, to_device(x, runner.device))  # a dict batch is its own inputs
            targets = to_device(y, runner.device)
            logits = outputs if torch.is_tensor(outputs) else logits_and_loss(outputs)[0]
            if (logits.dim() == 2 and torch.is_tensor(targets) and not targets.is_floating_point() and targets.numel()
                    and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1])):
                raise LotteryTicketError(f"{where}: labels span {int(targets.min())}..{int(targets.max())} but "
                                         f"the model has {logits.shape[1]} outputs; fix the labels or num_classes")
            loss = training_loss(outputs, targets, resolve_loss(c.train.loss), c.train.loss == "cross_entropy")
    except LotteryTicketError:
        raise
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else ""
        shapes = f"inputs {describe(x)}, targets {tuple(y.shape) if torch.is_tensor(y) else type(y).__name__}"
        raise LotteryTicketError(f"{where}: one training batch ({shapes}) does not fit the model or the loss: "
                                 f"{type(exc).__name__}: {message}") from None
    if not torch.is_tensor(loss) or loss.numel() != 1 or not torch.isfinite(loss).all():
        shown = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
        raise LotteryTicketError(f"loss {c.train.loss!r} must return one finite number per batch (the batch's "
                                 f"mean), got {shown if torch.is_tensor(loss) and loss.numel() != 1 else loss!r}")


class _SkipInitialization(torch.overrides.TorchFunctionMode):
    """In-place initialization (normal_, uniform_, zero_ ...) of meta tensors does nothing: torch would route it
    through its reference implementations, which import torch._dynamo (~1.7 s) just to check a model's arguments."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__") and args and torch.is_tensor(args[0]) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))
