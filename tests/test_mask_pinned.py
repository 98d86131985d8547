"""PruningMask and the pruners' shared rules in detail: type selection, the stored layer order, the file's metadata,
load as a class or an instance method, whole error messages, the most specific layer-rate pattern, exact global
counts under ties."""

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
