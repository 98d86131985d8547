"""Sparse CSR export: Linear layers of a ticket become SparseLinear, which multiplies only the survivors.

Formulation (measured on this CPU with torch 2.13; see benchmarks/inference.py, docs/benchmarks.md).
Both kernels work on the transposed problem yᵀ = W xᵀ + b with xᵀ a contiguous row-major [in, N]:
- batch >= EMBEDDING_BAG_MIN_BATCH on CPU: `F.embedding_bag(col_indices, xᵀ, crow_indices,
  per_sample_weights=values, mode="sum")`. That *is* CSR SpMM: output row o sums the rows of xᵀ
  named by row o's column indices, weighted by its values; on CPU it runs FBGEMM's JIT-compiled
  AVX-512 SpMDM kernel, 3-4x faster than MKL's sparse BLAS for LeNet-300's fc1 at batch 64
  (32 µs vs 110 µs; dense: 350 µs). Its speed depends on the row width N: multiples of 32 are
  fastest, below ~32 MKL wins.
- otherwise: `torch.addmm(b[:, None], W_csr, xᵀ)`, PyTorch's MKL (CPU) or cuSPARSE (GPU) path.
  MKL only has sparse @ dense, so a dense @ sparse product (x @ W_csrᵀ) makes PyTorch transpose and
  re-convert the weight on every call (~10x slower); its row-major dense operand is ~1.5x faster
  than the column-major one a bare `x.t()` view gives; int32 indices avoid a per-call conversion
  (PyTorch's MKL is LP64); `torch.sparse.mm` is the same kernel and `torch._sparse_csr_mm` no
  longer exists in torch 2.13.
The result yᵀ is row-major [out, N]; returning its `.t()` view means the next SparseLinear's
`x.t()` is already contiguous, so a chain of sparse layers with elementwise activations in
between (which keep strides) copies the activations only once, at the first layer.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LotteryTicketError
from ..mask import PruningMask
from ..sparsity import check_sparsity

# From `python benchmarks/inference.py --sweep` (LeNet-300-100, one thread, docs/benchmarks.md): CSR
# breaks even with the dense kernel at ~50% sparsity for batch 64, ~70% for batch 1024 and 82-89%
# (run to run) for batch 1, where the dense kernel is a memory-bound GEMV. 90% is where it wins at
# every batch size measured; pass a lower min_sparsity when batches are large.
DEFAULT_MIN_SPARSITY = 0.9
# Below this many rows of x, MKL's CSR kernel beats the embedding-bag SpMM here (see the docstring).
EMBEDDING_BAG_MIN_BATCH = 32

_CPU_CSR_DTYPES = (torch.float32, torch.float64)


_PARTS = ("crow_indices", "col_indices", "values", "bias_column")


class SparseLinear(nn.Module):
    """Inference-only Linear whose weight is a CSR matrix (int32 indices), same outputs as the masked dense layer.

    The CSR parts are plain buffers (crow_indices, col_indices, values, bias_column), so
    state_dict, deepcopy and .to(device) work. The torch.sparse_csr tensor over them is built once
    and cached with direct references to the parts (buffer lookups through nn.Module.__getattr__
    cost ~1 µs each, a third of a batch-1 layer); the cache is dropped whenever a part is replaced
    (assignment, load_state_dict(assign=True)) or moved (.to, .double, ...); an in-place load shares
    the cached tensor's storage and needs nothing.
    """

    def __init__(self, crow_indices: torch.Tensor, col_indices: torch.Tensor, values: torch.Tensor,
                 in_features: int, out_features: int, bias: torch.Tensor | None = None):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.register_buffer("crow_indices", crow_indices.to(torch.int32))
        self.register_buffer("col_indices", col_indices.to(torch.int32))
        self.register_buffer("values", values)
        # A column so addmm broadcasts it over the batch (columns of yᵀ).
        self.register_buffer("bias_column", None if bias is None else bias.detach().reshape(-1, 1).clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, keep: torch.Tensor | None = None) -> "SparseLinear":
        """Convert `linear`, zeroing the weights where `keep` is False; exact zeros are not stored."""
        weight = linear.weight.detach()
        if keep is not None:
            weight = weight * keep.to(device=weight.device, dtype=weight.dtype)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = weight.to_sparse_csr()
        return cls(csr.crow_indices(), csr.col_indices(), csr.values().clone(),
                   linear.in_features, linear.out_features, linear.bias)

    # ---- the cached kernel operands -----------------------------------------------------------
    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in _PARTS:
            self.__dict__["_kernel"] = None

    def _apply(self, fn, recurse=True):
        self.__dict__["_kernel"] = None
        return super()._apply(fn, recurse)

    def __getstate__(self):
        # The cached CSR tensor has no storage that deepcopy/pickle can copy; it is rebuilt on demand.
        state = self.__dict__.copy()
        state["_kernel"] = None
        return state

    def _build_kernel(self) -> tuple:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = torch.sparse_csr_tensor(self.crow_indices, self.col_indices, self.values,
                                          (self.out_features, self.in_features), check_invariants=False)
        bias = self.bias_column
        kernel = (csr, self.col_indices, self.crow_indices, self.values, bias, None if bias is None else bias.reshape(-1))
        self.__dict__["_kernel"] = kernel
        return kernel

    def weight_csr(self) -> torch.Tensor:
        return (self.__dict__.get("_kernel") or self._build_kernel())[0]

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        return int(self.values.numel())

    @property
    def density(self) -> float:
        return self.nnz / (self.in_features * self.out_features)

    @property
    def bias(self) -> torch.Tensor | None:
        return None if self.bias_column is None else self.bias_column.reshape(-1)

    def dense_weight(self) -> torch.Tensor:
        """The weight as a dense tensor (pruned entries exactly zero)."""
        return self.weight_csr().to_dense()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        csr, col, crow, values, bias, bias_flat = self.__dict__.get("_kernel") or self._build_kernel()
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if x2.shape[0] == 1:
            # One example: MKL's sparse matrix-vector product is ~2x faster than its matrix-matrix one.
            y = torch.mv(csr, x2[0]) if bias is None else torch.addmv(bias_flat, csr, x2[0])
            return y.reshape(*lead, self.out_features)
        xt = x2.t()
        if not xt.is_contiguous():
            xt = xt.contiguous()
        if xt.device.type == "cpu" and xt.shape[1] >= EMBEDDING_BAG_MIN_BATCH:
            yt = F.embedding_bag(col, xt, crow, mode="sum", per_sample_weights=values, include_last_offset=True)
            if bias is not None:
                yt.add_(bias)
        elif bias is None:
            yt = torch.mm(csr, xt)
        else:
            yt = torch.addmm(bias, csr, xt)
        return yt.t().reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}, density={self.density:.4f}, bias={self.bias_column is not None}"


def _set_submodule_(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, module)


def weight_sparsity(weight: torch.Tensor) -> float:
    """Fraction of exact zeros in a weight tensor."""
    return 1.0 - int(torch.count_nonzero(weight)) / weight.numel()


def to_sparse_csr(model: nn.Module, mask: PruningMask | None = None, min_sparsity: float | None = None) -> nn.Module:
    """A new module where every nn.Linear at least `min_sparsity` sparse becomes a SparseLinear.

    The mask (if given) is applied to the copy first; sparsity is the fraction of exact zeros in the
    masked weight. `min_sparsity` defaults to DEFAULT_MIN_SPARSITY (from the measured break-evens); denser
    layers stay dense (CSR would be slower there). Conv layers and nn.Linear subclasses (e.g. the
    output projection MultiheadAttention reads directly) are left as they are. Inference only.
    """
    threshold = DEFAULT_MIN_SPARSITY if min_sparsity is None else check_sparsity(min_sparsity, "min_sparsity")
    new = copy.deepcopy(model)
    if mask is not None:
        mask.apply(new)
    for name, module in list(new.named_modules()):
        if type(module) is not nn.Linear:
            continue
        weight = module.weight.detach()
        if weight.device.type == "cpu" and weight.dtype not in _CPU_CSR_DTYPES:
            raise LotteryTicketError(
                f"{name}.weight is {weight.dtype}; CPU sparse CSR matmul supports float32/float64 only: call model.float() first"
            )
        if weight_sparsity(weight) >= threshold:
            _set_submodule_(new, name, SparseLinear.from_linear(module))
    return new


def sparse_layers(model: nn.Module) -> dict[str, float]:
    """Name -> density of every SparseLinear in `model` (what to_sparse_csr converted)."""
    return {name: m.density for name, m in model.named_modules() if isinstance(m, SparseLinear)}
