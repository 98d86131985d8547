"""Turn a ticket into a faster or smaller model, and measure it.

csr.py             to_sparse_csr: sparse Linear layers as torch.sparse_csr (CPU or GPU)
semi_structured.py to_semi_structured: 2:4 Linear layers on NVIDIA sparse tensor cores (GPU, fp16/bf16)
quantize.py        quantize_int8 / to_sparse_csr_int8: INT8 dynamic quantization (CPU)
size.py            save_ticket / load_ticket / storage_sizes: bytes on disk, dense vs CSR vs bitmask
bench.py           benchmark_inference / format_table: latency of every path vs dense
channel.py         remove_pruned_channels: a channel-pruned ticket as a smaller dense model; count_flops
"""

from .bench import benchmark_inference, format_table
from .channel import ChannelFoldedConv2d, count_flops, count_params, remove_pruned_channels, shrink_report
from .csr import DEFAULT_MIN_SPARSITY, SparseLinear, sparse_layers, to_sparse_csr
from .quantize import Int8DynamicLinear, dequantized_weights, quantize_int8, to_sparse_csr_int8
from .semi_structured import SemiStructuredLinear, check_device, plan_semi_structured, to_semi_structured
from .size import load_ticket, save_ticket, storage_sizes

__all__ = [
    "ChannelFoldedConv2d",
    "DEFAULT_MIN_SPARSITY",
    "Int8DynamicLinear",
    "SemiStructuredLinear",
    "SparseLinear",
    "benchmark_inference",
    "check_device",
    "count_flops",
    "count_params",
    "dequantized_weights",
    "format_table",
    "load_ticket",
    "plan_semi_structured",
    "quantize_int8",
    "remove_pruned_channels",
    "save_ticket",
    "shrink_report",
    "sparse_layers",
    "storage_sizes",
    "to_semi_structured",
    "to_sparse_csr",
    "to_sparse_csr_int8",
]
