"""remove_pruned_channels: cut a channel-pruned ticket's pruned filters out into a smaller dense model.

    small = remove_pruned_channels(model, mask)      # a new nn.Module; `model` is left as it is
    small(x) == mask.apply(copy.deepcopy(model)).eval()(x)    # to float tolerance, in eval mode

For every conv of the model that `pruning.channel.channel_links` knows (Conv-2/4/6, the VGGs, the CIFAR
VGGs and ResNets, the ImageNet ResNets) whose filters the mask prunes (all-False slices `weight[c, ...]`):
the conv loses those output channels (weight rows, bias), the BatchNorm after it the same entries
(weight, bias, running mean and variance), and the next layer the matching inputs: a conv its input
channels, the first Linear after the flatten the column block of each channel (channel x spatial positions,
the flatten's channel-major order).

A pruned filter is not silent in the masked model. Its weights are zero but its bias is not, and the
BatchNorm after it maps it to gamma * (bias - running_mean) / sqrt(running_var + eps) + beta; after ReLU
that is a constant v_c >= 0 at every position, which pooling keeps. Zeroing BatchNorm's beta as well would
change the function IMP trained (biases and BatchNorm train freely under a weight mask), so the export
keeps v_c instead and folds it into the next layer:

- Linear after the flatten, or a conv without zero padding: every output sees the whole constant, so
  bias += sum_c v_c * W[:, c] (summed over the column block or the kernel) is exact.
- a zero-padded conv (the 3x3 'same' convs): at the border part of the kernel falls on the padding, so the
  constant's contribution depends on the position. That layer becomes a `ChannelFoldedConv2d`, which adds
  conv2d(ones(H, W), sum_c v_c * W[:, c], same stride/padding) to its output: the exact map, computed once
  per input size and cached.

The result matches the masked model in eval mode (BatchNorm's running statistics); it is an inference
export and is returned in eval mode. count_params / count_flops measure before and after.
"""

from __future__ import annotations

import copy
import math
from typing import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LotteryTicketError
from ..mask import PruningMask, _unwrapped
from ..pruning.channel import ChannelLink, alive_channels, channel_links


