"""What a batch and a model's output may look like, in one place: the trainer, the evaluator and the loaders ask here.

Batches: `(inputs, targets)` pairs, where inputs is a tensor or a dict of tensors (passed as keyword arguments),
or a dict such as a Hugging Face collator gives, passed whole as keyword arguments, its targets under "labels".
Outputs: a tensor of class scores, or a dict / `transformers.ModelOutput` with "logits" and, optionally, "loss".
Class scores sit on dim 1 (torch's convention, as F.cross_entropy reads them) or, for sequences, on the last dim
([batch, tokens, vocabulary] against [batch, tokens] targets, as language models give them); targets of -100 are
ignored, as in F.cross_entropy and Hugging Face.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional as F

from ..errors import LotteryTicketError

IGNORE_INDEX = -100


def to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def split_batch(batch: Any) -> tuple[Any, torch.Tensor | None]:
    """(inputs, targets) of a batch; one line for anything else."""
    if isinstance(batch, Mapping):
        return batch, batch.get("labels")
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    size = len(batch) if hasattr(batch, "__len__") else "?"
    raise LotteryTicketError(f"a batch of the data is a {type(batch).__name__} of length {size}; yield (inputs, "
                             "targets) pairs or dicts (keyword arguments of the model, targets under 'labels')")


def describe(inputs: Any) -> str:
    """The shapes of a batch's inputs, for error messages."""
    if isinstance(inputs, Mapping):
        return "{" + ", ".join(f"{k}: {tuple(v.shape)}" for k, v in inputs.items() if isinstance(v, torch.Tensor)) + "}"
    return str(tuple(inputs.shape)) if isinstance(inputs, torch.Tensor) else type(inputs).__name__


def examples_in(inputs: Any, targets: torch.Tensor | None) -> int | None:
    """How many examples a batch holds: the targets' first dim, else the first input tensor's."""
    if isinstance(targets, torch.Tensor):
        return int(targets.shape[0])
    tensors = [v for v in inputs.values() if isinstance(v, torch.Tensor)] if isinstance(inputs, Mapping) else [inputs]
    return int(tensors[0].shape[0]) if tensors and isinstance(tensors[0], torch.Tensor) else None


def call_model(model, inputs: Any) -> Any:
    return model(**inputs) if isinstance(inputs, Mapping) else model(inputs)


def logits_and_loss(outputs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The class scores and the model's own loss (None when it computes none) of a model's output."""
    if isinstance(outputs, torch.Tensor):
        return outputs, None
    if isinstance(outputs, Mapping):  # a dict, or a transformers ModelOutput (an OrderedDict)
        logits, loss = outputs.get("logits"), outputs.get("loss")
        if isinstance(logits, torch.Tensor):
            return logits, loss
    raise LotteryTicketError(f"the model returned a {type(outputs).__name__}; return a tensor of class scores or a "
                             "dict / ModelOutput with 'logits' (and optionally 'loss')")


def class_scores(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores as [N, classes] and targets as [N] (ignored targets kept): classes on dim 1 when the shapes say so,
    else on the last dim. One line when neither fits."""
    if logits.dim() >= 2 and logits.shape[0] == targets.shape[0] and logits.shape[2:] == targets.shape[1:]:
        return logits.movedim(1, -1).reshape(-1, logits.shape[1]), targets.reshape(-1)
    if logits.dim() >= 3 and logits.shape[:-1] == targets.shape:
        return logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    raise LotteryTicketError(f"outputs of shape {tuple(logits.shape)} and targets of shape {tuple(targets.shape)} do not "
                             "give a classification (class scores on dim 1 or, for sequences, on the last dim, class "
                             "indices as targets); reshape them in the model or the data")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The default loss: F.cross_entropy, with a sequence's class scores on the last dim moved where it reads them."""
    if logits.dim() > 2 and not (logits.shape[0] == targets.shape[0] and logits.shape[2:] == targets.shape[1:]):
        logits, targets = class_scores(logits, targets)
    return F.cross_entropy(logits, targets)


def training_loss(outputs: Any, targets: torch.Tensor | None, loss_fn, default_loss: bool) -> torch.Tensor:
    """The loss a batch trains on: for a dict / ModelOutput under the default loss, the model's own 'loss' when it
    gives one (a causal LM shifts its labels itself); else loss_fn(class scores, targets)."""
    if type(outputs) is torch.Tensor:
        return loss_fn(outputs, targets)
    logits, own = logits_and_loss(outputs)
    if own is not None and default_loss:
        return own
    if targets is None:
        raise LotteryTicketError("the batches have no targets ('labels') and the model returns no 'loss'; "
                                 "yield (inputs, targets) or put the targets under 'labels'")
    return loss_fn(logits, targets)
