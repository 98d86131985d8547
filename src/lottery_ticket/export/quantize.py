"""INT8 dynamic quantization of Linear layers, on its own or stacked after CSR export.

Two backends, same scheme (int8 weights with one scale per output channel, symmetric, so a pruned
weight stays exactly 0; activations quantized to int8 on the fly at every call):
- "ao": torch.ao.quantization.quantize_dynamic with per-channel weights (fbgemm/x86 kernels). It
  is the fastest INT8 path on this CPU, but torch marks torch.ao.quantization deprecated in favour
  of torchao's `quantize_(model, Int8DynamicActivationInt8WeightConfig())`, which is not a
  dependency of this project. Its deprecation warnings are silenced here, and only here.
- "int_mm": Int8DynamicLinear on core `torch._int_mm` (per-row activation scales). Slower than
  fbgemm on CPU, but it uses no deprecated API, so it keeps working if torch.ao is removed.
"auto" picks "ao" while it exists, else "int_mm".

CSR + INT8: PyTorch has no sparse int8 matmul (MKL sparse BLAS is float-only and the packed weights
of quantize_dynamic are dense), so `to_sparse_csr_int8` quantizes only the Linear layers that
to_sparse_csr left dense; sparse layers stay float32 CSR. When every layer is sparse enough for CSR
the result equals the CSR model.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask
from .csr import _set_submodule_, to_sparse_csr

BACKENDS = ("auto", "ao", "int_mm")


def _ao_available() -> bool:
    ao = getattr(getattr(torch, "ao", None), "quantization", None)
    return ao is not None and hasattr(ao, "quantize_dynamic") and any(
        e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm", "onednn", "qnnpack")
    )


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise LotteryTicketError(f"backend={backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "ao" if _ao_available() else "int_mm"
    if backend == "ao" and not _ao_available():
        raise LotteryTicketError("backend='ao' needs torch.ao.quantization.quantize_dynamic, which this torch lacks; use backend='int_mm'")
    return backend


def _symmetric_int8(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 values and float scales with t ≈ q * scale, one scale per slice along `dim` (0 maps to 0)."""
    scale = t.abs().amax(dim=dim, keepdim=True).clamp(min=1e-12) / 127.0
    return torch.round(t / scale).clamp_(-127, 127).to(torch.int8), scale.to(torch.float32)


class Int8DynamicLinear(nn.Module):
    """y ≈ x Wᵀ + b with int8 x (one scale per row, computed per call) and int8 W (one scale per output)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        q, scale = _symmetric_int8(linear.weight.detach().float(), dim=1)
        # Stored transposed: torch._int_mm wants [K, N] on the right.
        self.register_buffer("weight_int8_t", q.t().contiguous())
        self.register_buffer("weight_scale", scale.reshape(1, -1))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def dequantized_weight(self) -> torch.Tensor:
        return (self.weight_int8_t.t().float() * self.weight_scale.reshape(-1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features).float()
        xq, xscale = _symmetric_int8(x2, dim=1)
        y = torch._int_mm(xq, self.weight_int8_t).float() * xscale * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def quantize_int8(model: nn.Module, mask: PruningMask | None = None, *, backend: str = "auto") -> nn.Module:
    """A new CPU float32 module whose nn.Linear layers run as INT8 dynamic quantization.

    The mask (if given) is applied first; pruned weights quantize to exactly 0. Layers that are not
    plain nn.Linear (SparseLinear, convs, MultiheadAttention's projection) are left as they are.
    Expect ~1e-3 relative output error (the tests bound it by 2e-2).
    """
    backend = resolve_backend(backend)
    new = copy.deepcopy(model)
    if mask is not None:
        mask.apply(new)
    for name, p in new.named_parameters():
        if p.device.type != "cpu" or p.dtype != torch.float32:
            raise LotteryTicketError(f"{name} is {p.dtype} on {p.device}; INT8 dynamic quantization runs on CPU float32: call model.float().cpu() first")
    names = [n for n, m in new.named_modules() if type(m) is nn.Linear]
    if backend == "ao":
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_.*deprecated")
            for name in names:
                # One layer at a time, so only plain nn.Linear is converted (quantize_dynamic's
                # type-based spec would also take Linear subclasses).
                layer = new.get_submodule(name)
                wrapped = torch.ao.quantization.quantize_dynamic(nn.Sequential(layer), {nn.Linear: qconfig}, dtype=torch.qint8, inplace=False)
                _set_submodule_(new, name, wrapped[0])
    else:
        for name in names:
            _set_submodule_(new, name, Int8DynamicLinear(new.get_submodule(name)))
    return new


def to_sparse_csr_int8(model: nn.Module, mask: PruningMask | None = None, min_sparsity: float | None = None, *, backend: str = "auto") -> nn.Module:
    """CSR for Linear layers at least `min_sparsity` sparse, INT8 dynamic quantization for the denser rest."""
    return quantize_int8(to_sparse_csr(model, mask, min_sparsity), backend=backend)


def dequantized_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Name -> float weight of every INT8 Linear in `model` (to check that pruned weights stayed 0)."""
    ao_linear = getattr(getattr(getattr(getattr(torch, "ao", None), "nn", None), "quantized", None), "dynamic", None)
    ao_linear = getattr(ao_linear, "Linear", None)
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, Int8DynamicLinear):
            out[name] = m.dequantized_weight()
        elif ao_linear is not None and isinstance(m, ao_linear):
            out[name] = m.weight().dequantize()
    return out
