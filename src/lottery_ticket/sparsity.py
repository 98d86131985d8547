"""Sparsity: one checked number, and the per-round schedule IMP derives from it."""

from __future__ import annotations

import math

from .errors import LotteryTicketError


def check_sparsity(value: float, name: str = "sparsity") -> float:
    """Return `value` as a float in [0, 1), or raise a one-line error saying how to fix it.

    1.0 is refused on purpose: a network with every weight pruned has no ticket to find.
    """
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise LotteryTicketError(f"{name}={value!r} is not a number; pass a fraction in [0, 1), e.g. 0.9") from None
    if not (0.0 <= s < 1.0) or math.isnan(s):
        hint = " (1 would prune every weight; e.g. 0.99 keeps 1 %)" if s == 1.0 else (
            f" (did you mean {s / 100:g}?)" if 1.0 < s < 100.0 else "")
        raise LotteryTicketError(f"{name}={value!r} is outside [0, 1); pass the fraction of weights to prune, e.g. 0.9{hint}")
    return s


def check_min_density(value: float | None) -> float | None:
    """None (no guard) or a fraction in [0, 1) of each layer's weights that pruning must leave."""
    if value is None:
        return None
    try:
        d = float(value)
    except (TypeError, ValueError):
        d = math.nan
    if isinstance(value, bool) or not 0.0 <= d < 1.0:
        raise LotteryTicketError(f"min_density={value!r} is not a fraction in [0, 1); pass e.g. 0.0 (keep one weight "
                                 "per layer), 0.01 (keep 1 %) or None (no guard)")
    return d


def parse_nm(text: str) -> tuple[int, int]:
    """An N:M pattern ('2:4': at most 2 of every 4 consecutive weights survive) as (N, M)."""
    try:
        n, m = (int(x) for x in str(text).split(":"))
    except ValueError:
        raise LotteryTicketError(f"nm={text!r} is not N:M; write e.g. '2:4'") from None
    if not (1 <= n <= m):
        raise LotteryTicketError(f"nm={text!r}: need 1 <= N <= M, e.g. '2:4'")
    return n, m


MAX_ROUNDS = 1000  # 0.8 ** 1000 of the weights is none of them; a bigger number is a typo, not an experiment


def check_rounds(value: int, name: str = "pruning_rounds") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LotteryTicketError(f"{name}={value!r} must be an integer >= 1; pass e.g. {name}=5")
    if value > MAX_ROUNDS:
        raise LotteryTicketError(f"{name}={value!r} is more than {MAX_ROUNDS} levels; pass e.g. {name}=15")
    return value


def per_round_rate(target_sparsity: float, rounds: int) -> float:
    """The fraction of *remaining* weights each round prunes so that `rounds` rounds reach the target.

    (1 - rate) ** rounds == 1 - target_sparsity.
    """
    target_sparsity = check_sparsity(target_sparsity, "target_sparsity")
    rounds = check_rounds(rounds)
    return 1.0 - (1.0 - target_sparsity) ** (1.0 / rounds)


def sparsity_after_round(target_sparsity: float, rounds: int, round_index: int) -> float:
    """Cumulative sparsity after round `round_index` (1-based) of `rounds`; the last lands exactly on the target."""
    if round_index >= rounds:
        return check_sparsity(target_sparsity, "target_sparsity")
    return 1.0 - (1.0 - per_round_rate(target_sparsity, rounds)) ** round_index


def count_pruned(mask, names=None) -> tuple[int, int]:
    """(pruned, total) over `names` of a PruningMask (default: all its layers).

    The one counting function: the pruners' global targets count the eligible layers with it, and the
    records report both the overall and the eligible sparsity from it.
    """
    import torch

    names = mask.names if names is None else list(names)
    total = sum(mask[n].numel() for n in names)
    alive = sum(int(torch.count_nonzero(mask[n])) for n in names)
    return total - alive, total
