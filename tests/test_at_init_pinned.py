"""Pruning at initialization, pinned further: SNIP and GraSP against a float64 autograd reference on a masked
network (one layer the forward never uses), SynFlow's path product through every way of giving the input shape,
the device the scores are taken on, SynFlow's schedule from a pruned start, exact counts, the ranking's ties and
dtype, and every one-line error the at-init pruners raise."""

import numpy as np
import pytest
import torch
from conftest import TinyMLP
from torch import nn
from torch.nn import functional as F

from lottery_ticket import PruningMask
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.pruning import (
    GraspPruner,
    MagnitudeInitPruner,
    RandomPruner,
    ScoringData,
    SnipPruner,
    SynFlowPruner,
)
from lottery_ticket.pruning.at_init import (
    AT_INIT_PRUNERS,
    grasp_scores,
    lowest_scores,
    magnitude_scores,
    make_at_init_pruner,
    snip_scores,
    synflow_scores,
)
from lottery_ticket.sparsity import count_pruned


class SpareNet(nn.Module):
    """Two layers on the forward path and a third, `spare`, that the forward never calls."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc2 = nn.Linear(4, 2)
        self.spare = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def spare_net() -> SpareNet:
    torch.manual_seed(0)
    return SpareNet().double()


def pruned_mask(net: nn.Module) -> PruningMask:
    mask = PruningMask(net)
    mask.masks["fc1.weight"][0, :2] = False
    mask.masks["fc2.weight"][1, 3] = False
    return mask


def float64_batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (5,), generator=g))
            for _ in range(2)]


def autograd_reference(net, mask, batches, loss_fn):
    """SNIP |g ⊙ w| and GraSP -w ⊙ (H g) of the mean loss over the batches, in float64, on the network the mask
    leaves: the mask's weights as one flat vector, the full Hessian from torch.autograd.functional.hessian."""
    names = mask.names
    base = {n: p.detach().clone() for n, p in net.named_parameters()}
    for n in names:
        base[n] = base[n] * mask[n]
    shapes = [base[n].shape for n in names]
    w = torch.cat([base[n].reshape(-1) for n in names])

    def mean_loss(flat):
        params, i = dict(base), 0
        for n, s in zip(names, shapes):
            params[n] = flat[i:i + s.numel()].view(s)
            i += s.numel()
        return sum(loss_fn(torch.func.functional_call(net, params, (x,)), y) for x, y in batches) / len(batches)

    g = torch.func.grad(mean_loss)(w)
    hg = torch.autograd.functional.hessian(mean_loss, w) @ g

    def split(v):
        return {n: t.view(s) for n, t, s in zip(names, torch.split(v, [s.numel() for s in shapes]), shapes)}

    return split((g * w).abs()), split(-w * hg)


def assert_scores(got, expected):
    assert list(got) == list(expected)  # exactly the mask's layers, in its order
    for n in expected:
        assert got[n].shape == expected[n].shape, n
        assert torch.allclose(got[n], expected[n], rtol=1e-9, atol=1e-12), n


# ---- SNIP and GraSP against the reference --------------------------------------------------------------------------
def test_snip_and_grasp_match_a_float64_autograd_reference_on_the_masked_network_and_score_unused_layers_zero():
    net, batches = spare_net(), float64_batches()
    mask = pruned_mask(net)
    snip_ref, grasp_ref = autograd_reference(net, mask, batches, F.cross_entropy)
    assert bool(snip_ref["fc1.weight"].abs().sum() > 0) and bool(grasp_ref["fc2.weight"].abs().sum() > 0)
    data = ScoringData(batches=lambda: iter(batches))  # a function returning a fresh iterable of batches
    for got in (snip_scores(net, batches, mask=mask), SnipPruner(data=data).scores(net, mask)):
        assert_scores(got, snip_ref)
        assert not bool(got["spare.weight"].any())  # no gradient reaches it: zero, not an error
    for got in (grasp_scores(net, batches, mask=mask), GraspPruner(data=data).scores(net, mask)):
        assert_scores(got, grasp_ref)
        assert not bool(got["spare.weight"].any())


def linear_1x2() -> nn.Linear:
    layer = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=torch.float64))
    return layer


