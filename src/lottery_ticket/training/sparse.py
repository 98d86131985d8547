"""Sparse-aware training: a pruned nn.Linear trained through its surviving weights only.

A masked dense step pays for every pruned weight: the forward and backward products run over the whole matrix
and the optimizer updates every position. Here a chosen layer trains a 1-D parameter `values` holding only its
survivors (row-major order), so each product and the optimizer's update cost in proportion to the survivors:

  forward           y = x Wᵀ + b as an embedding bag: bag r sums x's columns at row r's survivors, weighted by
                    their values (one bag per output unit; EmbeddingBag is torch's fastest CPU gather-sum)
  weight gradient   only at the survivors: grad[k] = Σ_b g[b, row_k] · x[b, col_k] (EmbeddingBag's fused
                    per-sample-weight gradient kernel), or at moderate densities read from the dense product gᵀx
  input gradient    the same bag over Wᵀ's survivors (skipped when the input needs no gradient, as in layer 1)

The dense weight stays the model's truth: the trainer writes the survivors' values back into it before anything
reads it (a callback that reads weights, the end of training), and the pruned positions are never written and stay
exactly 0, so evaluation, checkpoints, callbacks and the rewind snapshot see ordinary weights. Evaluation (no
autograd) uses the dense product on those weights.

Elementwise optimizers (SGD with momentum, Adam, AdamW) update each survivor exactly as the masked dense path
does; only the order of the sums in the products differs, so weights agree to float tolerance, not bit for bit.
Where the sparse step would be slower (dense layers, small or dense-ish ones) `calibration.py` keeps the masked
dense path.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LotteryTicketError

# Survivors whose (batch-long) products the fallback gathers at once: 4096 x 60 floats ~ 1 MB, cache-sized.
CHUNK = 4096
# How the weight gradient is formed: "gather" takes one dot product per survivor (cost ∝ survivors, but memory-bound:
# several times a GEMM's time per product on this CPU); "gemm" takes the dense product g^T x and reads it at the
# survivors (a dense GEMM's cost). calibration.py picks per layer.
WEIGHT_GRADIENTS = ("gather", "gemm")


class SparseLinear:
    """The survivor structure of one Linear layer under a fixed mask, and its trainable `values`."""

    def __init__(self, module: nn.Linear, keep: torch.Tensor, weight_grad: str = "gather"):
        if weight_grad not in WEIGHT_GRADIENTS:
            raise ValueError(f"weight_grad={weight_grad!r} must be one of {WEIGHT_GRADIENTS}")
        self.weight_grad = weight_grad
        weight = module.weight
        out_features, in_features = weight.shape
        keep = keep.bool()  # a CPU mask: sparse training runs on the CPU
        self.module = module
        self.flat_index = keep.flatten().nonzero().squeeze(1)  # row-major: sorted by row, then column
        self.rows = torch.div(self.flat_index, in_features, rounding_mode="floor")
        self.cols = self.flat_index % in_features
        self.offsets = _exclusive_cumsum(keep.sum(1))
        # Wᵀ's survivors, for the input gradient: the same values reordered by column.
        self.by_col = torch.argsort(self.cols, stable=True)
        self.rows_by_col = self.rows[self.by_col]
        self.offsets_by_col = _exclusive_cumsum(keep.sum(0))
        self.values = nn.Parameter(weight.detach().flatten()[self.flat_index].clone())

    @torch.no_grad()
    def write_back_(self) -> None:
        """Copy the trained survivors into the dense weight (pruned positions are never touched)."""
        self.module.weight.view(-1).index_copy_(0, self.flat_index, self.values)

    @torch.no_grad()
    def read_values_(self) -> None:
        """Take the survivors from the dense weight (after a checkpoint restored it)."""
        self.values.copy_(self.module.weight.view(-1)[self.flat_index])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # evaluation: the dense weight holds the same values
            return F.linear(x, self.module.weight, self.module.bias)
        lead = x.shape[:-1]
        y = _SparseLinearFunction.apply(x.reshape(-1, x.shape[-1]), self.values, self.module.bias, self)
        return y.reshape(*lead, self.module.out_features)


class _SparseLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, values, bias, layer: SparseLinear):
        x_t = x.detach().t().contiguous()  # (in, batch): bag rows are the inputs' columns
        # Detached: with a grad-requiring argument EmbeddingBag takes its slower path that prepares its own backward.
        y_t = F.embedding_bag(layer.cols, x_t, layer.offsets, mode="sum", per_sample_weights=values.detach())
        ctx.save_for_backward(x_t, values)
        ctx.layer = layer
        y = y_t.t()  # column-major: the next sparse layer's transpose of it is then free
        return y if bias is None else y + bias

    @staticmethod
    def backward(ctx, grad_y):
        x_t, values = ctx.saved_tensors
        layer: SparseLinear = ctx.layer
        grad_t = grad_y.t().contiguous()  # (out, batch)
        grad_x = grad_values = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = F.embedding_bag(layer.rows_by_col, grad_t, layer.offsets_by_col, mode="sum",
                                     per_sample_weights=values.detach()[layer.by_col]).t()
        if ctx.needs_input_grad[1]:
            if layer.weight_grad == "gemm":  # the dense product, read at the survivors: wins at moderate densities
                grad_values = (grad_t @ x_t.t()).view(-1).index_select(0, layer.flat_index)
            else:
                grad_values = _survivor_gradient(layer, grad_t, x_t)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_y.sum(0)
        return grad_x, grad_values, grad_bias, None


def _fused_survivor_gradient(layer: "SparseLinear", grad_t: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
    """grad[k] = <grad_t[row_k], x_t[col_k]> for every survivor k.

    This is exactly what EmbeddingBag's backward computes for its per-sample weights, in one fused kernel (about
    twice as fast on this CPU as gathering both rows and multiplying)."""
    return torch.ops.aten._embedding_bag_per_sample_weights_backward(  # mode 0: "sum"; padding_idx -1: none
        grad_t, x_t, layer.cols, layer.offsets, layer.rows, 0, -1)


def _gathered_survivor_gradient(layer: "SparseLinear", grad_t: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
    """The same by gathering both rows, in chunks: for torch builds without that kernel."""
    grad = grad_t.new_empty(layer.values.shape)
    for rows, cols, out in zip(layer.rows.split(CHUNK), layer.cols.split(CHUNK), grad.split(CHUNK)):
        torch.sum(grad_t.index_select(0, rows) * x_t.index_select(0, cols), dim=1, out=out)
    return grad


_survivor_gradient = (_fused_survivor_gradient if hasattr(torch.ops.aten, "_embedding_bag_per_sample_weights_backward")
                      else _gathered_survivor_gradient)


class SparseTraining:
    """Layers trained through their survivors for one training run: installed on the modules, removed after."""

    def __init__(self, layers: dict[str, SparseLinear]):
        self.layers = layers
        self.weights = {id(layer.module.weight) for layer in layers.values()}

    def __bool__(self) -> bool:
        return bool(self.layers)

    def trainable(self, params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
        """What the optimizer updates: each sparse layer's `values` in place of its dense weight."""
        return [p for p in params if id(p) not in self.weights] + [layer.values for layer in self.layers.values()]

    def install(self) -> None:
        for layer in self.layers.values():
            layer.module.forward = layer.forward  # an instance attribute: nn.Module.__call__ finds it first

    def remove(self) -> None:
        for layer in self.layers.values():
            layer.module.__dict__.pop("forward", None)

    def check_used(self) -> None:
        """After the first step: every sparse layer got a gradient, so its forward is what the model calls."""
        for name, layer in self.layers.items():
            if layer.values.grad is None:
                raise LotteryTicketError(f"layer {name!r} got no gradient through its forward: the model reads its "
                                         "weight directly (F.linear(x, layer.weight)?); train with "
                                         "sparse_training='off'")

    def write_back_(self) -> None:
        for layer in self.layers.values():
            layer.write_back_()

    def read_values_(self) -> None:
        for layer in self.layers.values():
            layer.read_values_()


def _exclusive_cumsum(counts: torch.Tensor) -> torch.Tensor:
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])  # bool counts sum to int64, EmbeddingBag's offsets
