"""PruningMask and the pruners' shared rules in detail: type selection, the stored layer order, the file's metadata,
load as a class or an instance method, whole error messages, the most specific layer-rate pattern, exact global
counts under ties; names through DDP-like and compiled wrappers, torch.nn.utils.prune masks, the collapse guard's
later passes, NaN weights refused, and select_lowest against a full sort, over several chunks."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask
from lottery_ticket.io import read_tensor_metadata, save_tensors
from lottery_ticket.mask import MASK_FORMAT
from lottery_ticket.pruning.random import RandomPruner


class BA(nn.Module):
    """Layers declared b before a: the mask's order is the model's, not the alphabet's (safetensors sorts keys)."""

    def __init__(self):
        super().__init__()
        self.b = nn.Linear(4, 3)
        self.a = nn.Linear(3, 2)


def message(fn) -> str:
    with pytest.raises(LotteryTicketError) as excinfo:
        fn()
    return str(excinfo.value)


# ---- selection by type ---------------------------------------------------------------------------------------------
def test_types_accepts_one_class_and_skips_selected_modules_without_a_weight():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    assert PruningMask(model, types=nn.Linear).names == ["0.weight", "2.weight"]
    assert PruningMask(model, types=(nn.Linear, nn.ReLU)).names == ["0.weight", "2.weight"]


# ---- the file ------------------------------------------------------------------------------------------------------
def test_a_saved_mask_records_its_format_and_the_models_layer_order(tmp_path):
    mask = PruningMask(BA())
    mask.save(tmp_path / "m.safetensors")
    metadata = read_tensor_metadata(tmp_path / "m.safetensors")
    assert metadata["format"] == MASK_FORMAT and metadata["order"] == ["b.weight", "a.weight"]
    assert PruningMask.load(tmp_path / "m.safetensors").names == ["b.weight", "a.weight"]


def test_a_mask_file_without_an_order_loads_in_the_files_order(tmp_path):
    save_tensors(tmp_path / "m.safetensors", {"b.weight": torch.ones(3, 4, dtype=torch.bool),
                                              "a.weight": torch.zeros(2, 3, dtype=torch.bool)})
    loaded = PruningMask.load(tmp_path / "m.safetensors")
    assert sorted(loaded.names) == ["a.weight", "b.weight"]
    assert loaded["a.weight"].sum() == 0 and loaded["b.weight"].all()