def squared_or_linear(out, target):
    """Half squared error for float targets; for integer targets the sum of the outputs, a loss linear in the
    weights of a linear layer (its gradient does not depend on them: no curvature)."""
    if target.is_floating_point():
        return 0.5 * ((out - target) ** 2).sum(dim=1).mean()
    return out.sum()


def test_grasp_skips_a_batch_without_curvature_and_still_counts_the_batches_after_it():
    layer = linear_1x2()
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    batches = [(x, torch.zeros(1, 2, dtype=torch.long)), (x, torch.zeros(1, 2, dtype=torch.float64))]
    mask = PruningMask(layer)
    _, expected = autograd_reference(layer, mask, batches, squared_or_linear)
    # By hand: g = mean of [[1, 2], [1, 2]] and [[-3, -6], [4, 8]]; H = (0 + I ⊗ x xᵀ) / 2, so Hg = 2.5 g.
    hand = -layer.weight.detach() * 2.5 * torch.tensor([[-1.0, -2.0], [2.5, 5.0]], dtype=torch.float64)
    assert torch.allclose(expected["weight"], hand)
    assert torch.allclose(grasp_scores(layer, batches, squared_or_linear, mask)["weight"], hand)


def test_scoring_with_no_batches_is_refused_in_one_line():
    net = spare_net()
    message = "no batches to score on; pass ScoringData(batches=[(inputs, targets), ...])"
    for score in (snip_scores, grasp_scores):
        with pytest.raises(LotteryTicketError) as excinfo:
            score(net, [], mask=PruningMask(net))
        assert str(excinfo.value) == message


def test_scores_are_taken_on_the_models_device_with_the_batches_the_input_and_the_mask_moved_there():
    # The meta device stands in for an accelerator: any device other than the one the batches and mask are on.
    net = SpareNet().to("meta")
    mask = PruningMask(SpareNet())
    mask.masks["fc1.weight"][0, 0] = False
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(5, 3, generator=g), torch.randint(0, 2, (5,), generator=g))]
    for scores in (snip_scores(net, batches, mask=mask), grasp_scores(net, batches, mask=mask),
                   synflow_scores(net, (3,), mask), magnitude_scores(net, mask)):
        assert list(scores) == mask.names
        for n, s in scores.items():
            assert s.device.type == "meta" and s.shape == mask[n].shape, n


# ---- SynFlow ---------------------------------------------------------------------------------------------------------
class PathNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 2, bias=False)
        self.fc2 = nn.Linear(2, 1, bias=False)
        self.spare = nn.Linear(2, 2, bias=False)  # never called by forward
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
            self.fc2.weight.copy_(torch.tensor([[-1.0, 2.0]]))
            self.spare.weight.fill_(3.0)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def test_synflow_scores_the_masked_path_product_whichever_way_the_input_shape_is_given():
    net = PathNet()
    mask = PruningMask(net)
    mask.masks["fc1.weight"][1, 0] = False
    # |W1| masked = [[1, 2], [0, 0.5]], row sums h = (3, 0.5), R = 1·3 + 2·0.5 = 4.
    # dR/d|W1|_jk = |W2|_j: scores [[1·1, 1·2], [2·0, 2·0.5]]; dR/d|W2|_j = h_j: scores [[1·3, 2·0.5]].
    expected = {"fc1.weight": torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64),
                "fc2.weight": torch.tensor([[3.0, 1.0]], dtype=torch.float64),
                "spare.weight": torch.zeros(2, 2, dtype=torch.float64)}
    first_batch = [(torch.randn(4, 2), torch.zeros(4, dtype=torch.long))]
    pruners = [SynFlowPruner(input_shape=(2,)), SynFlowPruner(data=ScoringData(input_shape=(2,))),
               SynFlowPruner(data=ScoringData(batches=first_batch)),  # one example's shape: the batch's without dim 0
               SynFlowPruner(data=ScoringData(batches=lambda: iter(first_batch)))]
    for got in [synflow_scores(net, (2,), mask)] + [p.scores(net, mask) for p in pruners]:
        assert_scores(got, expected)


