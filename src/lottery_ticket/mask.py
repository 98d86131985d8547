"""PruningMask: which weights of a model are alive.

A mask is an ordered dict of bool tensors keyed by *canonical* parameter name (the name with any
`module.` prefix from DistributedDataParallel or `_orig_mod.` from torch.compile removed), so a mask
saved from a wrapped model loads into a bare one and vice versa.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from .errors import LotteryTicketError
from .io import load_tensors, read_tensor_metadata, save_tensors

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Every weight matrix that multiplies activations: attention's packed q/k/v projection and recurrent weights too, so "X %
# remaining" of a transformer counts its attention. Embeddings and normalization are lookups and scales: opt in.
_PRUNABLE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MultiheadAttention, nn.RNNBase, nn.RNNCellBase)


def _is_hf_conv1d(module: nn.Module) -> bool:
    """transformers' Conv1D (GPT-2's attention and MLP): a Linear with its weight transposed, not an nn.Linear."""
    return type(module).__name__ == "Conv1D" and type(module).__module__.startswith("transformers")
MASK_FORMAT = "lottery_ticket.mask/1"


def count_alive(keep: torch.Tensor) -> int:
    """Survivors in a bool mask (count_nonzero: ~10x faster than a bool .sum() on big layers)."""
    return int(torch.count_nonzero(keep))


def canonical_name(name: str) -> str:
    """`module._orig_mod.fc1.weight` -> `fc1.weight`: the name a user sees in a bare model."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
        name = name.replace("._orig_mod.", ".")
    return name


