"""Structured channel (filter) pruning: Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient
ConvNets", ICLR 2017. Each conv layer's output filters are ranked by the L1 norm of their weights and the
smallest are removed; export/channel.py then cuts them out into a smaller dense model.

In the mask a pruned filter is an all-False slice `weight[c, ...]` of a conv weight. Only `nn.Conv2d`
weights with groups=1 are pruned: Linear layers (hence the output layer) keep all their outputs, and the
model's `output_layer_name` is never touched even if it is a conv.

The rules, stated once (docs/channel_pruning.md says the same):

ranking     L1 norm of each surviving filter's masked weights, per layer (never across layers, as Li et al.).
            Ties: the lower channel index is pruned first (a stable sort), so the same weights always give
            the same mask.
counts      prune_fraction(rate): each layer loses round(rate * its surviving filters), its own rate where
            `layer_rates` names one (the most specific pattern wins). prune(target): each layer ends with
            round(target * out_channels) filters pruned (a float for every layer, or {layer: target});
            a target below where a layer already is prunes nothing more. A pruned filter is never revived;
            a partly pruned filter (a mask from another pruner) counts as surviving.
floor       a layer keeps at least max(1, ceil(min_density * out_channels)) filters (min_density=None counts
            as 0.0: an empty conv would cut the network in two). A rate or target that would go below is a
            one-line LotteryTicketError naming the layer and the fix, never a silent clamp.
residuals   convs whose outputs are added to another tensor are left alone: a block's last conv (`conv2` of
            a basic block, `conv3` of a bottleneck), its shortcut / downsample conv, and the stem conv of the
            library's ResNets (it feeds the first block's shortcut). Only the inner convs of each block
            (`conv1`, and `conv2` of a bottleneck) are pruned there; every conv of Conv-2/4/6 and the VGGs is.
            Models outside the library: every Conv2d is eligible, blocks of the library's classes excepted,
            so exclude residual-feeding convs of your own with `exclude=[...]`.
BatchNorm   the mask covers weights only, so a pruned filter still outputs its bias, which the BatchNorm
            after it shifts and scales, and ReLU passes on: a constant per channel. The export keeps that
            constant exactly, by folding it into the next layer (see export/channel.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask, _unwrapped, canonical_name
from ..sparsity import check_sparsity
from .base import Pruner


@dataclass(frozen=True)
class ChannelLink:
    """One prunable conv and where its output channels go.

    conv      module name of the conv whose output channels are pruned
    bn        module name of the BatchNorm2d right after it (None: none), shrunk with it
    consumer  module name of the next layer that reads those channels (Conv2d or Linear after a flatten);
              its input channels (or column blocks, for a Linear) shrink
    Between conv and consumer there is only BatchNorm, ReLU and pooling, so a channel that is constant
    after the conv stays constant until the consumer.
    """

    conv: str
    bn: str | None
    consumer: str

    @property
    def weight(self) -> str:
        return f"{self.conv}.weight"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _block_links(prefix: str, block: nn.Module) -> list[ChannelLink]:
    """The prunable convs inside one residual block of the library (cifar.Block, resnet.BasicBlock/Bottleneck)."""
    from ..models.resnet import Bottleneck

    links = [ChannelLink(_join(prefix, "conv1"), _join(prefix, "bn1"), _join(prefix, "conv2"))]
    if isinstance(block, Bottleneck):
        links.append(ChannelLink(_join(prefix, "conv2"), _join(prefix, "bn2"), _join(prefix, "conv3")))
    return links


def _residual_blocks():
    from ..models.cifar import Block
    from ..models.resnet import BasicBlock, Bottleneck

    return (Block, BasicBlock, Bottleneck)


def channel_links(model: nn.Module) -> list[ChannelLink] | None:
    """Every conv of a library model whose output channels may be pruned, in model order; None for other models.

    Knows Conv-2/4/6 (models/conv.py), the ImageNet VGGs (models/vgg.py), the CIFAR VGGs and ResNets
    (models/cifar.py) and the ImageNet ResNets (models/resnet.py) by their module names.
    """
    from ..models.cifar import CifarResNet, CifarVGG, ConvModule
    from ..models.conv import ConvNet
    from ..models.resnet import ResNet
    from ..models.vgg import VGG

    model = _unwrapped(model)
    if isinstance(model, ConvNet):
        n = len(model.convs)
        return [ChannelLink(f"convs.{i}", None, f"convs.{i + 1}" if i + 1 < n else "fc1") for i in range(n)]
    if isinstance(model, CifarVGG):
        convs = [i for i, m in enumerate(model.layers) if isinstance(m, ConvModule)]
        nexts = [f"layers.{j}.conv" for j in convs[1:]] + ["fc"]
        return [ChannelLink(f"layers.{i}.conv", f"layers.{i}.bn", nxt) for i, nxt in zip(convs, nexts)]
    if isinstance(model, VGG):
        feats = list(model.features)
        convs = [i for i, m in enumerate(feats) if isinstance(m, nn.Conv2d)]
        nexts = [f"features.{j}" for j in convs[1:]] + ["classifier.0"]
        return [ChannelLink(f"features.{i}", f"features.{i + 1}" if i + 1 < len(feats) and isinstance(
            feats[i + 1], nn.BatchNorm2d) else None, nxt) for i, nxt in zip(convs, nexts)]
    if isinstance(model, (CifarResNet, ResNet)):
        blocks = _residual_blocks()
        return [link for name, m in model.named_modules() if isinstance(m, blocks) for link in _block_links(name, m)]
    return None


def residual_convs(model: nn.Module) -> list[str]:
    """Weight names of the convs whose outputs feed a residual addition (never pruned, see the module docstring)."""
    from ..models.cifar import CifarResNet
    from ..models.resnet import ResNet

    model = _unwrapped(model)
    found = []
    if isinstance(model, (CifarResNet, ResNet)):
        found.append("conv.weight" if isinstance(model, CifarResNet) else "conv1.weight")  # the stem
    blocks = _residual_blocks()
    for name, block in model.named_modules():
        if not isinstance(block, blocks):
            continue
        inner = {link.conv for link in _block_links(name, block)}
        for local, m in block.named_modules():
            full = _join(name, local)
            if isinstance(m, nn.Conv2d) and full not in inner:
                found.append(canonical_name(f"{full}.weight"))
    return found


def conv_weights(model: nn.Module) -> dict[str, nn.Conv2d]:
    """Canonical weight name -> the Conv2d (groups=1) it belongs to."""
    return {canonical_name(f"{name}.weight" if name else "weight"): m for name, m in _unwrapped(model).named_modules()
            if isinstance(m, nn.Conv2d) and m.groups == 1}


def alive_channels(keep: torch.Tensor) -> torch.Tensor:
    """Bool per output channel: True where any weight of the filter survives."""
    return keep.reshape(keep.shape[0], -1).any(dim=1)


def channel_counts(mask: PruningMask, names: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
    """{layer: (surviving filters, out_channels)} for the conv layers of `mask` (or `names`)."""
    names = [n for n in mask.names if mask[n].dim() == 4] if names is None else list(names)
    return {n: (int(alive_channels(mask[n]).sum()), mask[n].shape[0]) for n in names}


class ChannelL1Pruner(Pruner):
    """Prune whole conv output filters, smallest L1 norm first, each layer separately (Li et al. 2017).

    layer_rates   per-level rate by parameter-name pattern (most specific wins), e.g. {"convs.0.weight": 0.1, "*": 0.3}
    exclude       name patterns never pruned, on top of the structural rules (non-convs, the output layer, convs
                  that feed a residual addition)
    min_density   each layer keeps at least max(1, ceil(min_density * out_channels)) filters; going below is an
                  error. None counts as 0.0 (one filter): channel pruning never empties a layer

    Rates and targets count filters, so a layer's weight sparsity equals its fraction of pruned filters.
    Ranking is always per layer: a config's `global_pruning` (the VGG/ResNet presets set it) is ignored.
    """

    name = "channel-l1"

    def __init__(self, layer_rates: Mapping[str, float] | None = None, exclude: Iterable[str] = (),
                 min_density: float | None = 0.0):
        super().__init__(layer_rates, exclude, min_density)
        # Structural exclusions of the last model seen: eligible(mask) has no model to ask (IMP's records call it).
        self._skip: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        guard = "" if self.min_density == 0.0 else f", min_density={self.min_density}"
        return f"ChannelL1Pruner(layer_rates={self.layer_rates or None}, exclude={self.exclude}{guard})"

    # ---- which layers --------------------------------------------------------------------------
    def eligible(self, mask: PruningMask, model: nn.Module | None = None) -> list[str]:
        """The conv weights of `mask` this pruner may prune (see the module docstring's rules).

        Without `model`, the structure of the last model this pruner pruned is used (until then: every
        4-d weight the exclude patterns leave).
        """
        if model is not None:
            self._skip = frozenset(self._structural_skip(model, mask))
        return [n for n in super().eligible(mask) if mask[n].dim() == 4 and n not in self._skip]

    @staticmethod
    def _structural_skip(model: nn.Module, mask: PruningMask) -> set[str]:
        convs = conv_weights(model)
        skip = {n for n in mask.names if n not in convs}
        output = getattr(_unwrapped(model), "output_layer_name", None)
        if output:
            skip.add(canonical_name(output))
        links = channel_links(model)
        if links is not None:
            skip |= {n for n in mask.names if n not in {link.weight for link in links}}
        skip |= set(residual_convs(model))
        return skip

    # ---- ranking ---------------------------------------------------------------------------------
    @staticmethod
    def filter_norms(weight: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """L1 norm of each output filter's surviving weights (float64, on the CPU)."""
        w = weight.detach().to("cpu", torch.float64) * keep
        return w.abs().reshape(w.shape[0], -1).sum(dim=1)

    def _floor(self, channels: int) -> int:
        d = 0.0 if self.min_density is None else self.min_density
        return max(1, math.ceil(round(d * channels, 6)))

    def _prune_counts(self, model: nn.Module, mask: PruningMask, counts: Mapping[str, int],
                      why: Mapping[str, str]) -> PruningMask:
        """Prune counts[n] more filters of each layer n (lowest L1 first); `why` says what asked, for the error."""
        params = {canonical_name(n): p for n, p in model.named_parameters()}
        new = mask.copy()
        for n, count in counts.items():
            keep = mask[n]
            alive = alive_channels(keep)
            survivors, channels = int(alive.sum()), keep.shape[0]
            floor = min(self._floor(channels), survivors)
            if count <= 0:
                continue
            if survivors - count < floor:
                raise LotteryTicketError(
                    f"channel-l1: {why[n]} prunes {count} of the {survivors} surviving filters of {n}, leaving "
                    f"{survivors - count}, below its floor of {floor}; lower the rate or target for it (e.g. --layer-rate "
                    f"'{n}=0.1') or leave it out (--exclude {n})")
            norms = self.filter_norms(params[n], keep)
            if not bool(torch.isfinite(norms).all()):
                raise LotteryTicketError(f"weights of {n} are NaN or infinite, so their L1 norms rank nothing; training "
                                         "diverged: lower the learning rate (--lr) or add warmup")
            idx = torch.nonzero(alive).flatten()
            order = torch.sort(norms[idx], stable=True).indices  # equal norms: the lower index first
            drop = idx[order[:count]]
            new.masks[n] = keep.clone()
            new.masks[n][drop] = False
        return new

    # ---- the pruner protocol ---------------------------------------------------------------------
    def prune(self, model: nn.Module, mask: PruningMask, target_sparsity: float | Mapping[str, float]) -> PruningMask:
        """Each eligible layer ends with round(target * out_channels) filters pruned (cumulative, never fewer
        than it already has). A mapping gives layers their own targets; names it gives that this pruner may
        not prune (Linear, residual-feeding, excluded) are skipped, names not in the mask are an error."""
        mask.validate(model)
        names = self.eligible(mask, model)
        if isinstance(target_sparsity, Mapping):
            unknown = [n for n in target_sparsity if n not in mask.masks]
            if unknown:
                raise LotteryTicketError(f"target_sparsity names layers not in the mask: {unknown}; use names from mask.names")
            targets = {n: check_sparsity(s, f"target_sparsity[{n!r}]") for n, s in target_sparsity.items() if n in names}
        else:
            t = check_sparsity(target_sparsity, "target_sparsity")
            targets = {n: t for n in names}
        counts, why = {}, {}
        for n, t in targets.items():
            channels = mask[n].shape[0]
            pruned = channels - int(alive_channels(mask[n]).sum())
            counts[n], why[n] = round(t * channels) - pruned, f"target {t:g}"
        return self._prune_counts(model, mask, counts, why)

    def prune_fraction(self, model: nn.Module, mask: PruningMask, fraction: float) -> PruningMask:
        """One IMP level: each eligible layer loses round(rate * its surviving filters)."""
        mask.validate(model)
        fraction = check_sparsity(fraction, "fraction")
        counts, why = {}, {}
        for n in self.eligible(mask, model):
            rate = self.rate_for(n, fraction)
            counts[n], why[n] = round(rate * int(alive_channels(mask[n]).sum())), f"rate {rate:g}"
        return self._prune_counts(model, mask, counts, why)