def test_synflow_without_an_input_shape_or_with_one_the_model_refuses_says_so_in_one_line():
    net = PathNet()
    for pruner in (SynFlowPruner(), SynFlowPruner(data=ScoringData(loss_fn=F.mse_loss))):
        with pytest.raises(LotteryTicketError) as excinfo:
            pruner.scores(net, PruningMask(net))
        assert str(excinfo.value) == ("synflow needs the shape of one input; pass "
                                      "SynFlowPruner(input_shape=(1, 28, 28))")
    try:
        PathNet().double()(torch.ones(1, 3, dtype=torch.float64))
    except RuntimeError as exc:
        torch_says = str(exc).splitlines()[0]
    with pytest.raises(LotteryTicketError) as excinfo:
        synflow_scores(net, (3,), PruningMask(net))
    assert str(excinfo.value) == (f"synflow feeds the model one all-ones input of shape (3,), which it does not take: "
                                  f"{torch_says}; pass the shape of one example")


def test_synflow_pruner_arguments_are_checked_and_its_repr_names_them():
    for bad in (0, -3, True, 2.5, "5"):
        with pytest.raises(LotteryTicketError) as excinfo:
            SynFlowPruner(iterations=bad)
        assert str(excinfo.value) == f"iterations={bad!r} must be an integer >= 1 (the paper uses 100)"
    assert SynFlowPruner(iterations=1).iterations == 1
    default = SynFlowPruner()
    assert default.iterations == 100 and default.min_density == 0.0
    assert repr(default) == "SynFlowPruner(exclude=(), iterations=100)"
    custom = SynFlowPruner(exclude=["fc2.*"], min_density=None, iterations=7)
    assert custom.min_density is None
    assert repr(custom) == "SynFlowPruner(exclude=('fc2.*',), min_density=None, iterations=7)"
    assert repr(SynFlowPruner(min_density=0.25)) == "SynFlowPruner(exclude=(), min_density=0.25, iterations=100)"


def half_pruned_start(model) -> PruningMask:
    """fc1 at 50 %, fc2 (excluded below) at 75 %: the eligible and the overall densities differ."""
    mask = RandomPruner(seed=4).prune(model, PruningMask(model), {"fc1.weight": 0.5, "fc2.weight": 0.75})
    assert count_pruned(mask, ["fc1.weight"]) == (320, 640) and count_pruned(mask, ["fc2.weight"]) == (72, 96)
    return mask