def test_a_file_of_float_tensors_is_not_a_mask_and_the_first_offender_is_named(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tensors(path, {"a.weight": torch.zeros(2, dtype=torch.float16), "b.weight": torch.zeros(2, dtype=torch.int32)},
                 metadata={"format": MASK_FORMAT, "order": ["a.weight", "b.weight"]})
    assert message(lambda: PruningMask.load(path)) == (f"{path} is not a mask file: a.weight has dtype torch.float16, "
                                                       "expected bool")


def test_load_on_the_class_returns_a_mask_and_on_an_instance_also_fills_it(tmp_path):
    model = BA()
    saved = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    saved.save(tmp_path / "m.safetensors")
    fresh = PruningMask.load(tmp_path / "m.safetensors")
    assert fresh == saved
    target = PruningMask(model)
    returned = target.load(tmp_path / "m.safetensors")
    assert target == saved and returned == saved


def test_state_dict_is_the_layer_masks_by_name():
    mask = MagnitudePruner().prune(BA(), PruningMask(BA()), 0.5)
    state = mask.state_dict()
    assert list(state) == mask.names
    assert all(torch.equal(state[n], mask[n]) for n in mask.names)


# ---- whole messages ------------------------------------------------------------------------------------------------
def test_from_torch_prune_on_a_model_torch_never_pruned_says_what_to_use():
    assert message(lambda: PruningMask.from_torch_prune(BA())) == (
        "model has no torch.nn.utils.prune mask (no <name>_orig parameter with a <name>_mask buffer); use "
        "PruningMask(model) for a dense model")


def test_masks_over_different_layers_do_not_combine():
    assert message(lambda: PruningMask(BA()) & PruningMask(nn.Sequential(nn.Linear(2, 2)))) == (
        "cannot combine masks over different layers; build both from the same model")


@pytest.mark.parametrize("pruner", [MagnitudePruner(), MagnitudePruner(global_pruning=False), RandomPruner()])
def test_a_fraction_outside_zero_one_is_refused_by_name(pruner):
    model = BA()
    assert message(lambda: pruner.prune_fraction(model, PruningMask(model), 1.5)) == (
        "fraction=1.5 is outside [0, 1); pass the fraction of weights to prune, e.g. 0.9 (did you mean 0.015?)")


def test_per_layer_targets_name_unknown_layers_and_bad_values():
    model = BA()
    mask = PruningMask(model)
    assert message(lambda: MagnitudePruner().prune(model, mask, {"c.weight": 0.5})) == (
        "target_sparsity names layers not in the mask: ['c.weight']; use names from mask.names")
    assert message(lambda: MagnitudePruner().prune(model, mask, {"a.weight": 2})) == (
        "target_sparsity['a.weight']=2 is outside [0, 1); pass the fraction of weights to prune, e.g. 0.9 (did you "
        "mean 0.02?)")


def test_level_targets_start_at_level_zero():
    mask = PruningMask(BA())
    assert MagnitudePruner().level_targets(mask, 0.2, 0) == {"b.weight": 0.0, "a.weight": 0.0}
    assert message(lambda: MagnitudePruner().level_targets(mask, 0.2, -1)) == "level=-1 must be >= 0"


# ---- the most specific layer-rate pattern --------------------------------------------------------------------------
def test_the_most_specific_pattern_wins_letters_first_then_fewer_wildcards_then_the_first_given():
    # fc.weight: "fc.weight" (9 letters) beats "f?.weight*" (8 letters, 2 wildcards), however many characters that has.
    assert MagnitudePruner(layer_rates={"f?.weight*": 0.5, "fc.weight": 0.1}).rate_for("fc.weight", 0.2) == 0.1
    # Equal letters (4): one wildcard beats three.
    assert MagnitudePruner(layer_rates={"f?.we**": 0.5, "fc.w*": 0.1}).rate_for("fc.weight", 0.2) == 0.1
    # Fully equal: the first pattern given wins.
    assert MagnitudePruner(layer_rates={"fc.w*": 0.1, "fc.*t": 0.5}).rate_for("fc.weight", 0.2) == 0.1
    assert MagnitudePruner(layer_rates={"fc.*t": 0.5, "fc.w*": 0.1}).rate_for("fc.weight", 0.2) == 0.5
    assert MagnitudePruner(layer_rates={"x*": 0.5}).rate_for("fc.weight", 0.2) == 0.2


# ---- exact global counts -------------------------------------------------------------------------------------------
def test_a_global_fraction_prunes_exactly_its_count_when_every_magnitude_ties():
    model = nn.Sequential(nn.Linear(5, 2, bias=False), nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    mask = MagnitudePruner().prune_fraction(model, PruningMask(model), 0.5)
    assert mask.num_pruned == round(0.5 * 16)


def test_capital_letters_in_a_pattern_are_literals():
    # "layerXXX.*" has 9 literals and beats "l*" (1), whatever letters the literals are.
    assert MagnitudePruner(layer_rates={"l*": 0.5, "layerXXX.*": 0.1}).rate_for("layerXXX.weight", 0.2) == 0.1


# ---- the magnitude pruner's edges ----------------------------------------------------------------------------------
def test_a_bad_target_sparsity_is_refused_under_its_argument_name():
    model = nn.Linear(4, 4)
    assert message(lambda: MagnitudePruner().prune(model, PruningMask(model), 1.5)).startswith("target_sparsity=1.5 ")


def test_a_global_fraction_the_collapse_guard_cannot_meet_is_an_error_not_a_smaller_round():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10))
    assert message(lambda: MagnitudePruner(min_density=0.5).prune_fraction(model, PruningMask(model), 0.8)) == (
        "this target leaves 40 weights but min_density=0.5 keeps at least 100 in 2 layers; pass a lower sparsity "
        "or a smaller min_density")


def test_float64_weights_are_ranked_by_their_float32_magnitudes_ties_pruned_in_order():
    # 1 + 1e-12 and 1.0 are one float32 value: a tie, so the first in the fixed order goes, as for a float32 model.
    model = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0 + 1e-12, 1.0]], dtype=torch.float64))
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    assert mask["weight"].tolist() == [[False, True]]


def test_pruning_works_when_the_default_dtype_is_float64():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10))
    reference = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        mask = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    finally:
        torch.set_default_dtype(previous)
    assert all(torch.equal(mask[n], reference[n]) for n in reference.names)


