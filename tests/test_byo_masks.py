"""Bring your own model: tied weights, choosing prunable weights by type, the layer-collapse guard, torch's prune bridge."""

import copy
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune as torch_prune

from conftest import TinyCNN
from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask, RandomPruner
from lottery_ticket.mask import count_alive, module_weights, named_parameters


class TiedLM(nn.Module):
    """A language model whose output layer reuses the embedding matrix (GPT-2, T5 style)."""

    def __init__(self, vocab: int = 40, dim: int = 12):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.body = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, x):
        return self.head(torch.relu(self.body(self.emb(x))))


class SeqModel(nn.Module):
    """Embedding, attention, LSTM, a loose parameter and a Linear head: the weights users bring."""

    def __init__(self, vocab: int = 30, dim: int = 8):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(6, dim))
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.lstm = nn.LSTM(dim, dim, num_layers=2, batch_first=True)
        self.out = nn.Linear(dim, 3)

    def forward(self, x):
        h = self.emb(x) + self.pos[: x.shape[1]]
        h = self.norm(h + self.attn(h, h, h)[0])
        return self.out(self.lstm(h)[0][:, -1])


class Mixed(nn.Module):
    """The layer-collapse case: a Conv1d, a depthwise conv, attention projections and one big Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.depthwise = nn.Conv1d(8, 8, 3, padding=1, groups=8)
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.fc = nn.Linear(8 * 16, 256)
        with torch.no_grad():  # trained small layers often end up with small weights: global ranking empties them
            for layer in (self.conv, self.depthwise, self.k):
                layer.weight.mul_(0.01)

    def forward(self, x):
        h = self.depthwise(torch.relu(self.conv(x))).transpose(1, 2)
        q, k, v = self.q(h), self.k(h), self.v(h)
        h = torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1) @ v
        return self.fc(h.flatten(1))


SEQ_TYPES = (nn.Embedding, nn.MultiheadAttention, nn.LSTM, nn.Linear)
SEQ_WEIGHTS = ["emb.weight", "attn.in_proj_weight", "attn.out_proj.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0",
               "lstm.weight_ih_l1", "lstm.weight_hh_l1", "out.weight"]


def seeded(cls, seed=0):
    torch.manual_seed(seed)
    return cls()


# ---- tied weights -------------------------------------------------------------------------------
def test_a_tied_tensor_gets_one_entry_under_the_name_torch_reports_first():
    model = seeded(TiedLM)
    mask = PruningMask(model)
    assert mask.names == ["emb.weight", "body.weight"]  # head.weight is the same tensor as emb.weight
    assert PruningMask(model, include=["head.weight"]).names == ["emb.weight"]  # patterns match either name
    assert PruningMask(model, exclude=["head.*"]).names == ["body.weight"]


# The embedding's N(0, 1) init dwarfs body's, so global ranking empties body: a collapse of its own.
@pytest.mark.filterwarnings("ignore:pruning emptied")
def test_applying_a_tied_mask_zeroes_both_views_of_the_shared_tensor():
    model = seeded(TiedLM)
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    mask.apply(model)
    assert model.head.weight is model.emb.weight
    assert not model.head.weight[~mask["emb.weight"]].any() and not model.emb.weight[~mask["emb.weight"]].any()
    assert mask.is_applied(model)


@pytest.mark.filterwarnings("ignore:pruning emptied")
def test_pruning_counts_a_tied_tensor_once_and_the_sparsity_is_exact():
    model = seeded(TiedLM)
    mask = PruningMask(model)
    assert mask.num_total == 40 * 12 + 12 * 12
    for global_pruning in (True, False):
        new = MagnitudePruner(global_pruning=global_pruning).prune(model, mask, 0.6)
        if global_pruning:
            assert new.num_pruned == round(0.6 * mask.num_total)
        else:
            assert all(new[n].numel() - count_alive(new[n]) == round(0.6 * new[n].numel()) for n in new)


# ---- which weights are prunable --------------------------------------------------------------------
def test_every_weight_matrix_is_prunable_by_default_and_only_the_embedding_stays_dense():
    mask = PruningMask(seeded(SeqModel))
    # Attention's packed q/k/v projection and the LSTM's matrices multiply activations as a Linear does (issue 26:
    # "25 % remaining" must not leave them dense silently); the embedding is a lookup: opt in with types/include.
    assert mask.names == [n for n in SEQ_WEIGHTS if n != "emb.weight"]


def test_selected_types_cover_their_weight_matrices_and_never_biases_or_norms():
    mask = PruningMask(seeded(SeqModel), types=SEQ_TYPES)
    assert mask.names == SEQ_WEIGHTS
    assert not any("bias" in n or n.startswith("norm") for n in mask.names)


@pytest.mark.parametrize("global_pruning", [True, False])
def test_selected_embedding_attention_and_lstm_weights_prune_to_the_exact_count(global_pruning):
    model = seeded(SeqModel)
    new = MagnitudePruner(global_pruning=global_pruning).prune(model, PruningMask(model, types=SEQ_TYPES), 0.7)
    if global_pruning:
        assert new.num_pruned == round(0.7 * new.num_total)
    else:
        for n in SEQ_WEIGHTS:
            assert new[n].numel() - count_alive(new[n]) == round(0.7 * new[n].numel())
    new.apply(model)
    assert new.is_applied(model)
    assert torch.isfinite(model(torch.randint(0, 30, (2, 5)))).all()  # LSTM and attention still run


def test_loose_parameters_are_named_with_include_next_to_types():
    model = seeded(SeqModel)
    assert PruningMask(model, types=(nn.Linear,), include=["pos"]).names == ["pos", "attn.out_proj.weight", "out.weight"]


def test_attention_with_separate_key_and_value_sizes_prunes_its_three_projections():
    attn = nn.MultiheadAttention(8, 2, kdim=4, vdim=6)
    assert module_weights(attn) == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"]
    assert PruningMask(attn, types=(nn.MultiheadAttention,)).names == module_weights(attn)


def test_recurrent_cells_and_projected_lstms_prune_every_weight_matrix():
    assert module_weights(nn.GRUCell(4, 5)) == ["weight_ih", "weight_hh"]
    assert module_weights(nn.LSTM(4, 6, proj_size=3)) == ["weight_ih_l0", "weight_hh_l0", "weight_hr_l0"]


def test_types_that_are_not_module_classes_are_one_line_errors():
    with pytest.raises(LotteryTicketError, match="types=.*module classes"):
        PruningMask(seeded(SeqModel), types=("Linear",))
    with pytest.raises(LotteryTicketError, match="no prunable parameters"):
        PruningMask(seeded(TiedLM), types=(nn.LSTM,))


# ---- layer-collapse guard -------------------------------------------------------------------------
def test_without_a_guard_global_pruning_empties_small_layers_and_says_so():
    model = seeded(Mixed)
    with pytest.warns(UserWarning, match="emptied 3 layer.*conv.weight, depthwise.weight, k.weight.*min_density=0.0"):
        mask = MagnitudePruner(min_density=None).prune(model, PruningMask(model), 0.8)
    assert [n for n in mask if count_alive(mask[n]) == 0] == ["conv.weight", "depthwise.weight", "k.weight"]


def test_the_guard_is_on_by_default():
    model = seeded(Mixed)
    with pytest.warns(UserWarning, match="stopped pruning 3 layer"):
        mask = MagnitudePruner().prune(model, PruningMask(model), 0.8)
    assert all(count_alive(mask[n]) >= 1 for n in mask)


def test_the_guard_keeps_every_layer_at_80_percent_global_sparsity_with_one_warning_and_the_exact_count():
    model = seeded(Mixed)
    mask = PruningMask(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = MagnitudePruner(min_density=0.0).prune(model, mask, 0.8)
    assert len(caught) == 1
    assert "conv.weight, depthwise.weight, k.weight" in str(caught[0].message)
    assert all(count_alive(new[n]) >= 1 for n in new)
    assert new.num_pruned == round(0.8 * mask.num_total)  # the protected layers' share came from the others
    assert torch.isfinite(model(torch.randn(2, 4, 16))).all()


def test_the_guard_keeps_ceil_min_density_of_each_layer_and_ranks_the_rest_by_magnitude():
    model = seeded(Mixed)
    with pytest.warns(UserWarning, match="min_density=0.1 stopped pruning"):
        new = MagnitudePruner(min_density=0.1).prune(model, PruningMask(model), 0.8)
    assert all(count_alive(new[n]) >= math.ceil(0.1 * new[n].numel()) for n in new)
    params = named_parameters(model)
    free = ["q.weight", "v.weight", "fc.weight"]  # the layers the guard did not hold
    kept = torch.cat([params[n].detach().abs()[new[n]] for n in free])
    pruned = torch.cat([params[n].detach().abs()[~new[n]] for n in free])
    assert kept.min() >= pruned.max()


def test_the_guard_holds_across_imp_levels():
    model = seeded(Mixed)
    pruner, mask = MagnitudePruner(min_density=0.0), PruningMask(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(6):
            before = mask.num_remaining
            mask = pruner.prune_fraction(model, mask, 0.5)
            assert mask.num_remaining == before - round(0.5 * before)
    assert all(count_alive(mask[n]) >= 1 for n in mask)


def test_per_layer_pruning_stops_a_protected_layer_at_its_floor_and_hits_the_others_exactly():
    model = seeded(Mixed)
    with pytest.warns(UserWarning, match=r"stopped pruning 1 layer\(s\) at their floor: depthwise.weight"):
        new = MagnitudePruner(global_pruning=False, min_density=0.25).prune(
            model, PruningMask(model), {"depthwise.weight": 0.9, "fc.weight": 0.7})
    assert count_alive(new["depthwise.weight"]) == math.ceil(0.25 * 24)
    assert new["fc.weight"].numel() - count_alive(new["fc.weight"]) == round(0.7 * new["fc.weight"].numel())


def test_a_global_target_the_guard_cannot_meet_is_a_one_line_error():
    model = seeded(Mixed)
    with pytest.raises(LotteryTicketError, match="leaves 3 weights but min_density=0.0 keeps at least 6 in 6 layers; pass"):
        MagnitudePruner(min_density=0.0).prune(model, PruningMask(model), 0.9999)


def test_the_random_criterion_respects_the_guard_too():
    model = seeded(Mixed)
    with pytest.warns(UserWarning, match="stopped pruning"):
        new = RandomPruner(0, min_density=0.0).prune(model, PruningMask(model), 0.99)
    assert all(count_alive(new[n]) >= 1 for n in new)


@pytest.mark.parametrize("bad", [1.0, -0.1, "x", True])
def test_a_bad_min_density_is_a_one_line_error(bad):
    with pytest.raises(LotteryTicketError, match="min_density"):
        MagnitudePruner(min_density=bad)


def test_the_default_repr_is_unchanged_so_old_run_records_still_match():
    assert repr(MagnitudePruner()) == "MagnitudePruner(global_pruning=True, layer_rates=None, exclude=())"
    assert "min_density=None" in repr(MagnitudePruner(min_density=None))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10), st.integers(1, 10)), min_size=1, max_size=4),
       st.integers(0, 10_000), st.floats(0, 0.99), st.sampled_from([0.0, 0.1, 0.3]))
def test_guarded_global_pruning_is_exact_respects_floors_and_ranks_the_unprotected_layers(shapes, seed, sparsity, density):
    torch.manual_seed(seed)
    model = nn.ModuleList(nn.Linear(i, o, bias=False) for o, i in shapes)
    with torch.no_grad():
        model[0].weight.mul_(0.01)  # one small layer, so the guard has work to do
    mask, pruner = PruningMask(model), MagnitudePruner(min_density=density)
    floors = {n: max(1, math.ceil(round(density * mask[n].numel(), 6))) for n in mask}
    if mask.num_total - round(sparsity * mask.num_total) < sum(floors.values()):
        with pytest.raises(LotteryTicketError, match="min_density"):
            pruner.prune(model, mask, sparsity)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = pruner.prune(model, mask, sparsity)
    assert new.num_pruned == round(sparsity * mask.num_total)
    assert all(count_alive(new[n]) >= floors[n] for n in new)
    # Layers above their floor were ranked together: every weight they keep outweighs every one they lost.
    params = named_parameters(model)
    free = [n for n in new if count_alive(new[n]) > floors[n]]
    kept = [params[n].detach().abs()[new[n]] for n in free]
    pruned = [params[n].detach().abs()[~new[n]] for n in free]
    if free and torch.cat(pruned).numel():
        assert torch.cat(kept).min() >= torch.cat(pruned).max()


# ---- torch.nn.utils.prune bridge ------------------------------------------------------------------
def round_trip(model, mask, inputs, forward=lambda m, x: m(x)):
    ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
    mask.apply(ours)
    mask.to_torch_prune(theirs)
    with torch.no_grad():
        return PruningMask.from_torch_prune(theirs), forward(ours, inputs), forward(theirs, inputs), theirs


def test_torch_prune_round_trip_is_exact_and_the_forward_pass_matches():
    model = seeded(TinyCNN).eval()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.7)
    back, ours, theirs, pruned = round_trip(model, mask, torch.randn(2, 1, 8, 8))
    assert hasattr(pruned.conv, "weight_orig") and hasattr(pruned.fc, "weight_mask")
    assert back == mask
    assert torch.equal(ours, theirs)


@pytest.mark.filterwarnings("ignore:pruning emptied")
def test_torch_prune_round_trip_covers_tied_attention_and_lstm_weights():
    model = seeded(TiedLM)
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.5)
    back, ours, theirs, pruned = round_trip(model, mask, torch.randint(0, 40, (3, 5)))
    assert pruned.head.weight_orig is pruned.emb.weight_orig  # still one tensor, masked under both names
    assert back == mask and torch.equal(ours, theirs)

    model = seeded(SeqModel)
    mask = MagnitudePruner().prune(model, PruningMask(model, types=SEQ_TYPES), 0.6)
    back, ours, theirs, _ = round_trip(model, mask, torch.randint(0, 30, (2, 5)))
    assert back == mask
    # Attention reads a pruned in_proj_weight through a different kernel path: equal up to float rounding.
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_masks_made_by_torch_prune_read_back_under_canonical_names():
    model = seeded(TinyCNN)
    torch_prune.global_unstructured([(model.conv, "weight"), (model.fc, "weight")],
                                    pruning_method=torch_prune.L1Unstructured, amount=0.6)
    mask = PruningMask.from_torch_prune(model)
    assert mask.names == ["conv.weight", "fc.weight"]
    assert mask.num_pruned == round(0.6 * mask.num_total)
    assert torch.equal(mask["fc.weight"], model.fc.weight_mask.bool())
    mask.validate(seeded(TinyCNN))  # fits the unpruned architecture


def test_our_mask_on_a_torch_pruned_model_points_to_from_torch_prune():
    model = seeded(TinyCNN)
    mask = PruningMask(model)
    torch_prune.l1_unstructured(model.fc, "weight", amount=0.5)
    for act in (lambda: PruningMask(model), lambda: mask.apply(model)):
        with pytest.raises(LotteryTicketError, match="fc.weight is pruned by torch.nn.utils.prune.*from_torch_prune"):
            act()


def test_from_torch_prune_on_an_unpruned_model_is_a_one_line_error():
    with pytest.raises(LotteryTicketError, match="no torch.nn.utils.prune mask"):
        PruningMask.from_torch_prune(seeded(TinyCNN))
