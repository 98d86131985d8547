"""Pruning at initialization: score every weight of θ₀ once, rank all eligible layers together, prune the lowest.

    snip            |g ⊙ w|, g = dL/dw on a few batches                      Lee et al., ICLR 2019
    grasp           -w ⊙ (H g), H the Hessian of L (double backprop)         Wang et al., ICLR 2020
                    the HIGHEST scores are pruned (see GraspPruner)
    synflow         |dR/dw ⊙ w| of the network with every tensor made |.|,   Tanaka et al., NeurIPS 2020
                    R = sum of its output for one all-ones input; no data;
                    `iterations` rounds on an exponential schedule
    magnitude-init  |w| of θ₀ (global magnitude pruning before any training)

Every score is taken on the network the current mask leaves (pruned weights zeroed), on a copy in eval mode
(BatchNorm on its running statistics, no dropout: deterministic, and the mode Tanaka et al.'s code scores in
for all methods), so the caller's model is never touched. Ranking is ScorePruner's: exact counts, the
min_density layer-collapse guard and the tie order of pruning/selection.py (layer order, then flat index),
all inherited from MagnitudePruner with the scores in place of |w|; a pruned weight is never revived.

The scores read θ₀, not trained weights: IMP hands these pruners the initial network (`scores_at_init`,
engine.IMP.mask), so as an IMP criterion they are meaningful one-shot (`--one-shot --rounds 1`), and
iteratively they re-score θ₀ under each level's mask. SNIP and GraSP read batches; SynFlow only an input
shape: ScoringData carries both, from the run's trainable (experiment/runner.py) or given by you
(`pruner.attach(ScoringData(...))`).
"""

from __future__ import annotations

from abc import abstractmethod

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LotteryTicketError
from ..mask import PruningMask, named_parameters
from ..sparsity import check_sparsity, count_pruned
from .magnitude import MagnitudePruner

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ScoringData:
    """What the scores read besides θ₀.

    batches      SNIP and GraSP: a list of (inputs, targets) batches, or a function returning a fresh iterable
                 of them (read once per scoring; GraSP reads them twice)
    loss_fn      (outputs, targets) -> mean loss; the training loss
    input_shape  SynFlow: one example's shape, without the batch dimension (else the first batch's)
    """

    batches: Callable[[], Iterable[Batch]] | Iterable[Batch] | None = None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    input_shape: tuple[int, ...] | None = None

    def iter_batches(self) -> Iterable[Batch]:
        return self.batches() if callable(self.batches) else (self.batches or ())


# ---- the scores: {parameter name: score tensor}, for the mask's layers (every parameter without a mask) ----------
def _scoring_copy(model: nn.Module, mask: PruningMask | None, dtype: torch.dtype | None = None) -> nn.Module:
    """A copy of `model` in eval mode with the pruned weights zeroed: the network the mask leaves."""
    net = copy.deepcopy(model)
    if dtype is not None:
        net = net.to(dtype)
    net.eval()
    if mask is not None:
        mask.apply(net)
    return net


def _scored(net: nn.Module, mask: PruningMask | None) -> dict[str, nn.Parameter]:
    params = named_parameters(net)
    names = mask.names if mask is not None else list(params)
    for n in names:
        params[n].requires_grad_(True)
    return {n: params[n] for n in names}


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def _mean_gradient(net: nn.Module, params: dict[str, nn.Parameter], batches: list[Batch], loss_fn) -> list[torch.Tensor]:
    """dL/dw of the mean loss over the batches (each batch's loss a mean over its examples)."""
    if not batches:
        raise LotteryTicketError("no batches to score on; pass ScoringData(batches=[(inputs, targets), ...])")
    device, total = _device(net), None
    for x, y in batches:
        loss = loss_fn(net(x.to(device)), y.to(device))
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params.values())]
        total = grads if total is None else [t + g for t, g in zip(total, grads)]
    return [t / len(batches) for t in total]


