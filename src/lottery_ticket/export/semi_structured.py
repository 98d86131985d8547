"""GPU 2:4 export: Linear weights that obey 2:4 become torch.sparse semi-structured tensors.

Requirements (torch/sparse/semi_structured.py in torch 2.13):
- CUDA with compute capability >= 8.0 (Ampere or newer: sparse tensor cores);
- float16 or bfloat16 (the backends also take int8/fp8/fp32 in some cases; only fp16/bf16 are offered here);
- a 2-D weight whose rows and columns are multiples of the backend's minimum block:
  cuSPARSELt (default when torch.backends.cusparselt is available) 16 x 16 for fp16/bf16,
  CUTLASS 32 x 64 for fp16/bf16. The dense input is padded by torch itself.
- every group of 4 along the input dim has at most 2 nonzeros (Structured24Pruner makes such masks).

A misaligned layer (LeNet-300-100's 300 x 784 is one) is zero-padded when pad=True: extra zero rows
(outputs, sliced off) and zero columns (inputs, padded per call); zeros keep the 2:4 pattern and do
not change the result. With pad=False it is an error naming the layer.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LotteryTicketError
from ..mask import PruningMask
from ..pruning.structured import verify_24_pattern
from .csr import _set_submodule_

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16)
MIN_CAPABILITY = (8, 0)
# (rows, cols) multiples for the sparse weight; used when torch's private tables are not readable.
_FALLBACK_BLOCKS = {"cusparselt": (16, 16), "cutlass": (32, 64)}


def semi_structured_backend() -> str:
    cusparselt = getattr(torch.backends, "cusparselt", None)
    return "cusparselt" if cusparselt is not None and cusparselt.is_available() else "cutlass"


def weight_block(backend: str, dtype: torch.dtype) -> tuple[int, int]:
    """The (rows, cols) multiple a weight needs for `backend` and `dtype`, read from torch when possible."""
    cls_name = {"cusparselt": "SparseSemiStructuredTensorCUSPARSELT", "cutlass": "SparseSemiStructuredTensorCUTLASS"}[backend]
    cls = getattr(getattr(torch, "sparse", None), cls_name, None)
    table = getattr(cls, "_DTYPE_SHAPE_CONSTRAINTS", None) or {}
    if dtype in table:
        return int(table[dtype].sparse_min_rows), int(table[dtype].sparse_min_cols)
    return _FALLBACK_BLOCKS[backend]


def check_device(device: torch.device | str | None = None) -> torch.device:
    """Raise a LotteryTicketError unless `device` is a CUDA GPU with compute capability >= 8.0."""
    if not torch.cuda.is_available():
        raise LotteryTicketError(
            "2:4 semi-structured sparsity needs an NVIDIA GPU (CUDA) with compute capability >= 8.0 and none is available; "
            "on CPU use lottery_ticket.export.to_sparse_csr"
        )
    device = torch.device("cuda" if device is None else device)
    if device.type != "cuda":
        raise LotteryTicketError(f"device={device} is not a CUDA device; 2:4 semi-structured kernels run on CUDA only: pass device='cuda'")
    capability = torch.cuda.get_device_capability(device)
    if tuple(capability) < MIN_CAPABILITY:
        raise LotteryTicketError(
            f"{torch.cuda.get_device_name(device)} has compute capability {capability[0]}.{capability[1]}; "
            "2:4 sparse tensor cores need >= 8.0 (A100, RTX 30xx, H100 or newer): use to_sparse_csr instead"
        )
    return device


def check_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in SUPPORTED_DTYPES:
        raise LotteryTicketError(f"dtype={dtype} is not supported for 2:4 semi-structured export; pass dtype=torch.float16 or torch.bfloat16")
    return dtype


def _padded(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def plan_semi_structured(model: nn.Module, mask: PruningMask | None = None, dtype: torch.dtype = torch.float16,
                         pad: bool = True, backend: str | None = None) -> dict[str, tuple[int, int]]:
    """Which Linear layers convert and to what padded (out, in) shape; raise on a layer that cannot.

    Pure checks, no GPU needed: dtype, the 2:4 pattern of every masked Linear weight (after the mask),
    and alignment (an error when pad=False). Linear layers the mask does not cover stay dense.
    """
    check_dtype(dtype)
    backend = backend or semi_structured_backend()
    rows_mult, cols_mult = weight_block(backend, dtype)
    covered = set(mask.names) if mask is not None else None
    plan = {}
    for name, module in model.named_modules():
        if type(module) is not nn.Linear or (covered is not None and f"{name}.weight" not in covered):
            continue
        weight = module.weight.detach()
        if mask is not None:
            weight = weight * mask[f"{name}.weight"].to(weight.device, weight.dtype)
        if not verify_24_pattern(weight):
            raise LotteryTicketError(
                f"{name}.weight does not obey 2:4 (some group of 4 inputs has > 2 nonzeros, or in_features={module.in_features} "
                "is not a multiple of 4); prune with Structured24Pruner or NMConstrainedPruner first"
            )
        out_f, in_f = weight.shape
        target = (_padded(out_f, rows_mult), _padded(in_f, cols_mult))
        if target != (out_f, in_f) and not pad:
            raise LotteryTicketError(
                f"{name}.weight is {out_f}x{in_f}; the {backend} 2:4 kernels need multiples of {rows_mult}x{cols_mult} "
                "for this dtype: pass pad=True (zero padding, same result) or resize the layer"
            )
        plan[name] = target
    if not plan:
        raise LotteryTicketError("no Linear layer to convert to 2:4; pass a model with nn.Linear layers (and a mask covering them)")
    return plan


class SemiStructuredLinear(nn.Module):
    """Linear with a (zero-padded) 2:4 weight: pads the input's features, slices the output's.

    `weight` is a SparseSemiStructuredTensor on GPU; any [out_padded, in_padded] tensor works, which
    is how the padding is tested on CPU with a dense weight.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.register_buffer("bias", bias)

    @staticmethod
    def pad_weight(weight: torch.Tensor, bias: torch.Tensor | None, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        out_f, in_f = weight.shape
        weight = F.pad(weight, (0, shape[1] - in_f, 0, shape[0] - out_f)).contiguous()
        if bias is not None:
            bias = F.pad(bias, (0, shape[0] - out_f))
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_padded = self.weight.shape[1]
        if in_padded != self.in_features:
            x = F.pad(x, (0, in_padded - self.in_features))
        y = F.linear(x, self.weight, self.bias)
        return y[..., : self.out_features] if y.shape[-1] != self.out_features else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, padded={tuple(self.weight.shape)}"


def to_semi_structured(model: nn.Module, mask: PruningMask | None = None, *, dtype: torch.dtype = torch.float16,
                       device: torch.device | str | None = None, pad: bool = True) -> nn.Module:
    """A new module on the GPU in `dtype` whose 2:4 Linear weights use sparse tensor cores.

    Raises LotteryTicketError for: no CUDA, compute capability < 8.0, a dtype other than
    float16/bfloat16, a masked Linear weight that is not 2:4, a misaligned layer with pad=False.
    Outputs match the masked dense model in the same dtype up to fp16/bf16 accumulation order.
    """
    check_dtype(dtype)
    device = check_device(device)
    backend = semi_structured_backend()
    new = copy.deepcopy(model)
    if mask is not None:
        mask.apply(new)
    new = new.to(device=device, dtype=dtype).eval()
    plan = plan_semi_structured(new, mask, dtype, pad, backend)
    from torch.sparse import SparseSemiStructuredTensorCUSPARSELT, SparseSemiStructuredTensorCUTLASS

    cls = SparseSemiStructuredTensorCUSPARSELT if backend == "cusparselt" else SparseSemiStructuredTensorCUTLASS
    for name, shape in plan.items():
        linear = new.get_submodule(name)
        weight, bias = SemiStructuredLinear.pad_weight(linear.weight.detach(), None if linear.bias is None else linear.bias.detach(), shape)
        _set_submodule_(new, name, SemiStructuredLinear(cls.from_dense(weight), bias, linear.in_features, linear.out_features))
    return new