# ---- wrapped models, user-named prunable weights, torch.nn.utils.prune ---------------------------------------------
class Named(nn.Module):
    """A model that names its own prunable weights, as our registry models do."""

    def __init__(self, names=("fc2.weight",)):
        super().__init__()
        self.fc1, self.fc2, self.names = nn.Linear(4, 4), nn.Linear(4, 2), names

    def prunable_parameter_names(self):
        return list(self.names)


class Wrapper(nn.Module):
    """Like DistributedDataParallel: the model under `.module`."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_a_wrapped_models_own_prunable_names_are_used_through_ddp_and_compile_wrappers():
    model = Named()
    for wrapped in (model, Wrapper(model), torch.compile(model), Wrapper(torch.compile(model))):
        assert PruningMask(wrapped).names == ["fc2.weight"]


def test_a_compiled_submodule_is_named_as_in_the_bare_model():
    model = nn.Sequential(nn.Linear(4, 4))
    model.add_module("head", torch.compile(nn.Linear(4, 2)))  # named_parameters: head._orig_mod.weight
    assert PruningMask(model).names == ["0.weight", "head.weight"]


def test_a_prunable_name_that_is_not_a_parameter_is_refused_by_name():
    assert message(lambda: PruningMask(Named(names=("fc2.weight", "fc9.weight", "fc8.weight")))) == (
        "prunable_parameter_names() returns 'fc9.weight', which is not a parameter of the model; return names as "
        "model.named_parameters() spells them")


def test_torch_prune_masks_are_found_after_other_buffers_and_on_a_bare_layer():
    import torch.nn.utils.prune as torch_prune

    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    torch_prune.l1_unstructured(model[1], "weight", amount=1)  # after running_mean, running_var, ...
    torch_prune.l1_unstructured(model[0], "weight", amount=4)
    assert PruningMask.from_torch_prune(model).names == ["0.weight", "1.weight"]
    bare = nn.Linear(4, 3)
    torch_prune.l1_unstructured(bare, "weight", amount=2)
    assert PruningMask.from_torch_prune(bare).names == ["weight"]
    assert message(lambda: PruningMask(bare)) == (
        "weight is pruned by torch.nn.utils.prune; read its mask with PruningMask.from_torch_prune(model), or call "
        "torch.nn.utils.prune.remove first")


def test_masks_given_as_numbers_become_bool_masks_on_the_cpu():
    mask = PruningMask(masks={"w": torch.tensor([1.0, 0.0, 2.0])})
    assert mask["w"].dtype == torch.bool and mask["w"].tolist() == [True, False, True]
    assert PruningMask(nn.Linear(3, 2, device="meta"))["weight"].device.type == "cpu"


def test_the_constructors_messages_in_full():
    assert message(lambda: PruningMask()) == (
        "PruningMask needs a model (PruningMask(model)) or masks= (a dict of bool tensors)")
    assert message(lambda: PruningMask(nn.Sequential(nn.ReLU()))).startswith(
        "no prunable parameters found; pass include=['pattern*'] or types=(nn.Linear, ...) naming the weights to prune")
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(3)])
    assert message(lambda: PruningMask(model, include=["x*"])) == (
        "include=['x*'] matches no parameter; names look like ['0.weight', '0.bias', '1.weight', '1.bias']")


def test_validate_names_every_missing_and_misshapen_layer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3))
    mask = PruningMask(masks={"0.weight": torch.ones(2, 2, dtype=torch.bool), "1.weight": torch.ones(2, 3, dtype=torch.bool),
                              "5.weight": torch.ones(1, dtype=torch.bool), "6.weight": torch.ones(1, dtype=torch.bool),
                              "0.bias": torch.ones(3, dtype=torch.bool)})
    assert message(lambda: mask.validate(model)) == (
        "mask does not fit this model: layers not in the model: 5.weight, 6.weight; shape mismatch: 1.weight (mask "
        "(2, 3) vs weight (3, 2)), 0.bias (mask (3,) vs weight (2,)). Load a mask made for this architecture (same "
        "model name and kwargs)")


# ---- the pruners' remaining edges ----------------------------------------------------------------------------------
def test_bad_min_density_and_layer_rate_messages_in_full():
    assert message(lambda: MagnitudePruner(min_density=1.0)) == (
        "min_density=1.0 is not a fraction in [0, 1); pass e.g. 0.0 (keep one weight per layer), 0.01 (keep 1 %) or "
        "None (no guard)")
    assert message(lambda: MagnitudePruner(layer_rates={"fc*": 1.5})).startswith("layer_rates['fc*']=1.5 ")


def test_the_collapse_floor_forgives_float_noise_below_a_millionth():
    assert MagnitudePruner(min_density=0.0100000008).floor_for(torch.ones(100, dtype=torch.bool)) == 1
    assert MagnitudePruner(min_density=0.07).floor_for(torch.ones(100, dtype=torch.bool)) == 7


def three_layers(*scales):
    model = nn.Sequential(*[nn.Linear(10, 1, bias=False) for _ in scales])
    with torch.no_grad():
        for layer, scale in zip(model, scales):
            layer.weight.copy_(scale * torch.arange(1, 11, dtype=torch.float32).view(1, 10))
    return model


def test_the_collapse_guard_holds_layers_found_over_their_floor_in_later_passes_too():
    model = three_layers(0.01, 1.0, 100.0)  # pass 1 holds layer 0; the remainder then overshoots layer 1
    with pytest.warns(UserWarning, match=r"stopped pruning 2 layer\(s\) at their floor: 0.weight, 1.weight;"):
        mask = MagnitudePruner(min_density=0.5).prune(model, PruningMask(model), 14 / 30)
    assert [int((~mask[f"{i}.weight"]).sum()) for i in range(3)] == [5, 5, 4]


def test_a_layer_whose_rate_is_zero_does_not_stop_the_layers_after_it():
    model = three_layers(1.0, 1.0, 1.0)
    mask = MagnitudePruner(layer_rates={"0.weight": 0.0}).prune_fraction(model, PruningMask(model), 0.5)
    assert [int((~mask[f"{i}.weight"]).sum()) for i in range(3)] == [0, 5, 5]


def test_nan_weights_are_refused_naming_at_most_three_layers():
    model = nn.Sequential(*[nn.Linear(3, 3) for _ in range(4)])
    with torch.no_grad():
        for layer in model:
            layer.weight[0, 0] = float("nan")
    assert message(lambda: MagnitudePruner().prune(model, PruningMask(model), 0.5)) == (
        "weights of 0.weight, 1.weight, 2.weight are NaN or infinite, so their magnitudes rank nothing; training "
        "diverged: lower the learning rate (--lr) or add warmup")


def test_a_target_that_prunes_every_weight_it_may_touch_is_refused_in_full():
    model = nn.Linear(10, 10)
    assert message(lambda: MagnitudePruner(min_density=None).prune(model, PruningMask(model), 0.9999999)) == (
        "this target prunes every remaining weight it may touch; pass a lower sparsity (e.g. 0.99)")


def reference_lowest(weights, alive, count):
    flat = torch.cat([w.reshape(-1) for w in weights]).abs().double().numpy()
    keep = torch.cat([k.reshape(-1) for k in alive]).numpy().copy()
    survivors = np.flatnonzero(keep)
    keep[survivors[np.argsort(flat[survivors], kind="stable")[:count]]] = False
    out, start = [], 0
    for w in weights:
        out.append(torch.from_numpy(keep[start:start + w.numel()].copy()).view_as(w))
        start += w.numel()
    return out


@pytest.mark.parametrize("chunk", [None, 7])
def test_select_lowest_matches_a_full_sort_over_many_weights_and_chunks(monkeypatch, chunk):
    from lottery_ticket.pruning import selection

    if chunk:
        monkeypatch.setattr(selection, "CHUNK", chunk)  # the multi-chunk path, without 4M-weight layers
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(n, generator=g) for n in (300, 517, 1000)]
    dense = [torch.ones(n, dtype=torch.bool) for n in (300, 517, 1000)]
    pruned = [torch.rand(n, generator=g) > 0.3 for n in (300, 517, 1000)]  # the survivors-only path
    for keep, count in [(dense, 1), (dense, 2), (dense, 901), (dense, 1816), (pruned, 1), (pruned, 700)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. torch resizing an `out=` slice of the wrong length
            got = selection.select_lowest(weights, keep, count)
        assert all(torch.equal(a, b) for a, b in zip(got, reference_lowest(weights, keep, count)))