class ChannelFoldedConv2d(nn.Conv2d):
    """A Conv2d plus the exact output of removed constant input channels: conv(x) + conv2d(1, fold).

    `fold` (out_channels, 1, kh, kw) is sum_c v_c * W[:, c] over the removed inputs c with constant value v_c.
    With zero padding its contribution differs at the border, so it is a map, cached per input size.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("fold", torch.zeros(self.out_channels, 1, *self.kernel_size, device=self.weight.device,
                                                 dtype=self.weight.dtype))
        self._fold_cache: dict = {}

    def fold_map(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (height, width, device, dtype, self.fold.data_ptr(), self.fold._version)
        cached = self._fold_cache.get(key)
        if cached is None:
            ones = torch.ones(1, 1, height, width, device=device, dtype=dtype)
            # padding_mode is "zeros" here (other modes see the constant everywhere and fold into the bias)
            cached = F.conv2d(ones, self.fold.to(device=device, dtype=dtype), None, self.stride, self.padding, self.dilation)
            self._fold_cache = {key: cached}  # one input size at a time: no unbounded growth
        return cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out + self.fold_map(x.shape[-2], x.shape[-1], x.device, x.dtype)


def _get(root: nn.Module, name: str) -> nn.Module:
    return root.get_submodule(name)


def _set(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


@torch.no_grad()
def _constants(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, removed: torch.Tensor) -> torch.Tensor:
    """The constant output (after BatchNorm and ReLU) of each removed filter: its weights are zero."""
    v = conv.bias[removed].double() if conv.bias is not None else torch.zeros(len(removed), dtype=torch.float64,
                                                                             device=conv.weight.device)
    if bn is not None:
        if bn.running_mean is None or bn.running_var is None:
            raise LotteryTicketError("BatchNorm without running statistics (track_running_stats=False) after a pruned "
                                     "conv: its output depends on the batch, so the removed channels are not constant")
        v = (v - bn.running_mean[removed].double()) / torch.sqrt(bn.running_var[removed].double() + bn.eps)
        if bn.weight is not None:
            v = v * bn.weight[removed].double() + bn.bias[removed].double()
    return torch.relu(v)


def _new_conv(old: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None, fold: torch.Tensor | None) -> nn.Conv2d:
    cls = ChannelFoldedConv2d if fold is not None else nn.Conv2d
    new = cls(weight.shape[1], weight.shape[0], old.kernel_size, old.stride, old.padding, old.dilation, 1,
              bias is not None, old.padding_mode, device=weight.device, dtype=weight.dtype)
    new.weight.copy_(weight)
    if bias is not None:
        new.bias.copy_(bias)
    if fold is not None:
        new.fold.copy_(fold)
    new.train(old.training)
    return new


def _plan(model: nn.Module, mask: PruningMask) -> tuple[list[ChannelLink], dict[str, torch.Tensor]]:
    links = channel_links(model)
    if links is None:
        raise LotteryTicketError(f"remove_pruned_channels knows Conv-2/4/6, the VGGs, the CIFAR VGGs and ResNets and the "
                                 f"ImageNet ResNets; {type(_unwrapped(model)).__name__} is none of them, so which layer "
                                 "reads each conv's channels is unknown")
    by_weight = {link.weight: link for link in links}
    keeps = {}
    for name, keep in mask.items():
        if keep.dim() != 4:
            continue
        alive = alive_channels(keep)
        if bool(alive.all()):
            continue
        if name not in by_weight:
            raise LotteryTicketError(f"the mask prunes whole filters of {name}, whose channels this export cannot remove "
                                     "(a residual addition, the output layer or an unknown consumer reads them); prune "
                                     "it with --pruner channel-l1, which leaves it alone")
        if not bool(alive.any()):
            raise LotteryTicketError(f"the mask prunes every filter of {name}; keep at least one (channel-l1 never "
                                     "empties a layer)")
        keeps[by_weight[name].conv] = alive
    return [link for link in links if link.conv in keeps], keeps


@torch.no_grad()
def remove_pruned_channels(model: nn.Module, mask: PruningMask) -> nn.Module:
    """A new, smaller dense model without the filters `mask` prunes whole; same outputs as the masked model in eval mode.

    Weights the mask prunes inside surviving filters are zeroed, as `mask.apply` would. The returned model is
    in eval mode; `model` is not changed. See the module docstring for what shrinks and how the removed
    filters' constant outputs (bias, BatchNorm beta) are kept.
    """
    mask.validate(model)
    links, keeps = _plan(model, mask)
    new = copy.deepcopy(_unwrapped(model))
    mask.apply(new)
    new.eval()
    # Everything is read from the masked copy before any module changes; producers and consumers are then
    # rebuilt once each, so a conv that is both (Conv-4's convs.1) loses rows and columns together.
    out_keep: dict[str, torch.Tensor] = {}
    in_plan: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # consumer -> (keep, removed, v)
    for link in links:
        alive = keeps[link.conv]
        conv = _get(new, link.conv)
        removed = torch.nonzero(~alive).flatten().to(conv.weight.device)
        bn = _get(new, link.bn) if link.bn else None
        out_keep[link.conv] = alive
        in_plan[link.consumer] = (alive, removed, _constants(conv, bn, removed))
        if bn is not None:
            _shrink_bn(new, link.bn, bn, alive)
    for name in dict.fromkeys([*out_keep, *in_plan]):
        module = _get(new, name)
        if isinstance(module, nn.Conv2d):
            _rebuild_conv(new, name, module, out_keep.get(name), in_plan.get(name))
        elif isinstance(module, nn.Linear):
            _rebuild_linear(new, name, module, in_plan[name])
        else:
            raise LotteryTicketError(f"{name} is a {type(module).__name__}; the export shrinks Conv2d and Linear only")
    return new


def _shrink_bn(root: nn.Module, name: str, bn: nn.BatchNorm2d, alive: torch.Tensor) -> None:
    idx = torch.nonzero(alive).flatten().to(bn.running_mean.device if bn.running_mean is not None else "cpu")
    new = nn.BatchNorm2d(len(idx), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new = new.to(device=idx.device, dtype=bn.weight.dtype if bn.weight is not None else torch.float32)
    if bn.affine:
        new.weight.copy_(bn.weight[idx])
        new.bias.copy_(bn.bias[idx])
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean[idx])
        new.running_var.copy_(bn.running_var[idx])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    new.train(bn.training)
    _set(root, name, new)


def _rebuild_conv(root, name: str, conv: nn.Conv2d, out_alive: torch.Tensor | None, inputs) -> None:
    if conv.groups != 1:
        raise LotteryTicketError(f"{name} is a grouped conv (groups={conv.groups}); the export handles groups=1 only")
    weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach().clone()
    fold = conv.fold.detach().clone() if isinstance(conv, ChannelFoldedConv2d) else None
    if inputs is not None:
        in_alive, removed, v = inputs
        contribution = torch.einsum("c,ocij->oij", v, weight[:, removed].double()).unsqueeze(1)  # (O, 1, kh, kw)
        weight = weight[:, in_alive.to(weight.device)]
        padded = any(p != 0 for p in conv._reversed_padding_repeated_twice) and conv.padding_mode == "zeros"
        if padded:
            fold = contribution.to(weight.dtype) if fold is None else fold + contribution.to(weight.dtype)
        else:  # every output position sees the whole kernel: a constant per output channel
            extra = contribution.sum(dim=(1, 2, 3)).to(weight.dtype)
            bias = extra if bias is None else bias + extra
    if out_alive is not None:
        rows = out_alive.to(weight.device)
        weight = weight[rows]
        bias = None if bias is None else bias[rows]
        fold = None if fold is None else fold[rows]
    _set(root, name, _new_conv(conv, weight, bias, fold))


def _rebuild_linear(root, name: str, linear: nn.Linear, inputs) -> None:
    in_alive, removed, v = inputs
    channels = in_alive.numel()
    if linear.in_features % channels:
        raise LotteryTicketError(f"{name} reads {linear.in_features} features, not a multiple of the {channels} channels "
                                 "before it; the export expects a flatten of (channels, height, width)")
    spatial = linear.in_features // channels
    weight = linear.weight.detach()
    blocks = weight.reshape(weight.shape[0], channels, spatial)
    extra = torch.einsum("c,ocs->o", v, blocks[:, removed].double()).to(weight.dtype)
    kept = blocks[:, in_alive.to(weight.device)].reshape(weight.shape[0], -1)
    new = nn.Linear(kept.shape[1], kept.shape[0], bias=True, device=weight.device, dtype=weight.dtype)
    new.weight.copy_(kept)
    new.bias.copy_(extra if linear.bias is None else linear.bias.detach() + extra)
    new.train(linear.training)
    _set(root, name, new)


# ---- size ------------------------------------------------------------------------------------------
def count_params(model: nn.Module) -> int:
    """Parameters (every one, biases and BatchNorm included; a tied tensor once)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: Iterable[int]) -> int:
    """Multiply-accumulates of the Conv and Linear layers for one input of `input_shape` (C, H, W), as pruning
    papers count "FLOPs" (Li et al. 2017). Conv: output positions x out_channels x in_channels/groups x kernel;
    Linear: in x out features per row. Biases, BatchNorm, activations, pooling and a fold map are not counted."""
    shape = tuple(int(d) for d in input_shape)
    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        total += out[0].numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear_hook(m, inp, out):
        nonlocal total
        total += out[0].numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    param = next(model.parameters(), None)
    try:
        model.eval()
        model(torch.zeros(1, *shape, device=param.device if param is not None else "cpu",
                          dtype=param.dtype if param is not None else torch.float32))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def shrink_report(model: nn.Module, small: nn.Module, input_shape: Iterable[int]) -> dict[str, float]:
    """Parameters and MACs (count_flops) before (`model`, dense or masked: the same compute) and after the export."""
    shape = tuple(input_shape)
    before_p, after_p = count_params(_unwrapped(model)), count_params(small)
    before_f, after_f = count_flops(_unwrapped(model), shape), count_flops(small, shape)
    return {"params_before": before_p, "params_after": after_p, "params_ratio": after_p / before_p,
            "flops_before": before_f, "flops_after": after_f, "flops_ratio": after_f / before_f}
