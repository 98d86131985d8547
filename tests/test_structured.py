"""N:M / 2:4 structured pruning: the pattern, its grouping, composition with tickets, and IMP under it."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import TinyMLP
from lottery_ticket import LotteryTicketError, LotteryTicketFinder, MagnitudePruner, PruningMask
from lottery_ticket.pruning import NMConstrainedPruner, NMPruner, Structured24Pruner, nm_mask, verify_24_pattern, verify_nm_pattern


MLP_KWARGS = {"inputs": 16, "hidden": 12, "classes": 3}  # input dims 16 and 12 take 2:4; biases are never masked


def MLP():
    return TinyMLP(**MLP_KWARGS)


class ConvNet(nn.Module):
    """conv1 has 3 input channels (cannot take 2:4), conv2 has 8 (can)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).flatten(1))


def groups_along_input(t: torch.Tensor, m: int = 4) -> torch.Tensor:
    """Reference grouping written out by hand: [..., groups, m] with input channels innermost."""
    if t.dim() == 2:
        return t.reshape(t.shape[0], t.shape[1] // m, m)
    moved = t.permute(0, 2, 3, 1)  # [out, kh, kw, C]
    return moved.reshape(*moved.shape[:-1], t.shape[1] // m, m)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 6), groups=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_24_keeps_exactly_the_two_largest_of_each_four_without_ties(rows, groups, seed):
    # Invariant: on dense input with distinct magnitudes, every group keeps exactly 2, the 2 largest |w|.
    g = torch.Generator().manual_seed(seed)
    magnitudes = torch.randperm(rows * groups * 4, generator=g).float() + 1.0
    signs = torch.where(torch.rand(rows * groups * 4, generator=g) < 0.5, -1.0, 1.0)
    w = (magnitudes * signs).reshape(rows, groups * 4)
    keep = nm_mask(w)
    grouped_keep = groups_along_input(keep)
    assert (grouped_keep.sum(-1) == 2).all()
    top2 = groups_along_input(w.abs()).topk(2, dim=-1).indices
    expected = torch.zeros_like(grouped_keep).scatter_(-1, top2, True)
    assert torch.equal(grouped_keep, expected)
    assert verify_24_pattern(w * keep)


def test_verify_counts_at_most_n_nonzeros_per_group():
    # Invariant: "at most n": fewer nonzeros pass, one group over n fails, an indivisible input dim fails.
    w = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]])
    assert verify_24_pattern(w)
    assert verify_24_pattern(torch.zeros(2, 8))
    w[0, 2] = 3.0
    assert verify_24_pattern(w)
    w[0, 3] = 4.0  # first group now has 3 nonzeros
    assert not verify_24_pattern(w)
    assert verify_nm_pattern(w, 3, 4)
    assert not verify_24_pattern(torch.zeros(2, 6))


def test_ties_are_broken_by_lower_input_index_deterministically():
    # Invariant: equal magnitudes keep the lowest indices of each group, the same way every call.
    w = torch.ones(3, 8)
    w[:, 5] = -1.0  # same magnitude, other sign
    first = nm_mask(w)
    assert torch.equal(first, nm_mask(w.clone()))
    expected = torch.tensor([True, True, False, False] * 2).expand(3, 8)
    assert torch.equal(first, expected)


def test_conv_groups_run_along_input_channels_at_each_kernel_position():
    # Invariant: conv groups are 4 consecutive input channels at a fixed (out, kh, kw), not 4 kernel taps.
    conv = nn.Conv2d(8, 2, 3)
    with torch.no_grad():
        # Weight grows with the channel index and is constant over kernel taps, so channel grouping
        # keeps channels {2,3} and {6,7} everywhere, while grouping the flattened [out, C*9] view
        # would keep the first taps of single channels.
        conv.weight.copy_(torch.arange(1, 9, dtype=torch.float32).reshape(1, 8, 1, 1).expand(2, 8, 3, 3))
    keep = nm_mask(conv.weight)
    kept_channels = keep[0, :, 0, 0].nonzero().flatten().tolist()
    assert kept_channels == [2, 3, 6, 7]
    assert torch.equal(keep, keep[:, :, :1, :1].expand_as(keep))
    assert verify_24_pattern(conv.weight * keep)
    assert (groups_along_input(keep).sum(-1) == 2).all()