def snip_scores(model: nn.Module, batches: Iterable[Batch], loss_fn=F.cross_entropy,
                mask: PruningMask | None = None) -> dict[str, torch.Tensor]:
    """SNIP's connection sensitivity |g ⊙ w|, g = dL/dw (Lee et al. 2019, eq. 6 up to its normalization, which
    does not change the ranking)."""
    net = _scoring_copy(model, mask)
    params = _scored(net, mask)
    grads = _mean_gradient(net, params, list(batches), loss_fn)
    return {n: (g * p).abs().detach() for (n, p), g in zip(params.items(), grads)}


def grasp_scores(model: nn.Module, batches: Iterable[Batch], loss_fn=F.cross_entropy,
                 mask: PruningMask | None = None) -> dict[str, torch.Tensor]:
    """GraSP's S(-w) = -w ⊙ (H g) (Wang et al. 2020, eq. 9): g = dL/dw held fixed, H g = d(gᵀ dL/dw)/dw.

    Removing weight q (δ = -w_q) changes the gradient norm gᵀg by about 2 δᵀ H g = 2 S_q: a large S_q is a weight
    whose removal reduces gradient flow least (or raises it), so GraspPruner prunes the highest scores. The
    authors' code also divides the logits by a temperature (200) before the loss; this does not.
    """
    net = _scoring_copy(model, mask)
    params = _scored(net, mask)
    batches = list(batches)
    g = [t.detach() for t in _mean_gradient(net, params, batches, loss_fn)]
    device, hg = _device(net), [torch.zeros_like(p) for p in params.values()]
    for x, y in batches:
        loss = loss_fn(net(x.to(device)), y.to(device))
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
        z = sum((gi * gr).sum() for gi, gr in zip(g, grads) if gr is not None)
        if not isinstance(z, torch.Tensor) or not z.requires_grad:  # no parameter's gradient depends on the weights
            continue
        for i, h in enumerate(torch.autograd.grad(z, list(params.values()), allow_unused=True)):
            if h is not None:
                hg[i] += h.detach()
    return {n: -(p.detach() * h / len(batches)) for (n, p), h in zip(params.items(), hg)}


def synflow_scores(model: nn.Module, input_shape: Iterable[int], mask: PruningMask | None = None) -> dict[str, torch.Tensor]:
    """SynFlow's synaptic saliency |dR/dw ⊙ w| with every weight (and buffer) replaced by its magnitude and
    R = sum(f(1)) for one all-ones input (Tanaka et al. 2020, eq. 2). Data-free.

    In float64 on a copy (the paper's code keeps the option of double precision: R is a product over the
    layers and overflows float32 in deep nets), in eval mode, so BatchNorm acts through its running
    statistics, made positive like every other tensor, as the authors' code does. The signed weights stay as
    they were: only the copy is made positive.
    """
    net = _scoring_copy(model, None, torch.float64)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    if mask is not None:
        mask.apply(net)
    params = _scored(net, mask)
    shape = tuple(int(s) for s in input_shape)
    ones = torch.ones((1, *shape), dtype=torch.float64, device=_device(net))
    try:
        output = net(ones)
    except RuntimeError as exc:
        raise LotteryTicketError(f"synflow feeds the model one all-ones input of shape {shape}, which it does not "
                                 f"take: {str(exc).splitlines()[0]}; pass the shape of one example") from None
    grads = torch.autograd.grad(output.sum(), list(params.values()), allow_unused=True)
    return {n: torch.zeros_like(p) if g is None else (g * p).abs().detach() for (n, p), g in zip(params.items(), grads)}


def magnitude_scores(model: nn.Module, mask: PruningMask | None = None) -> dict[str, torch.Tensor]:
    """|w| of the network as it is (θ₀ when IMP asks), pruned weights zero."""
    params = named_parameters(model)
    names = mask.names if mask is not None else list(params)
    return {n: params[n].detach().abs() * (mask[n].to(params[n].device) if mask is not None else 1) for n in names}


