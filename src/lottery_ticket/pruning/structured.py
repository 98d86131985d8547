"""N:M structured sparsity (2:4 for NVIDIA sparse tensor cores), alone or under an IMP schedule.

Grouping: every run of `m` consecutive weights along the *input* dimension keeps at most `n`.
Linear [out, in] groups along `in`. Conv [out, C, *kernel] groups along the input channels C at
each (out, kernel position), the layout NVIDIA's ASP (apex.contrib.sparsity) uses: cuSPARSELt
runs convolutions as implicit GEMMs over NHWC activations, whose reduction dimension has C
innermost. (Grouping along the flattened [out, C*kh*kw] view instead would mix kernel taps of one
channel into a group and is not what the hardware consumes.) A layer whose grouped dimension is
not a multiple of `m` cannot take the pattern: it is left as it is and reported in `skipped`.

"At most n": a ticket that was already sparser keeps its extra zeros, so verification counts
nonzeros <= n per group rather than == n.
"""

from __future__ import annotations

import fnmatch
import warnings
from typing import Iterable, Mapping

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask, named_parameters
from .base import Pruner
from .magnitude import MagnitudePruner


def _check_nm(n: int, m: int) -> tuple[int, int]:
    for name, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise LotteryTicketError(f"{name}={v!r} must be an integer >= 1; e.g. n=2, m=4 for 2:4 sparsity")
    if n > m:
        raise LotteryTicketError(f"n={n} > m={m}: N:M keeps n of every m weights, so pass n <= m (e.g. 2:4)")
    return n, m