def test_layers_that_cannot_take_the_pattern_are_skipped_and_reported():
    # Invariant: an input dim not divisible by 4 leaves the layer's mask unchanged, listed in `skipped` and warned.
    torch.manual_seed(0)
    model = ConvNet()
    pruner = Structured24Pruner()
    with pytest.warns(UserWarning, match="conv1.weight"):
        mask = pruner.prune_model(model)
    assert [name for name, _ in pruner.skipped] == ["conv1.weight"]
    assert "3 is not a multiple of 4" in pruner.skipped[0][1]
    assert bool(mask["conv1.weight"].all())
    assert verify_24_pattern(model.conv2.weight * mask["conv2.weight"])
    assert verify_24_pattern(model.fc.weight * mask["fc.weight"])
    assert "conv2.bias" not in mask.masks


def test_composition_with_a_ticket_never_revives_and_keeps_the_largest_survivors():
    # Invariant: prune(model, ticket) ⊆ ticket, obeys 2:4, and keeps min(2, survivors) per group: the largest.
    torch.manual_seed(1)
    model = MLP()
    g = torch.Generator().manual_seed(3)
    ticket = PruningMask(masks={n: torch.rand(m.shape, generator=g) < 0.6 for n, m in PruningMask(model).items()})
    combined = NMPruner(2, 4).prune(model, ticket)
    params = dict(model.named_parameters())
    for name in ticket.names:
        old, new = ticket[name], combined[name]
        assert not (new & ~old).any(), f"{name}: a pruned weight was revived"
        assert verify_24_pattern(params[name].detach() * new)
        alive_per_group = groups_along_input(old).sum(-1)
        assert torch.equal(groups_along_input(new).sum(-1), alive_per_group.clamp(max=2))
        scores = torch.where(old, params[name].detach().abs(), torch.tensor(-1.0))
        top2 = groups_along_input(scores).topk(2, dim=-1).indices
        expected = torch.zeros_like(groups_along_input(new)).scatter_(-1, top2, True) & groups_along_input(old)
        assert torch.equal(groups_along_input(new), expected)


def test_structured24_is_nm_2_4_and_bad_arguments_are_clear_errors():
    # Invariant: Structured24Pruner == NMPruner(2, 4); user mistakes raise LotteryTicketError.
    torch.manual_seed(2)
    model = MLP()
    assert Structured24Pruner().prune_model(model) == NMPruner(2, 4).prune_model(model)
    with pytest.raises(LotteryTicketError, match="n <= m"):
        NMPruner(5, 4)
    with pytest.raises(LotteryTicketError, match="m=0"):
        NMPruner(2, 0)
    with pytest.raises(LotteryTicketError, match="NMConstrainedPruner"):
        NMPruner(2, 4).prune(model, PruningMask(model), target_sparsity=0.9)
    with pytest.raises(LotteryTicketError, match="cannot take 2:4"):
        nm_mask(torch.ones(3, 6))


def _train_fn(data):
    x, y = data

    def train(model, mask, on_step=None, start_iteration=0):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for it in range(start_iteration + 1, 9):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            mask.apply(model)
            if on_step is not None:
                on_step(it, model)
        return {"iterations": 8}

    return train


@pytest.mark.parametrize("rewind", [0, 2])
def test_imp_with_nm_constrained_pruner_gives_24_tickets_every_round(rewind):
    # Invariant: with the finder (reset or rewind), every round's mask obeys 2:4, masks only shrink,
    # and the last round lands exactly on the target sparsity.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    finder = LotteryTicketFinder(TinyMLP, MLP_KWARGS, seed=0, pruner=NMConstrainedPruner(MagnitudePruner(global_pruning=True)), rewind_iteration=rewind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no layer of MLP should be skipped
        model, mask, results = finder.find_winning_ticket(
            None, _train_fn((x, y)), lambda m: float((m(x).argmax(1) == y).float().mean()),
            target_sparsity=0.8, pruning_rounds=3, verbose=False,
        )
    params = dict(model.named_parameters())
    for previous, current in zip(finder.masks, finder.masks[1:]):
        for name in current.names:
            assert not (current[name] & ~previous[name]).any()
    for round_mask in finder.masks[1:]:
        for name in round_mask.names:
            assert verify_24_pattern(round_mask[name])
    for name in mask.names:
        assert verify_24_pattern(params[name].detach())
    assert mask.num_pruned == round(0.8 * mask.num_total)
    assert finder.masks[1].sparsity >= 0.5  # the first round projects onto 2:4
    assert "NMConstrainedPruner" in results["config"]["pruner"]


def test_prune_model_prunes_the_model_it_is_given_and_returns_the_mask():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    before = model[0].weight.detach().clone()
    mask = Structured24Pruner().prune_model(model)
    assert verify_24_pattern(model[0].weight) and verify_24_pattern(model[2].weight)  # in place, no apply needed
    assert torch.equal(model[0].weight[mask["0.weight"]], before[mask["0.weight"]])  # survivors untouched
    assert mask.sparsity == 0.5