# ---- ranking -------------------------------------------------------------------------------------------------------
def lowest_scores(keys: list[torch.Tensor], keep: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """New keep-masks with exactly `count` more survivors pruned: those with the lowest keys (signed, compared in
    float64). Ties go as selection.select_lowest breaks them: layer order, then flat index, the first pruned."""
    flat_keep = [k.reshape(-1) for k in keep]
    alive = [torch.nonzero(k).reshape(-1) for k in flat_keep]
    new = [k.clone() for k in flat_keep]
    count = max(0, min(int(count), sum(a.numel() for a in alive)))
    if count:
        survivors = torch.cat([v.detach().to("cpu", torch.float64).reshape(-1)[a] for v, a in zip(keys, alive)])
        pruned = torch.zeros(survivors.numel(), dtype=torch.bool)
        pruned[torch.sort(survivors, stable=True).indices[:count]] = True  # stable: equal keys keep their order
        for n, a, p in zip(new, alive, torch.split(pruned, [a.numel() for a in alive])):
            n[a[p]] = False
    return [n.view_as(k) for n, k in zip(new, keep)]


class ScorePruner(MagnitudePruner):
    """Global pruning by a score of θ₀: the lowest `prune_order` keys go first, exact counts, never reviving.

    exclude, min_density   as every pruner (pruning/base.py); ranking is always global, as in the papers
    data                   ScoringData for the scores that read data (attach() sets it later)
    """

    scores_at_init = True  # IMP hands this pruner θ₀, not the trained weights (engine.IMP.mask)
    name = "score"

    def __init__(self, exclude: Iterable[str] = (), min_density: float | None = 0.0, data: ScoringData | None = None):
        super().__init__(global_pruning=True, exclude=exclude, min_density=min_density)
        self.data = data

    def __repr__(self) -> str:
        guard = "" if self.min_density == 0.0 else f", min_density={self.min_density}"
        return f"{type(self).__name__}(exclude={self.exclude}{guard})"

    @property
    def needs_data(self) -> bool:
        """Whether scoring still lacks data (the engine then attaches the trainable's)."""
        return False

    def attach(self, data: ScoringData) -> "ScorePruner":
        self.data = data
        return self

    @abstractmethod
    def scores(self, model: nn.Module, mask: PruningMask) -> dict[str, torch.Tensor]:
        """Each eligible weight's score; the lowest are pruned (see prune_order)."""

    def prune_order(self, scores: torch.Tensor) -> torch.Tensor:
        """Keys ranked lowest-first for pruning: the scores themselves (GraSP: their negatives)."""
        return scores

    def prune(self, model: nn.Module, mask: PruningMask, target_sparsity: float | Mapping[str, float]) -> PruningMask:
        if isinstance(target_sparsity, Mapping):
            raise LotteryTicketError(f"the {self.name} pruner ranks all eligible layers together; give one sparsity, "
                                     "not per-layer targets")
        return super().prune(model, mask, target_sparsity)

    def prune_fraction(self, model: nn.Module, mask: PruningMask, fraction: float) -> PruningMask:
        """One IMP level: round(fraction * survivors) more, as a cumulative target (SynFlow iterates to it)."""
        fraction = check_sparsity(fraction, "fraction")
        already, total = count_pruned(mask, self.eligible(mask))
        return self.prune(model, mask, (already + round(fraction * (total - already))) / total)

    def _ranking_values(self, model, mask, names):
        scores = self.scores(model, mask)
        bad = [n for n in names if not bool(torch.isfinite(scores[n]).all())]
        if bad:
            raise LotteryTicketError(f"{self.name} scores of {', '.join(bad[:3])} are NaN or infinite, so they rank "
                                     "nothing; check θ₀ and the scoring batches for NaN (synflow: a very deep net)")
        return {n: self.prune_order(scores[n]).detach().to("cpu", torch.float64) for n in names}

    @staticmethod
    def _select_lowest(values, keep, count):
        return lowest_scores(values, keep, count)


class SnipPruner(ScorePruner):
    """SNIP (Lee et al. 2019): prune the lowest |g ⊙ w| of θ₀."""

    name = "snip"

    @property
    def needs_data(self) -> bool:
        return self.data is None or self.data.batches is None

    def scores(self, model, mask):
        return snip_scores(model, self.data.iter_batches(), self.data.loss_fn, mask)


class GraspPruner(SnipPruner):
    """GraSP (Wang et al. 2020): prune the HIGHEST S = -w ⊙ (H g), keep the lowest (Algorithm 1: "remove the
    weights with the top scores"; the authors' code keeps score <= the threshold of the top fraction)."""

    name = "grasp"

    def scores(self, model, mask):
        return grasp_scores(model, self.data.iter_batches(), self.data.loss_fn, mask)

    def prune_order(self, scores):
        return -scores


class SynFlowPruner(ScorePruner):
    """SynFlow (Tanaka et al. 2020): `iterations` rounds of scoring and pruning, the density going down
    exponentially from the current one to the target's (their Algorithm 1; 100 by default). Re-scoring after
    each small step is what lets SynFlow avoid emptying a layer (their layer collapse). Needs only the input shape."""

    name = "synflow"

    def __init__(self, exclude: Iterable[str] = (), min_density: float | None = 0.0, data: ScoringData | None = None,
                 iterations: int = 100, input_shape: Iterable[int] | None = None):
        super().__init__(exclude, min_density, data)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise LotteryTicketError(f"iterations={iterations!r} must be an integer >= 1 (the paper uses 100)")
        self.iterations = iterations
        self.input_shape = tuple(input_shape) if input_shape is not None else None

    def __repr__(self) -> str:
        guard = "" if self.min_density == 0.0 else f", min_density={self.min_density}"
        return f"SynFlowPruner(exclude={self.exclude}{guard}, iterations={self.iterations})"

    def _shape(self) -> tuple[int, ...] | None:
        if self.input_shape is not None:
            return self.input_shape
        if self.data is not None and self.data.input_shape is not None:
            return tuple(self.data.input_shape)
        if self.data is not None and self.data.batches is not None:
            for x, _ in self.data.iter_batches():
                return tuple(x.shape[1:])
        return None

    @property
    def needs_data(self) -> bool:
        return self.input_shape is None and (self.data is None or (self.data.input_shape is None and self.data.batches is None))

    def scores(self, model, mask):
        shape = self._shape()
        if shape is None:
            raise LotteryTicketError("synflow needs the shape of one input; pass SynFlowPruner(input_shape=(1, 28, 28))")
        return synflow_scores(model, shape, mask)

    def prune(self, model, mask, target_sparsity):
        if isinstance(target_sparsity, Mapping):
            return super().prune(model, mask, target_sparsity)  # the one-line refusal
        target = check_sparsity(target_sparsity, "target_sparsity")
        already, total = count_pruned(mask, self.eligible(mask))
        start, end = 1.0 - already / total, 1.0 - target  # densities of the eligible weights
        if end >= start:  # at or past the target already: nothing more is pruned
            return super().prune(model, mask, target)
        current = mask
        for k in range(1, self.iterations + 1):
            # density start * (end / start) ** (k / n): never past the target, and exactly on it at the last round
            step = target if k == self.iterations else min(target, 1.0 - start * (end / start) ** (k / self.iterations))
            current = super().prune(model, current, step)
        return current


class MagnitudeInitPruner(ScorePruner):
    """Global magnitude pruning of θ₀, before any training (Frankle et al. 2021's magnitude-at-init baseline)."""

    name = "magnitude-init"

    def scores(self, model, mask):
        return magnitude_scores(model, mask)


AT_INIT_PRUNERS: dict[str, type[ScorePruner]] = {
    "snip": SnipPruner,
    "grasp": GraspPruner,
    "synflow": SynFlowPruner,
    "magnitude-init": MagnitudeInitPruner,
}


def make_at_init_pruner(name: str, **kwargs: Any) -> ScorePruner:
    if name not in AT_INIT_PRUNERS:
        raise LotteryTicketError(f"unknown pruning-at-init method {name!r}; choose from {', '.join(AT_INIT_PRUNERS)}")
    return AT_INIT_PRUNERS[name](**kwargs)
