"""Export paths: CSR, INT8, CSR+INT8, GPU 2:4 (errors here, numbers on a GPU), on-disk size, benchmark rows.

Tolerances: fp32 CSR vs the masked dense model atol=rtol=1e-5 (only the summation order differs);
INT8 relative output error ||y - y_masked|| / ||y_masked|| <= 2e-2 (observed ~1e-3);
GPU 2:4 in float16 atol=rtol=1e-2.
"""

import copy
import json
import struct
import warnings

import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask
from lottery_ticket.export import (
    DEFAULT_MIN_SPARSITY,
    SemiStructuredLinear,
    SparseLinear,
    benchmark_inference,
    check_device,
    dequantized_weights,
    format_table,
    load_ticket,
    plan_semi_structured,
    quantize_int8,
    save_ticket,
    sparse_layers,
    storage_sizes,
    to_semi_structured,
    to_sparse_csr,
    to_sparse_csr_int8,
)
from lottery_ticket.export.size import index_dtype
from lottery_ticket.pruning import Structured24Pruner

CSR_TOL = dict(atol=1e-5, rtol=1e-5)
INT8_REL_ERR = 2e-2


class LeNet300(nn.Module):
    """Local LeNet-300-100 (fc1/fc2/fc3, 784-300-100-10); swap for lottery_ticket.models.build_model("lenet300") once merged."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))


@pytest.fixture(scope="module")
def ticket():
    torch.manual_seed(0)
    model = LeNet300().eval()
    mask = MagnitudePruner(global_pruning=False).prune(model, PruningMask(model), 0.95)
    return model, mask


def masked_copy(model, mask):
    return mask.apply(copy.deepcopy(model)).eval()


def rel_err(y, ref):
    return float((y - ref).norm() / ref.norm())


# ---- CSR -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 784), (5, 784), (64, 784), (33, 1, 28, 28), (2, 3, 784)])
@torch.no_grad()
def test_csr_matches_masked_dense_on_every_kernel_path(ticket, shape):
    # Invariant: the CSR model computes the masked dense model's function (batch 1 = mv, small = MKL mm,
    # >= 32 rows = embedding-bag SpMM, any leading dims), within fp32 summation-order error.
    model, mask = ticket
    csr = to_sparse_csr(model, mask)
    assert set(sparse_layers(csr)) == {"fc1", "fc2", "fc3"}
    x = torch.randn(*shape)
    ref = masked_copy(model, mask)
    if len(shape) == 3:  # leading dims go through one layer; LeNet300 itself flattens from dim 1
        torch.testing.assert_close(csr.fc1(x), ref.fc1(x), **CSR_TOL)
    else:
        torch.testing.assert_close(csr(x), ref(x), **CSR_TOL)


@torch.no_grad()
def test_csr_is_pure_and_stores_exactly_the_survivors(ticket):
    # Invariant: to_sparse_csr leaves its input untouched; each layer stores the mask's survivors and nothing else.
    model, mask = ticket
    before = {k: v.clone() for k, v in model.state_dict().items()}
    csr = to_sparse_csr(model, mask)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for layer in ("fc1", "fc2", "fc3"):
        keep = mask[f"{layer}.weight"]
        sparse = csr.get_submodule(layer)
        assert sparse.nnz == int(keep.sum())
        assert torch.equal(sparse.dense_weight(), getattr(model, layer).weight * keep)
        assert sparse.col_indices.dtype == torch.int32


def test_min_sparsity_decides_which_layers_convert(ticket):
    # Invariant: exactly the Linear layers at least min_sparsity sparse become SparseLinear (default: the break-even).
    model, _ = ticket
    mask = MagnitudePruner(global_pruning=False).prune(model, PruningMask(model), {"fc1.weight": 0.97, "fc2.weight": 0.87, "fc3.weight": 0.5})
    assert set(sparse_layers(to_sparse_csr(model, mask, min_sparsity=0.9))) == {"fc1"}
    assert set(sparse_layers(to_sparse_csr(model, mask, min_sparsity=0.85))) == {"fc1", "fc2"}
    default = {n for n, s in mask.layer_sparsities.items() if s >= DEFAULT_MIN_SPARSITY}
    assert {f"{n}.weight" for n in sparse_layers(to_sparse_csr(model, mask))} == default
    assert type(to_sparse_csr(model, mask).fc3) is nn.Linear
    with pytest.raises(LotteryTicketError, match="min_sparsity"):
        to_sparse_csr(model, mask, min_sparsity=1.5)


@torch.no_grad()
def test_sparse_linear_survives_copy_move_and_reload_without_stale_cache():
    # Invariant: the cached CSR kernel follows its buffers through deepcopy, .double(), and load_state_dict.
    torch.manual_seed(3)
    linear = nn.Linear(12, 5)
    keep = torch.rand(5, 12) < 0.3
    layer = SparseLinear.from_linear(linear, keep)
    x = torch.randn(40, 12)
    expected = nn.functional.linear(x, linear.weight * keep, linear.bias)
    torch.testing.assert_close(layer(x), expected, **CSR_TOL)
    clone = copy.deepcopy(layer)
    torch.testing.assert_close(clone(x), expected, **CSR_TOL)
    doubled = {k: (v * 2 if k in ("values", "bias_column") else v) for k, v in layer.state_dict().items()}
    clone.load_state_dict(doubled)
    torch.testing.assert_close(clone(x), 2 * expected, **CSR_TOL)
    tripled = {k: (v * 3 if k in ("values", "bias_column") else v.clone()) for k, v in layer.state_dict().items()}
    clone.load_state_dict(tripled, assign=True)  # replaces the buffers instead of copying into them
    torch.testing.assert_close(clone(x), 3 * expected, **CSR_TOL)
    torch.testing.assert_close(layer(x), expected, **CSR_TOL)
    wide = copy.deepcopy(layer).double()
    assert wide(x.double()).dtype == torch.float64
    torch.testing.assert_close(wide(x.double()), expected.double(), **CSR_TOL)


@torch.no_grad()
@pytest.mark.parametrize("batch", [1, 4, 40])
def test_fully_pruned_rows_and_layers_output_the_bias(batch):
    # Invariant: a neuron (or layer) with no survivors outputs exactly its bias on every kernel path.
    torch.manual_seed(4)
    linear = nn.Linear(8, 4)
    keep = torch.rand(4, 8) < 0.5
    keep[2] = False
    x = torch.randn(batch, 8)
    y = SparseLinear.from_linear(linear, keep)(x)
    assert torch.equal(y[:, 2], linear.bias[2].expand(batch))
    empty = SparseLinear.from_linear(linear, torch.zeros(4, 8, dtype=torch.bool))
    assert empty.nnz == 0
    assert torch.equal(empty(x), linear.bias.expand(batch, 4))


def test_csr_refuses_half_precision_on_cpu(ticket):
    # Invariant: a CPU model in a dtype MKL's sparse kernels lack is a clear error, not a crash later.
    model, mask = ticket
    with pytest.raises(LotteryTicketError, match="float32/float64"):
        to_sparse_csr(copy.deepcopy(model).bfloat16(), mask)


# ---- INT8 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["ao", "int_mm"])
@torch.no_grad()
def test_int8_stays_close_and_keeps_pruned_weights_zero(ticket, backend):
    # Invariant: INT8 output is within the stated relative error of the masked model, and every
    # pruned weight quantizes to exactly 0 (symmetric per-channel scales).
    model, mask = ticket
    q = quantize_int8(model, mask, backend=backend)
    x = torch.randn(64, 784)
    assert rel_err(q(x), masked_copy(model, mask)(x)) <= INT8_REL_ERR
    weights = dequantized_weights(q)
    assert set(weights) == {"fc1", "fc2", "fc3"}
    for layer, w in weights.items():
        assert not w[~mask[f"{layer}.weight"]].any()


def test_int8_errors_are_clear(ticket):
    # Invariant: an unknown backend or a non-float32 model is refused with the fix in the message.
    model, mask = ticket
    with pytest.raises(LotteryTicketError, match="backend"):
        quantize_int8(model, mask, backend="tensorrt")
    with pytest.raises(LotteryTicketError, match="float32"):
        quantize_int8(copy.deepcopy(model).double(), mask)


@torch.no_grad()
def test_csr_int8_puts_csr_on_sparse_layers_and_int8_on_the_rest(ticket):
    # Invariant: CSR+INT8 = CSR where sparse enough, INT8 on the dense-kept Linear layers, within the INT8 bound.
    model, _ = ticket
    mask = MagnitudePruner(global_pruning=False).prune(model, PruningMask(model), {"fc1.weight": 0.95, "fc2.weight": 0.95, "fc3.weight": 0.2})
    stacked = to_sparse_csr_int8(model, mask)
    assert set(sparse_layers(stacked)) == {"fc1", "fc2"}
    assert set(dequantized_weights(stacked)) == {"fc3"}
    x = torch.randn(64, 784)
    assert rel_err(stacked(x), masked_copy(model, mask)(x)) <= INT8_REL_ERR


# ---- size on disk ----------------------------------------------------------------------------------
class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.fc = nn.Linear(36, 3)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def safetensors_payload(path):
    """(header bytes, data bytes) read from the file itself: 8-byte length, JSON header, data."""
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    data_end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    return header_len, data_end


def test_storage_sizes_are_the_real_file_sizes_and_match_the_byte_formula(ticket, tmp_path):
    # Invariant: reported bytes == size on disk == 8 + header + payload, and the payload is exactly
    # values (4 B) + int16 column indices + int16 row pointers for CSR, values + ceil(n/8) for bitmask.
    model, mask = ticket
    sizes = storage_sizes(model, mask, tmp_path)
    other = sum(p.numel() * 4 for n, p in model.state_dict().items() if n not in mask.masks)
    nnz = mask.num_remaining
    rows = sum(mask[n].shape[0] + 1 for n in mask.names)
    expected_payload = {
        "dense": mask.num_total * 4 + other,
        "csr": nnz * 4 + nnz * 2 + rows * 2 + other,  # 784/300/100 columns and <= 11,760 nnz: all int16
        "bitmask": nnz * 4 + sum(-(-mask[n].numel() // 8) for n in mask.names) + other,
    }
    for fmt, info in sizes.items():
        path = tmp_path / f"ticket_{fmt}.safetensors"
        assert info["bytes"] == path.stat().st_size
        header_len, data_len = safetensors_payload(path)
        assert info["bytes"] == 8 + header_len + data_len
        assert info["tensor_bytes"] == data_len == expected_payload[fmt]
    assert sizes["csr"]["bytes"] < 0.15 * sizes["dense"]["bytes"]
    assert sizes["dense"]["vs_dense"] == 1.0


@pytest.mark.parametrize("fmt", ["csr", "bitmask"])
def test_sparse_storage_round_trips_weights_and_mask_exactly(fmt, tmp_path):
    # Invariant: load_ticket(save_ticket(...)) gives back the masked weights bit for bit and the mask
    # itself, including a conv layer and a survivor whose value is exactly 0.
    torch.manual_seed(5)
    model = SmallConvNet()
    g = torch.Generator().manual_seed(1)
    mask = PruningMask(masks={n: torch.rand(m.shape, generator=g) < 0.3 for n, m in PruningMask(model).items()})
    with torch.no_grad():
        alive = mask["fc.weight"].nonzero()[0]
        model.fc.weight[tuple(alive)] = 0.0
    path = save_ticket(tmp_path / "t.safetensors", model, mask, fmt)
    state, loaded_mask = load_ticket(path)
    assert loaded_mask == mask
    for name, value in model.state_dict().items():
        expected = value * mask[name] if name in mask.masks else value
        assert torch.equal(state[name], expected)
    with pytest.raises(LotteryTicketError, match="format"):
        save_ticket(tmp_path / "x.safetensors", model, mask, "coo")


def test_index_dtype_is_the_narrowest_that_fits():
    # Invariant: int16 up to 32767, int32 up to 2**31 - 1, int64 beyond.
    assert index_dtype(32767) == torch.int16
    assert index_dtype(32768) == torch.int32
    assert index_dtype(2**31 - 1) == torch.int32
    assert index_dtype(2**31) == torch.int64


# ---- GPU 2:4 -------------------------------------------------------------------------------------------
def test_24_plan_checks_pattern_dtype_and_alignment_without_a_gpu(ticket):
    # Invariant: the pure checks name the bad layer/dtype, and padding targets the backend's block multiples.
    dense, _ = ticket
    mask24 = Structured24Pruner().prune_model(model := copy.deepcopy(dense))  # prunes in place: not the fixture's
    plan = plan_semi_structured(model, mask24, torch.float16, pad=True, backend="cusparselt")
    assert plan == {"fc1": (304, 784), "fc2": (112, 304), "fc3": (16, 112)}
    plan_cutlass = plan_semi_structured(model, mask24, torch.bfloat16, pad=True, backend="cutlass")
    assert plan_cutlass == {"fc1": (320, 832), "fc2": (128, 320), "fc3": (32, 128)}
    with pytest.raises(LotteryTicketError, match=r"fc1.weight is 300x784.*pad=True"):
        plan_semi_structured(model, mask24, torch.float16, pad=False, backend="cusparselt")
    unstructured = MagnitudePruner(global_pruning=False).prune(dense, PruningMask(dense), 0.5)
    with pytest.raises(LotteryTicketError, match="fc1.weight does not obey 2:4"):
        plan_semi_structured(dense, unstructured, torch.float16)
    with pytest.raises(LotteryTicketError, match="float16 or torch.bfloat16"):
        plan_semi_structured(model, mask24, torch.float32)


@torch.no_grad()
def test_padded_24_layer_computes_the_unpadded_layer():
    # Invariant: zero-padding a weight to the kernel's block multiple (rows and columns) and slicing
    # the output gives the original layer's result (checked with a dense padded weight on CPU).
    torch.manual_seed(6)
    linear = nn.Linear(300, 100)
    keep = Structured24Pruner().prune_model(nn.Sequential(linear))["0.weight"]
    weight, bias = SemiStructuredLinear.pad_weight(linear.weight * keep, linear.bias, (112, 304))
    layer = SemiStructuredLinear(weight, bias, 300, 100)
    x = torch.randn(7, 300)
    torch.testing.assert_close(layer(x), nn.functional.linear(x, linear.weight * keep, linear.bias), **CSR_TOL)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-CUDA error; this machine has CUDA")
def test_24_export_without_cuda_is_a_clear_error(ticket):
    # Invariant: no CUDA -> LotteryTicketError that says what is needed and what to use instead.
    model, _ = ticket
    mask24 = Structured24Pruner().prune_model(model := copy.deepcopy(model))  # prunes in place: not the fixture's
    with pytest.raises(LotteryTicketError, match="CUDA.*to_sparse_csr"):
        to_semi_structured(model, mask24)
    with pytest.raises(LotteryTicketError, match="compute capability >= 8.0"):
        check_device()
    with pytest.raises(LotteryTicketError, match="float16"):
        to_semi_structured(model, mask24, dtype=torch.float32)
    with pytest.raises(LotteryTicketError, match="no CUDA"):
        benchmark_inference(model, mask24, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 0),
                    reason="2:4 sparse tensor cores need a CUDA GPU with compute capability >= 8.0")
@torch.no_grad()
def test_24_export_matches_masked_dense_on_gpu(ticket):
    # Invariant: the 2:4 model computes the masked dense fp16 model's function (fp16 tolerance).
    model, _ = ticket
    mask24 = Structured24Pruner().prune_model(model := copy.deepcopy(model))  # prunes in place: not the fixture's
    sparse = to_semi_structured(model, mask24, dtype=torch.float16)
    ref = masked_copy(model, mask24).cuda().half()
    x = torch.randn(64, 784, device="cuda", dtype=torch.float16)
    torch.testing.assert_close(sparse(x), ref(x), atol=1e-2, rtol=1e-2)


# ---- benchmark ----------------------------------------------------------------------------------------
def test_benchmark_rows_cover_every_variant_and_batch(ticket):
    # Invariant: one row per (variant, batch) with positive latency, dense speedup 1, CSR diff within
    # the fp32 tolerance, environment recorded, thread count restored; the table names every variant.
    model, mask = ticket
    threads_before = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = benchmark_inference(model, mask, batch_sizes=(1, 33), threads=1, min_run_time=0.01, repeats=1)
    variants = ["dense", "masked-dense", "csr", "int8", "csr+int8"]
    assert [(r["variant"], r["batch"]) for r in rows] == [(v, b) for b in (1, 33) for v in variants]
    for r in rows:
        assert r["latency_us"] > 0 and r["threads"] == 1 and r["device"] == "cpu" and r["torch"] == torch.__version__
    assert all(r["speedup"] == 1.0 for r in rows if r["variant"] == "dense")
    assert all(r["max_abs_diff"] <= 1e-4 for r in rows if r["variant"] in ("masked-dense", "csr"))
    table = format_table(rows)
    for v in variants:
        assert f"| {v} |" in table
    assert "threads=1" in table.splitlines()[0]
    assert torch.get_num_threads() == threads_before