class Fc1Recording(SynFlowPruner):
    """SynFlow that records fc1's density each time it scores."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.densities: list[float] = []

    def scores(self, model, mask):
        pruned, total = count_pruned(mask, ["fc1.weight"])
        self.densities.append(1 - pruned / total)
        return super().scores(model, mask)


def test_synflow_schedule_starts_from_the_eligible_density_of_a_pruned_mask():
    torch.manual_seed(0)
    model = TinyMLP()
    start = half_pruned_start(model)
    pruner = Fc1Recording(exclude=("fc2.*",), input_shape=(20,), iterations=4)
    new = pruner.prune(model, start, 0.9)
    densities = pruner.densities
    # the eligible density goes 0.5 -> 0.1 as 0.5 * (0.1 / 0.5) ** (k / 4), to one weight
    assert len(densities) == 4
    for k, d in enumerate(densities):
        assert abs(d - 0.5 * 0.2 ** (k / 4)) <= 1 / 640 + 1e-12, k
    assert count_pruned(new, ["fc1.weight"])[0] == round(0.9 * 640)
    assert torch.equal(new["fc2.weight"], start["fc2.weight"])
    assert bool((new["fc1.weight"] <= start["fc1.weight"]).all())


def test_synflow_at_or_past_its_target_scores_once_and_returns_the_mask_unchanged():
    torch.manual_seed(0)
    model = TinyMLP()
    start = half_pruned_start(model)
    for target in (0.3, 0.5):  # past the eligible sparsity (0.5), and exactly on it
        pruner = Fc1Recording(exclude=("fc2.*",), input_shape=(20,), iterations=3)
        assert pruner.prune(model, start, target) == start
        assert len(pruner.densities) == 1, target  # no schedule to iterate: one scoring, not `iterations`


@pytest.mark.parametrize("iterations", [1, 3])
def test_synflow_lands_exactly_on_round_target_times_n_where_the_schedules_arithmetic_falls_short(iterations):
    # 15 weights at 0.1: round(1.5) = 2 pruned; 1 - (1 - 0.1) is 0.09999999999999998, which would round to 1.
    torch.manual_seed(0)
    layer = nn.Linear(5, 3, bias=False)
    new = SynFlowPruner(input_shape=(5,), iterations=iterations).prune(layer, PruningMask(layer), 0.1)
    assert count_pruned(new)[0] == 2


def test_synflow_refuses_per_layer_targets_and_out_of_range_sparsities_in_one_line():
    layer = nn.Linear(5, 3, bias=False)
    mask = PruningMask(layer)
    with pytest.raises(LotteryTicketError) as excinfo:
        SynFlowPruner(input_shape=(5,)).prune(layer, mask, {"weight": 0.5})
    assert str(excinfo.value) == ("the synflow pruner ranks all eligible layers together; give one sparsity, "
                                  "not per-layer targets")
    with pytest.raises(LotteryTicketError) as excinfo:
        SynFlowPruner(input_shape=(5,)).prune(layer, mask, 1.5)
    assert str(excinfo.value) == ("target_sparsity=1.5 is outside [0, 1); pass the fraction of weights to prune, "
                                  "e.g. 0.9 (did you mean 0.015?)")


# ---- ScorePruner: repr, guard, refusals, IMP levels, NaN -----------------------------------------------------------
def test_score_pruner_repr_names_the_class_the_exclusions_and_a_non_default_guard():
    assert repr(SnipPruner()) == "SnipPruner(exclude=())"
    assert repr(GraspPruner(exclude=["fc2.*"], min_density=None)) == "GraspPruner(exclude=('fc2.*',), min_density=None)"
    assert repr(MagnitudeInitPruner(min_density=0.25)) == "MagnitudeInitPruner(exclude=(), min_density=0.25)"


def test_score_pruner_min_density_guard_is_the_one_given():
    torch.manual_seed(0)
    model = TinyMLP()
    # A 50 % floor and a 50 % target leave no choice: each layer keeps exactly half (fc1 320 of 640, fc2 48 of 96).
    pruner = MagnitudeInitPruner(min_density=0.5)
    assert pruner.min_density == 0.5
    with pytest.warns(UserWarning, match=r"min_density=0.5 stopped pruning 1 layer\(s\) at their floor: fc2.weight"):
        new = pruner.prune(model, PruningMask(model), 0.5)
    assert count_pruned(new, ["fc1.weight"]) == (320, 640) and count_pruned(new, ["fc2.weight"]) == (48, 96)
    assert MagnitudeInitPruner(min_density=None).min_density is None


def test_score_pruner_refuses_per_layer_targets_in_one_line():
    model = TinyMLP()
    with pytest.raises(LotteryTicketError) as excinfo:
        MagnitudeInitPruner().prune(model, PruningMask(model), {"fc1.weight": 0.5})
    assert str(excinfo.value) == ("the magnitude-init pruner ranks all eligible layers together; give one sparsity, "
                                  "not per-layer targets")


def test_one_imp_level_prunes_the_fraction_of_the_eligible_survivors_only():
    torch.manual_seed(0)
    model = TinyMLP()
    start = half_pruned_start(model)
    dense_fc1 = start.copy()
    dense_fc1.masks["fc1.weight"] = torch.ones_like(start["fc1.weight"])
    for mask, alive in ((start, 320), (dense_fc1, 640)):
        new = MagnitudeInitPruner(exclude=("fc2.*",)).prune_fraction(model, mask, 0.5)
        assert count_pruned(new, ["fc1.weight"])[0] == 640 - alive + round(0.5 * alive)
        assert torch.equal(new["fc2.weight"], mask["fc2.weight"])
    with pytest.raises(LotteryTicketError) as excinfo:
        MagnitudeInitPruner().prune_fraction(model, start, 1.5)
    assert str(excinfo.value) == ("fraction=1.5 is outside [0, 1); pass the fraction of weights to prune, e.g. 0.9 "
                                  "(did you mean 0.015?)")


def test_nan_scores_are_refused_naming_the_first_three_layers():
    net = nn.Sequential(*(nn.Linear(2, 2, bias=False) for _ in range(4)))
    with torch.no_grad():
        for layer in net:
            layer.weight[0, 0] = float("nan")
    with pytest.raises(LotteryTicketError) as excinfo:
        MagnitudeInitPruner().prune(net, PruningMask(net), 0.5)
    assert str(excinfo.value) == ("magnitude-init scores of 0.weight, 1.weight, 2.weight are NaN or infinite, so they "
                                  "rank nothing; check θ₀ and the scoring batches for NaN (synflow: a very deep net)")


def test_magnitude_init_scores_are_the_masks_layers_with_pruned_weights_zero():
    torch.manual_seed(0)
    model = TinyMLP()
    mask = half_pruned_start(model)
    for scores in (magnitude_scores(model, mask), MagnitudeInitPruner().scores(model, mask)):
        assert list(scores) == mask.names
        for n in mask.names:
            weight = dict(model.named_parameters())[n].detach()
            assert torch.equal(scores[n], torch.where(mask[n], weight.abs(), torch.zeros_like(weight))), n


# ---- the ranking ---------------------------------------------------------------------------------------------------
def test_lowest_scores_with_no_count_prunes_nothing():
    keep = [torch.ones(2, 2, dtype=torch.bool), torch.tensor([True, False, True])]
    keys = [torch.tensor([[3.0, 1.0], [2.0, 4.0]]), torch.tensor([0.5, 9.0, 7.0])]
    for count in (0, -2):
        new = lowest_scores(keys, keep, count)
        assert all(torch.equal(n, k) for n, k in zip(new, keep))


def test_lowest_scores_break_many_ties_by_layer_order_then_flat_index():
    g = torch.Generator().manual_seed(0)
    keys = [torch.randint(0, 3, (40, 50), generator=g).double(), torch.randint(0, 3, (3000,), generator=g).double()]
    keep = [torch.rand(40, 50, generator=g) > 0.2, torch.rand(3000, generator=g) > 0.2]
    # reference: numpy's stable argsort over the survivors in layer order, then flat index
    alive = [np.flatnonzero(k.numpy().reshape(-1)) for k in keep]
    survivors = np.concatenate([v.numpy().reshape(-1)[a] for v, a in zip(keys, alive)])
    chosen = np.argsort(survivors, kind="stable")[:2500]
    expected = [k.numpy().reshape(-1).copy() for k in keep]
    offsets = np.cumsum([0] + [len(a) for a in alive])
    for i in chosen:
        layer = int(np.searchsorted(offsets, i, side="right")) - 1
        expected[layer][alive[layer][i - offsets[layer]]] = False
    new = lowest_scores(keys, keep, 2500)
    for n, e, k in zip(new, expected, keep):
        assert n.shape == k.shape and np.array_equal(n.numpy().reshape(-1), e)


def test_lowest_scores_compare_keys_of_any_dtype_in_float64():
    # 2**24 + 1 as an integer is above 2**24 as float32; float32 itself cannot tell them apart.
    keys = [torch.tensor([2 ** 24 + 1], dtype=torch.int64), torch.tensor([2.0 ** 24], dtype=torch.float32)]
    keep = [torch.ones(1, dtype=torch.bool), torch.ones(1, dtype=torch.bool)]
    new = lowest_scores(keys, keep, 1)
    assert new[0].tolist() == [True] and new[1].tolist() == [False]


# ---- the at-init factory -------------------------------------------------------------------------------------------
def test_make_at_init_pruner_builds_each_method_and_refuses_unknown_names_in_one_line():
    for name, cls in AT_INIT_PRUNERS.items():
        pruner = make_at_init_pruner(name, exclude=("fc2.*",), min_density=None)
        assert type(pruner) is cls and pruner.name == name
        assert pruner.exclude == ("fc2.*",) and pruner.min_density is None
    with pytest.raises(LotteryTicketError) as excinfo:
        make_at_init_pruner("snp")
    assert str(excinfo.value) == "unknown pruning-at-init method 'snp'; choose from snip, grasp, synflow, magnitude-init"

