"""PruningMask: what is prunable, sparsity arithmetic, validation, and bit-identical files."""

import pytest
import torch
from torch import nn

from conftest import TinyCNN, TinyMLP
from lottery_ticket import LotteryTicketError, PruningMask
from lottery_ticket.mask import canonical_name


def test_default_mask_covers_linear_and_conv_weights_never_biases_or_norms():
    mask = PruningMask(TinyCNN())
    assert mask.names == ["conv.weight", "fc.weight"]


def test_include_and_exclude_patterns_select_parameters(tiny_mlp):
    assert PruningMask(tiny_mlp, exclude=["fc2.*"]).names == ["fc1.weight"]
    assert PruningMask(tiny_mlp, include=["*.bias"]).names == ["fc1.bias", "fc2.bias"]
    with pytest.raises(LotteryTicketError, match="matches no parameter"):
        PruningMask(tiny_mlp, include=["nothing*"])


def test_sparsity_arithmetic_is_exact(tiny_mlp):
    mask = PruningMask(tiny_mlp)
    total = 20 * 32 + 32 * 3
    assert mask.num_total == total and mask.sparsity == 0.0
    mask.masks["fc1.weight"][:5, :] = False  # 100 weights
    assert mask.num_remaining == total - 100
    assert mask.sparsity == 100 / total
    assert mask.layer_sparsities == {"fc1.weight": 100 / 640, "fc2.weight": 0.0}


def test_apply_zeroes_exactly_the_pruned_weights_in_place(tiny_mlp):
    mask = PruningMask(tiny_mlp)
    mask.masks["fc1.weight"][0, :] = False
    before = tiny_mlp.fc1.weight.detach().clone()
    mask.apply(tiny_mlp)
    assert torch.all(tiny_mlp.fc1.weight[0] == 0)
    assert torch.equal(tiny_mlp.fc1.weight[1:], before[1:])
    assert mask.is_applied(tiny_mlp)


def test_wrapper_prefixes_are_stripped_so_ddp_and_compile_names_match():
    assert canonical_name("module._orig_mod.fc1.weight") == "fc1.weight"
    assert canonical_name("_orig_mod.module.fc1.weight") == "fc1.weight"
    wrapped = nn.Sequential()
    wrapped.add_module("module", TinyMLP())
    assert PruningMask(wrapped).names == ["fc1.weight", "fc2.weight"]


def test_validate_names_every_mismatching_layer():
    mask = PruningMask(TinyMLP(hidden=32))
    with pytest.raises(LotteryTicketError, match=r"fc1.weight \(mask \(32, 20\) vs weight \(16, 20\)\).*fc2.weight"):
        mask.apply(TinyMLP(hidden=16))
    with pytest.raises(LotteryTicketError, match="layers not in the model: fc1.weight"):
        mask.validate(TinyCNN())


def test_save_load_is_bit_identical_and_keeps_layer_order(tmp_path, tiny_mlp):
    mask = PruningMask(tiny_mlp)
    g = torch.Generator().manual_seed(1)
    for m in mask.masks.values():
        m.copy_(torch.rand(m.shape, generator=g) > 0.3)
    mask.save(tmp_path / "m.safetensors")
    loaded = PruningMask.load(tmp_path / "m.safetensors", tiny_mlp)
    assert loaded == mask and loaded.names == mask.names
    assert all(loaded[n].dtype == torch.bool for n in loaded)
    loaded.save(tmp_path / "again.safetensors")
    assert (tmp_path / "m.safetensors").read_bytes() == (tmp_path / "again.safetensors").read_bytes()


def test_combining_masks_keeps_only_weights_both_keep(tiny_mlp):
    a, b = PruningMask(tiny_mlp), PruningMask(tiny_mlp)
    a.masks["fc1.weight"][0] = False
    b.masks["fc1.weight"][1] = False
    both = a & b
    assert both.num_pruned == 40 and a.hamming_distance(b) == 40