def _groups_view(t: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """`t` as [..., groups, m] with the input dim innermost, plus the permutation that put it there."""
    perm = (0, *range(2, t.dim()), 1)  # [out, C, *k] -> [out, *k, C]; identity-like for 2-D
    moved = t.permute(perm)
    return moved.reshape(*moved.shape[:-1], moved.shape[-1] // m, m), perm


def nm_incompatibility(shape: torch.Size | tuple[int, ...], m: int) -> str | None:
    """Why a weight of this shape cannot take an N:M pattern, or None when it can."""
    if len(shape) < 2:
        return f"{len(shape)}-D tensor has no input dimension"
    if shape[1] % m:
        return f"input dimension {shape[1]} is not a multiple of {m}"
    return None


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask keeping the `n` largest-magnitude weights of every group of `m` along the input dim.

    With `keep` (an existing mask), only survivors compete and the result is `keep & pattern`, so
    nothing pruned comes back. Ties go to the lower input index (a stable sort), so equal weights
    always give the same mask.
    """
    n, m = _check_nm(n, m)
    reason = nm_incompatibility(weight.shape, m)
    if reason:
        raise LotteryTicketError(f"weight of shape {tuple(weight.shape)} cannot take {n}:{m}: {reason}")
    scores = weight.detach().abs().to("cpu", torch.float32)
    if keep is not None:
        keep = keep.to("cpu", torch.bool)
        # -1 is below every |w|, so pruned weights only fill a slot when a group has < n survivors,
        # and the final `& keep` removes them again.
        scores = torch.where(keep, scores, torch.full_like(scores, -1.0))
    grouped, perm = _groups_view(scores, m)
    order = torch.sort(grouped, dim=-1, descending=True, stable=True).indices
    chosen = torch.zeros_like(grouped, dtype=torch.bool).scatter_(-1, order[..., :n], True)
    moved_shape = [weight.shape[p] for p in perm]
    inverse = [perm.index(i) for i in range(len(perm))]
    result = chosen.reshape(moved_shape).permute(inverse).contiguous()
    return result & keep if keep is not None else result


def verify_nm_pattern(tensor: torch.Tensor, n: int, m: int) -> bool:
    """True when every group of `m` along the input dim has at most `n` nonzeros (bool: at most n True)."""
    n, m = _check_nm(n, m)
    if nm_incompatibility(tensor.shape, m):
        return False
    grouped, _ = _groups_view(tensor.detach() != 0, m)
    return bool((grouped.sum(dim=-1) <= n).all())


def verify_24_pattern(tensor: torch.Tensor) -> bool:
    """True when every group of 4 along the input dim has at most 2 nonzeros (a ticket may have fewer)."""
    return verify_nm_pattern(tensor, 2, 4)


class NMPruner:
    """Magnitude-based N:M masks: `prune_model(model)` from scratch, `prune(model, mask)` on a ticket.

    exclude   name patterns left untouched (e.g. a first conv with 3 input channels)
    skipped   after each call: (name, reason) for every layer that could not take the pattern
    """

    def __init__(self, n: int = 2, m: int = 4, exclude: Iterable[str] = ()):
        self.n, self.m = _check_nm(n, m)
        self.exclude = tuple(exclude)
        self.skipped: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, m={self.m}, exclude={self.exclude})"

    def prune_model(self, model: nn.Module) -> PruningMask:
        """Prune `model` in place to the N:M pattern of its weight matrices, by magnitude; returns the mask."""
        mask = self.prune(model, PruningMask(model))
        mask.apply(model)
        return mask

    def prune(self, model: nn.Module, mask: PruningMask, target_sparsity: float | Mapping[str, float] | None = None) -> PruningMask:
        """Return `mask & N:M`: survivors compete for the n slots of each group, nothing is revived.

        `target_sparsity` is accepted so this fits where the finder expects a pruner, but N:M fixes
        the sparsity (>= 1 - n/m on every covered layer); a higher target is an error that points
        to NMConstrainedPruner, which prunes further by magnitude.
        """
        mask.validate(model)
        params = named_parameters(model)
        new = mask.copy()
        self.skipped = []
        for name in mask.names:
            if any(fnmatch.fnmatchcase(name, p) for p in self.exclude):
                continue
            reason = nm_incompatibility(params[name].shape, self.m)
            if reason:
                self.skipped.append((name, reason))
                continue
            new.masks[name] = nm_mask(params[name], self.n, self.m, keep=mask[name])
        if self.skipped:
            warnings.warn(
                f"{self.n}:{self.m} pattern not applied to {len(self.skipped)} layer(s): "
                + "; ".join(f"{n} ({r})" for n, r in self.skipped),
                stacklevel=2,
            )
        if target_sparsity is not None and not isinstance(target_sparsity, Mapping) and float(target_sparsity) > new.sparsity + 1e-9:
            raise LotteryTicketError(
                f"target_sparsity={target_sparsity} is above the {new.sparsity:.3f} an {self.n}:{self.m} mask reaches; "
                f"use NMConstrainedPruner(base=MagnitudePruner(), n={self.n}, m={self.m}) to prune further"
            )
        return new


class Structured24Pruner(NMPruner):
    """2:4 sparsity, the pattern NVIDIA Ampere+ sparse tensor cores accelerate."""

    def __init__(self, exclude: Iterable[str] = ()):
        super().__init__(2, 4, exclude)

    @staticmethod
    def verify_24_pattern(tensor: torch.Tensor) -> bool:
        """The spec's `pruner.verify_24_pattern(tensor)`: at most 2 nonzeros in every group of 4."""
        return verify_24_pattern(tensor)


class NMConstrainedPruner(Pruner):
    """IMP whose tickets obey N:M: project onto N:M, then let `base` prune by magnitude among survivors.

    The first round therefore jumps to at least 1 - n/m sparsity on every N:M-capable layer; later
    rounds only remove weights, so every group keeps at most n nonzeros for the rest of IMP. Works
    with LotteryTicketFinder(pruner=NMConstrainedPruner(...)), reset or rewind, one-shot or iterative.
    """

    name = "nm"

    def __init__(self, base: Pruner | None = None, n: int = 2, m: int = 4, exclude: Iterable[str] = ()):
        self.base = base if base is not None else MagnitudePruner(global_pruning=True)
        self.projector = NMPruner(n, m, exclude)

    def __repr__(self) -> str:
        return f"NMConstrainedPruner(base={self.base!r}, n={self.projector.n}, m={self.projector.m}, exclude={self.projector.exclude})"

    # Rates and exclusions are the base criterion's: IMP's schedule reads them from here.
    @property
    def layer_rates(self):
        return self.base.layer_rates

    @property
    def exclude(self):
        return self.base.exclude

    def rate_for(self, name: str, default: float) -> float:
        return self.base.rate_for(name, default)

    def eligible(self, mask: PruningMask) -> list[str]:
        return self.base.eligible(mask)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return self.projector.skipped

    def prune(self, model: nn.Module, mask: PruningMask, target_sparsity: float | Mapping[str, float]) -> PruningMask:
        projected = self.projector.prune(model, mask)
        return self.base.prune(model, projected, target_sparsity)

    def prune_fraction(self, model: nn.Module, mask: PruningMask, fraction: float) -> PruningMask:
        projected = self.projector.prune(model, mask)
        return self.base.prune_fraction(model, projected, fraction)
