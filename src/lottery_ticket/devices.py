"""Devices: one check, before anything is written or built on them."""

from __future__ import annotations

import torch

from .errors import LotteryTicketError


def check_device(device: str | torch.device) -> torch.device:
    """The device, or one line saying why it cannot be used (before any file is written)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise LotteryTicketError(f"device {device!r} is not understood; pass cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LotteryTicketError(f"device {device!r} was asked for but this machine has no usable CUDA GPU; pass --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise LotteryTicketError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise LotteryTicketError(f"device {device!r} is not available here; pass --device cpu")
    return dev