def named_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Parameters keyed by canonical name (a tied tensor once, under the name torch reports first)."""
    return {canonical_name(n): p for n, p in model.named_parameters()}


def parameter_aliases(model: nn.Module) -> dict[str, str]:
    """Every canonical name a parameter answers to -> the one `named_parameters` keys it by.

    Tied weights (`head.weight = emb.weight`) are one tensor under two names; the mask keeps one entry
    for it, so both names must resolve to the same key.
    """
    first: dict[int, str] = {}
    return {canonical_name(n): first.setdefault(id(p), canonical_name(n))
            for n, p in model.named_parameters(remove_duplicate=False)}


def _unwrapped(model: nn.Module) -> nn.Module:
    inner = model
    while hasattr(inner, "module") and isinstance(inner.module, nn.Module):
        inner = inner.module
    return getattr(inner, "_orig_mod", inner)


def module_weights(module: nn.Module) -> list[str]:
    """The weight matrices of one module, by local name: what selecting its type with `types=` prunes.

    Never biases, and never a norm layer's scale unless its type is selected on purpose.
    """
    if isinstance(module, nn.MultiheadAttention):
        # q/k/v are one packed tensor unless kdim/vdim differ from embed_dim.
        packed = module.in_proj_weight is not None
        qkv = ["in_proj_weight"] if packed else ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
        return qkv + ["out_proj.weight"]
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        # weight_ih_l*, weight_hh_l* (and weight_hr_l* of a projected LSTM); the cells' weight_ih, weight_hh.
        return [n for n, _ in module.named_parameters(recurse=False) if n.startswith("weight_")]
    return ["weight"] if isinstance(getattr(module, "weight", None), nn.Parameter) else []


def names_of_types(model: nn.Module, types: tuple[type, ...], also=lambda module: False) -> list[str]:
    """Canonical names of the weights of every module that is an instance of one of `types` (or `also` accepts),
    in model order."""
    aliases = parameter_aliases(model)
    names = set()
    for module_name, module in _unwrapped(model).named_modules():
        if isinstance(module, types) or also(module):
            names |= {aliases[canonical_name(f"{module_name}.{w}" if module_name else w)] for w in module_weights(module)}
    return [n for n in dict.fromkeys(aliases.values()) if n in names]


def default_prunable_names(model: nn.Module) -> list[str]:
    """Weights of Linear, Conv1d/2d/3d, MultiheadAttention (in_proj_weight), RNN/LSTM/GRU and transformers' Conv1D
    layers; never biases, normalization or embedding parameters.

    A model may override this by defining `prunable_parameter_names()` (our registry models do).
    """
    inner = _unwrapped(model)
    if not hasattr(inner, "prunable_parameter_names"):
        return names_of_types(model, _PRUNABLE_MODULES, also=_is_hf_conv1d)
    aliases = parameter_aliases(model)
    names = [canonical_name(n) for n in inner.prunable_parameter_names()]
    unknown = [n for n in names if n not in aliases]
    if unknown:
        raise LotteryTicketError(f"prunable_parameter_names() returns {unknown[0]!r}, which is not a parameter of the "
                                 "model; return names as model.named_parameters() spells them")
    return list(dict.fromkeys(aliases[n] for n in names))


def selection_stats(model: nn.Module, masked: Iterable[str]) -> dict:
    """What share of the model a "weights remaining" percentage speaks of: the masked weights against every
    parameter (a tied tensor counted once), and each weight of two or more dimensions outside the mask, with its
    shape (an embedding, or a layer your selection left out)."""
    masked = set(masked)
    params = dict(_unique_parameters(model))
    return {"masked_weights": sum(p.numel() for n, p in params.items() if n in masked),
            "all_weights": sum(p.numel() for p in params.values()),
            "dense_matrices": {n: list(p.shape) for n, p in params.items() if p.dim() >= 2 and n not in masked}}


def _unique_parameters(model: nn.Module):
    seen = set()
    for name, p in _unwrapped(model).named_parameters(remove_duplicate=False):
        if id(p) not in seen:
            seen.add(id(p))
            yield canonical_name(name), p


def selection_line(stats: dict) -> str:
    """'masked: 78.8 % of 15,230 weights (...); never pruned: emb.weight [32, 8]' (one line for logs and tables)."""
    share = 100.0 * stats["masked_weights"] / max(1, stats["all_weights"])
    dense = stats["dense_matrices"]
    listed = ", ".join(f"{n} {shape}" for n, shape in list(dense.items())[:6]) + (
        f" and {len(dense) - 6} more" if len(dense) > 6 else "")
    return (f"masked: {share:.1f} % of the model's {stats['all_weights']:,} weights (\"weights remaining\" is of "
            f"these); weight matrices never pruned: {listed or 'none'}")


def torch_pruned(model: nn.Module) -> dict[str, torch.Tensor]:
    """Masks that torch.nn.utils.prune put on `model`, by canonical name (`fc.weight`, not `fc.weight_orig`).

    torch keeps the dense tensor as the parameter `<name>_orig` and the mask as the buffer `<name>_mask`.
    A tied tensor pruned under each of its names is listed once, under its first name.
    """
    found, seen = {}, set()
    for module_name, module in _unwrapped(model).named_modules():
        params = dict(module.named_parameters(recurse=False))
        for buffer_name, buffer in module.named_buffers(recurse=False):
            base = buffer_name.removesuffix("_mask")
            orig = params.get(f"{base}_orig") if base != buffer_name else None
            if orig is None or id(orig) in seen:
                continue
            seen.add(id(orig))
            found[canonical_name(f"{module_name}.{base}" if module_name else base)] = buffer
    return found


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _check_types(types) -> tuple[type, ...]:
    types = (types,) if isinstance(types, type) else tuple(types)
    bad = [t for t in types if not (isinstance(t, type) and issubclass(t, nn.Module))]
    if bad or not types:
        raise LotteryTicketError(f"types={types!r} must be module classes, e.g. types=(nn.Linear, nn.Embedding)")
    return types


def select_names(model: nn.Module, include: Iterable[str] | None, exclude: Iterable[str], types,
                 also: Iterable[str] = ()) -> list[str]:
    """The canonical names a PruningMask covers: `types` and `include` (both if both), minus `exclude`.

    Neither given: `default_prunable_names`. Patterns match any name of a tied tensor.
    """
    aliases = parameter_aliases(model)
    if include is None and types is None:
        names = default_prunable_names(model)
    else:
        chosen = set(names_of_types(model, _check_types(types))) if types is not None else set()
        if include is not None:
            include = list(include)
            matched = {aliases[n] for n in aliases if _matches(n, include)}
            if not matched:
                raise LotteryTicketError(f"include={include} matches no parameter; names look like {list(aliases)[:4]}")
            chosen |= matched
        names = [n for n in dict.fromkeys(aliases.values()) if n in chosen]  # model order
    if also:  # besides the selection: name patterns, or 'type:Embedding' for every module of that class
        names = _with_also(model, names, list(also), aliases)
    exclude = list(exclude)
    excluded = {aliases[n] for n in aliases if _matches(n, [e for e in exclude if not e.startswith("type:")])}
    for item in (e for e in exclude if e.startswith("type:")):  # every weight of that module class
        excluded |= _named_weights(model, item, aliases, "exclude")
    return [n for n in names if n not in excluded]


def _named_weights(model: nn.Module, item: str, aliases: dict[str, str], what: str) -> set[str]:
    """The canonical weight names a 'type:Class' item or a name pattern stands for; one line when none."""
    if item.startswith("type:"):
        cls = item[len("type:"):]
        found = [(m_name, m) for m_name, m in _unwrapped(model).named_modules() if type(m).__name__ == cls]
        weights = {aliases[canonical_name(f"{m_name}.{w}" if m_name else w)] for m_name, m in found
                   for w in module_weights(m)}
        if not weights:
            kinds = sorted({type(m).__name__ for m in _unwrapped(model).modules()})
            raise LotteryTicketError(f"{what} {item!r}: the model has no {cls} with weights; its module types are "
                                     f"{', '.join(kinds[:12])}")
        return weights
    weights = {aliases[n] for n in aliases if _matches(n, [item])}
    if not weights:
        raise LotteryTicketError(f"{what} {item!r} matches no parameter; names look like {list(aliases)[:4]}")
    return weights


def _with_also(model: nn.Module, names: list[str], also: list[str], aliases: dict[str, str]) -> list[str]:
    extra = set()
    for item in also:
        extra |= _named_weights(model, item, aliases, "include")
    chosen = set(names) | extra
    return [n for n in dict.fromkeys(aliases.values()) if n in chosen]


def _class_or_instance(method):
    """A method that receives the class when called on it and the instance when called on one."""
    import functools

    class Descriptor:
        def __get__(self, obj, objtype=None):
            return functools.partial(method, obj if obj is not None else objtype)

    return Descriptor()


class PruningMask:
    """Bool keep-masks for a model's prunable weights (True = weight survives).

    PruningMask(model)                          all-ones mask over every weight matrix (default_prunable_names)
    PruningMask(model, include=["fc*"])         only parameters matching the name patterns
    PruningMask(model, exclude=["fc3.*"])       everything prunable except these
    PruningMask(model, also=["type:Embedding"]) the default and every Embedding's weight (or name patterns)
    PruningMask(model, types=(nn.Linear, nn.Embedding, nn.MultiheadAttention, nn.LSTM))
                                                the weights of modules of these classes (see module_weights)
    PruningMask.from_torch_prune(model)         the masks torch.nn.utils.prune put on a model

    A tied tensor (one Parameter under two names) gets one entry, under the name named_parameters() gives it.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        types: Iterable[type] | None = None,
        masks: Mapping[str, torch.Tensor] | None = None,
        also: Iterable[str] = (),
    ):
        if masks is not None:
            self.masks = {name: m.detach().to(torch.bool).clone() for name, m in masks.items()}
            if model is not None:
                self.validate(model)
            return
        if model is None:
            raise LotteryTicketError("PruningMask needs a model (PruningMask(model)) or masks= (a dict of bool tensors)")
        _refuse_torch_pruned(model)
        names = select_names(model, include, exclude, types, also)
        if not names:
            raise LotteryTicketError("no prunable parameters found; pass include=['pattern*'] or types=(nn.Linear, ...) "
                                     "naming the weights to prune")
        params = named_parameters(model)
        self.masks = {n: torch.ones_like(params[n], dtype=torch.bool, device="cpu") for n in names}

    @classmethod
    def from_torch_prune(cls, model: nn.Module) -> "PruningMask":
        """The mask of a model pruned with torch.nn.utils.prune, keyed `fc.weight` (not `fc.weight_orig`)."""
        found = torch_pruned(model)
        if not found:
            raise LotteryTicketError("model has no torch.nn.utils.prune mask (no <name>_orig parameter with a "
                                     "<name>_mask buffer); use PruningMask(model) for a dense model")
        return cls(masks={n: m.to("cpu") != 0 for n, m in found.items()})

    # ---- reading ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.masks)

    def __iter__(self) -> Iterator[str]:
        return iter(self.masks)

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.masks[name]

    def items(self):
        return self.masks.items()

    @property
    def num_total(self) -> int:
        return sum(m.numel() for m in self.masks.values())

    @property
    def num_remaining(self) -> int:
        return int(sum(count_alive(m) for m in self.masks.values()))

    @property
    def num_pruned(self) -> int:
        return self.num_total - self.num_remaining

    @property
    def sparsity(self) -> float:
        """Fraction of masked weights that are pruned (0 = dense)."""
        total = self.num_total
        return self.num_pruned / total if total else 0.0

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity

    @property
    def layer_sparsities(self) -> dict[str, float]:
        return {n: 1.0 - count_alive(m) / m.numel() for n, m in self.masks.items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PruningMask):
            return NotImplemented
        return list(self.masks) == list(other.masks) and all(
            torch.equal(self.masks[n], other.masks[n]) for n in self.masks
        )

    def __repr__(self) -> str:
        return f"PruningMask({len(self.masks)} layers, sparsity={self.sparsity:.4f}, remaining={self.num_remaining}/{self.num_total})"

    def copy(self) -> "PruningMask":
        return PruningMask(masks=self.masks)

    def __and__(self, other: "PruningMask") -> "PruningMask":
        """Keep a weight only where both masks keep it (e.g. a ticket combined with a 2:4 mask)."""
        if list(self.masks) != list(other.masks):
            raise LotteryTicketError("cannot combine masks over different layers; build both from the same model")
        return PruningMask(masks={n: self.masks[n] & other.masks[n] for n in self.masks})

    def hamming_distance(self, other: "PruningMask") -> int:
        """Number of weights whose keep/prune decision differs (early-bird tickets compare these)."""
        return int(sum(int(torch.count_nonzero(self.masks[n] ^ other.masks[n])) for n in self.masks))

    # ---- checking against a model --------------------------------------------------------
    def validate(self, model: nn.Module) -> None:
        """Raise one clear error naming every layer that is missing or has the wrong shape."""
        params = named_parameters(model)
        missing = [n for n in self.masks if n not in params]
        shape_bad = [
            f"{n} (mask {tuple(m.shape)} vs weight {tuple(params[n].shape)})"
            for n, m in self.masks.items() if n in params and m.shape != params[n].shape
        ]
        problems = []
        if missing:
            problems.append(f"layers not in the model: {', '.join(missing)}")
        if shape_bad:
            problems.append(f"shape mismatch: {', '.join(shape_bad)}")
        if missing:
            _refuse_torch_pruned(model)
        if problems:
            raise LotteryTicketError(
                "mask does not fit this model: " + "; ".join(problems)
                + ". Load a mask made for this architecture (same model name and kwargs)"
            )

    # ---- acting on a model -----------------------------------------------------------------
    @torch.no_grad()
    def apply(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of `model` in place and return it."""
        params = named_parameters(model)
        self.validate(model)
        for n, m in self.masks.items():
            p = params[n]
            p.mul_(m.to(device=p.device, dtype=p.dtype))
        return model

    @torch.no_grad()
    def to_torch_prune(self, model: nn.Module) -> nn.Module:
        """Hand the mask to torch.nn.utils.prune in place (custom_from_mask) and return `model`.

        Afterwards the model has `<name>_orig` parameters and `<name>_mask` buffers, as code written for
        torch's pruning expects; `PruningMask.from_torch_prune(model)` reads the same mask back, and
        torch.nn.utils.prune.remove(module, name) makes a weight a plain parameter again.
        """
        from torch.nn.utils import prune  # only this bridge needs it

        self.validate(model)
        aliases = parameter_aliases(model)
        owners = []  # collected first: pruning replaces the parameters the walk would meet
        for module_name, module in _unwrapped(model).named_modules():
            for local, p in module.named_parameters(recurse=False):
                name = aliases.get(canonical_name(f"{module_name}.{local}" if module_name else local))
                if name in self.masks:
                    owners.append((module, local, name, p.device))
        # A tied tensor is pruned under each of its names, so every module computes it from the same mask.
        for module, local, name, device in owners:
            prune.custom_from_mask(module, local, self.masks[name].to(device))
        return model

    def is_applied(self, model: nn.Module) -> bool:
        """True when every pruned weight of `model` is exactly zero."""
        params = named_parameters(model)
        return all(not params[n].detach()[~m.to(params[n].device)].any() for n, m in self.masks.items())

    # ---- files -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.masks)

    def save(self, path: str | os.PathLike) -> None:
        # safetensors does not keep insertion order; the layer order travels in the metadata.
        save_tensors(path, self.masks, metadata={"format": MASK_FORMAT, "order": list(self.masks)})

    @_class_or_instance
    def load(owner, path: str | os.PathLike, model: nn.Module | None = None) -> "PruningMask":
        """`PruningMask.load(path)` returns a new mask; `mask.load(path)` (the spec's form) also loads into `mask`."""
        loaded = _load_mask(owner if isinstance(owner, type) else type(owner), path, model)
        if not isinstance(owner, type):
            owner.masks = loaded.masks
        return loaded


def _load_mask(cls, path, model):
    tensors = load_tensors(path)
    order = _stored_order(path, tensors)
    tensors = {n: tensors[n] for n in order}
    bad = [n for n, t in tensors.items() if t.dtype != torch.bool]
    if bad:
        raise LotteryTicketError(f"{path} is not a mask file: {bad[0]} has dtype {tensors[bad[0]].dtype}, expected bool")
    return cls(model, masks=tensors)


def _refuse_torch_pruned(model: nn.Module) -> None:
    """A torch-pruned weight is the product of `<name>_orig` and `<name>_mask`: our mask cannot act on it."""
    found = torch_pruned(model)
    if found:
        raise LotteryTicketError(f"{next(iter(found))} is pruned by torch.nn.utils.prune; read its mask with "
                                 "PruningMask.from_torch_prune(model), or call torch.nn.utils.prune.remove first")


def _stored_order(path, tensors: Mapping[str, torch.Tensor]) -> list[str]:
    order = read_tensor_metadata(path).get("order")
    if not isinstance(order, list) or sorted(order) != sorted(tensors):
        return list(tensors)
    return order
