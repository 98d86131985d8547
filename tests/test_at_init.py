"""Pruning at initialization (SNIP, GraSP, SynFlow, magnitude-init) and the layerwise-shuffle ablation: each score
against a case computed by hand, exact counts, nothing revived, exclusions, θ₀ through the engine, the controls,
and the CLI end to end on MNIST-1D."""

import json
import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import TinyCNN, TinyMLP
from lottery_ticket import LotteryTicketFinder, PruningMask
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.experiment.runfolder import CONTROL_RECORDS
from lottery_ticket.imp import IMP, EarlyBirdSpec, MemoryStore
from lottery_ticket.imp.controls import CONTROLS
from lottery_ticket.pruning import (GraspPruner, MagnitudeInitPruner, MagnitudePruner, RandomPruner, ScoringData,
                                    SnipPruner, SynFlowPruner, shuffle_layerwise)
from lottery_ticket.pruning.at_init import (grasp_scores, lowest_scores, magnitude_scores, snip_scores,
                                            synflow_scores)
from lottery_ticket.pruning.registry import PRUNERS
from lottery_ticket.pruning.schedule import Schedule
from lottery_ticket.sparsity import count_pruned

W = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
X = torch.tensor([[1.0, 2.0]])


def half_squared_error(out, target):
    return 0.5 * ((out - target) ** 2).sum(dim=1).mean()


def linear_2x2() -> nn.Linear:
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(W)
    return layer


def toy_batches(n=2, size=16, inputs=20, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, inputs, generator=g), torch.randint(0, classes, (size,), generator=g)) for _ in range(n)]


def all_pruners(data=None):
    data = data or ScoringData(batches=toy_batches(), input_shape=(20,))
    return [SnipPruner(data=data), GraspPruner(data=data), SynFlowPruner(data=data, iterations=10),
            MagnitudeInitPruner()]


# ---- each score against a hand-computed case ------------------------------------------------------------------------
def test_snip_is_abs_gradient_times_weight_on_a_hand_computed_linear_layer():
    # L = 1/2 |Wx - t|^2 with t = 0: r = Wx = (-3, 4), g = r xᵀ = [[-3, -6], [4, 8]], |g ⊙ W| = [[3, 12], [12, 4]]
    scores = snip_scores(linear_2x2(), [(X, torch.zeros(1, 2))], half_squared_error)
    assert torch.allclose(scores["weight"], torch.tensor([[3.0, 12.0], [12.0, 4.0]]))


def test_snip_averages_the_gradient_over_batches_and_matches_softmax_cross_entropy_in_closed_form():
    # Cross-entropy of logits Wx: dL/dW = (softmax(Wx) - onehot(y)) xᵀ, averaged over the two one-example batches.
    x1, x2 = torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, 0.5]])
    y1, y2 = torch.tensor([0]), torch.tensor([1])
    g = sum((torch.softmax(W @ x[0], 0) - F.one_hot(y, 2)[0].float())[:, None] * x[0][None, :]
            for x, y in ((x1, y1), (x2, y2))) / 2
    scores = snip_scores(linear_2x2(), [(x1, y1), (x2, y2)])
    assert torch.allclose(scores["weight"], (g * W).abs())


def test_grasp_is_minus_weight_times_hessian_gradient_on_a_quadratic_loss():
    # L = 1/2 |Wx - t|^2: H = I ⊗ x xᵀ, so H g = |x|^2 g = 5 g, and S = -W ⊙ Hg = -5 W ⊙ g = [[15, -60], [-60, -20]]
    scores = grasp_scores(linear_2x2(), [(X, torch.zeros(1, 2))], half_squared_error)
    assert torch.allclose(scores["weight"], torch.tensor([[15.0, -60.0], [-60.0, -20.0]]))


def test_grasp_prunes_the_highest_scores_and_keeps_the_lowest():
    data = ScoringData(batches=[(X, torch.zeros(1, 2))], loss_fn=half_squared_error)
    layer = linear_2x2()
    one = GraspPruner(data=data, min_density=None).prune(layer, PruningMask(layer, include=["weight"]), 0.25)
    assert one["weight"].tolist() == [[False, True], [True, True]]  # S = 15, the highest, goes first
    two = GraspPruner(data=data, min_density=None).prune(layer, PruningMask(layer, include=["weight"]), 0.5)
    assert two["weight"].tolist() == [[False, True], [True, False]]  # then -20; -60 and -60 are kept


def test_grasp_hessian_gradient_product_matches_the_full_hessian_of_a_nonlinear_net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    batches = [(torch.randn(5, 3), torch.randint(0, 2, (5,))) for _ in range(2)]
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(flat):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = flat[i:i + s.numel()].view(s)
            i += s.numel()
        return sum(F.cross_entropy(torch.func.functional_call(model, params, (x,)), y) for x, y in batches) / len(batches)

    g = torch.func.grad(loss_of)(flat0)
    hg = torch.autograd.functional.hessian(loss_of, flat0) @ g
    expected = -flat0 * hg
    scores = grasp_scores(model, batches)
    got = torch.cat([scores[n].reshape(-1) for n in names])
    assert torch.allclose(got, expected, atol=1e-6, rtol=1e-4)


def two_layer_linear() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(W)
        net[2].weight.copy_(torch.tensor([[-1.0, 2.0]]))
    return net


def test_synflow_is_the_path_product_on_a_two_layer_net_and_leaves_the_signed_weights_alone():
    # R = 1ᵀ|W2||W1|1. dR/d|W1|_jk = Σ_i |W2|_ij: scores [[1·1, 2·1], [3·2, 0.5·2]];
    # dR/d|W2|_ij = Σ_k |W1|_jk = (3, 3.5): scores [[1·3, 2·3.5]]. Each layer's scores sum to R = 10 (conservation).
    net = two_layer_linear()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scores = synflow_scores(net, (2,))
    assert torch.allclose(scores["0.weight"], torch.tensor([[1.0, 2.0], [6.0, 1.0]], dtype=torch.float64))
    assert torch.allclose(scores["2.weight"], torch.tensor([[3.0, 7.0]], dtype=torch.float64))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training  # the caller's model keeps its mode: scoring happens on an eval-mode copy


def test_synflow_scores_the_masked_network():
    # W1[1, 0] pruned: |W1|'s row sums become (3, 0.5), so W2's scores are [[1·3, 2·0.5]].
    net = two_layer_linear()
    mask = PruningMask(net)
    mask.masks["0.weight"][1, 0] = False
    scores = synflow_scores(net, (2,), mask)
    assert torch.allclose(scores["2.weight"], torch.tensor([[3.0, 1.0]], dtype=torch.float64))
    assert scores["0.weight"][1, 0] == 0


def test_synflow_puts_batchnorm_in_eval_mode_and_does_not_touch_its_statistics():
    model = TinyCNN()
    stats = (model.bn.running_mean.clone(), model.bn.running_var.clone(), int(model.bn.num_batches_tracked))
    scores = synflow_scores(model, (1, 8, 8), PruningMask(model))
    assert set(scores) == {"conv.weight", "fc.weight"} and all(bool((s >= 0).all()) for s in scores.values())
    assert torch.equal(model.bn.running_mean, stats[0]) and torch.equal(model.bn.running_var, stats[1])
    assert int(model.bn.num_batches_tracked) == stats[2]


def test_magnitude_init_scores_are_the_weights_magnitudes_and_rank_like_global_magnitude_pruning(tiny_mlp):
    assert torch.equal(magnitude_scores(linear_2x2())["weight"], W.abs())
    mask = PruningMask(tiny_mlp)
    for target in (0.3, 0.9):
        assert MagnitudeInitPruner().prune(tiny_mlp, mask, target) == MagnitudePruner(global_pruning=True).prune(
            tiny_mlp, mask, target)


def test_synflow_iterates_on_an_exponential_schedule_toward_the_target(tiny_mlp):
    densities = []

    class Recording(SynFlowPruner):
        def scores(self, model, mask):
            pruned, total = count_pruned(mask, self.eligible(mask))
            densities.append(1 - pruned / total)
            return super().scores(model, mask)

    mask = Recording(input_shape=(20,), iterations=5).prune(tiny_mlp, PruningMask(tiny_mlp), 0.9)
    assert len(densities) == 5 and densities[0] == 1.0
    for k, d in enumerate(densities):  # before scoring round k+1 the density is 0.1 ** (k / 5), to one weight
        assert abs(d - 0.1 ** (k / 5)) <= 1 / mask.num_total + 1e-12
    assert count_pruned(mask)[0] == round(0.9 * mask.num_total)


# ---- ranking: exact counts, nothing revived, exclusions, ties, determinism -----------------------------------------
@pytest.mark.parametrize("target", [0.5, 0.9, 0.97])
def test_every_method_prunes_exactly_round_target_times_the_eligible_weights(tiny_mlp, target):
    mask = PruningMask(tiny_mlp)
    for pruner in all_pruners():
        new = pruner.prune(tiny_mlp, mask, target)
        assert count_pruned(new)[0] == round(target * mask.num_total), pruner.name


def test_no_method_revives_a_pruned_weight(tiny_mlp):
    start = RandomPruner(seed=3).prune(tiny_mlp, PruningMask(tiny_mlp), 0.5)
    for pruner in all_pruners():
        # to 80 %, and one IMP level of half the survivors (50 % + 25 % = 75 %)
        for new, target in ((pruner.prune(tiny_mlp, start, 0.8), 0.8), (pruner.prune_fraction(tiny_mlp, start, 0.5), 0.75)):
            assert all(bool((new[n] <= start[n]).all()) for n in start.names), pruner.name
            assert count_pruned(new)[0] == round(target * start.num_total), pruner.name


def test_excluded_layers_stay_dense_and_the_target_counts_the_eligible_weights_only(tiny_mlp):
    mask = PruningMask(tiny_mlp)
    data = ScoringData(batches=toy_batches(), input_shape=(20,))
    for cls in (SnipPruner, GraspPruner, SynFlowPruner, MagnitudeInitPruner):
        pruner = cls(exclude=("fc2.*",), data=data)
        new = pruner.prune(tiny_mlp, mask, 0.75)
        assert bool(new["fc2.weight"].all()), cls.name
        assert count_pruned(new, ["fc1.weight"])[0] == round(0.75 * mask["fc1.weight"].numel())


def test_equal_scores_are_broken_by_layer_order_then_flat_index_first_pruned():
    keep = [torch.ones(2, 2, dtype=torch.bool), torch.ones(3, dtype=torch.bool)]
    keys = [torch.ones(2, 2), torch.tensor([1.0, 0.5, 1.0])]
    new = lowest_scores(keys, keep, 3)
    assert new[1].tolist() == [True, False, True]  # the lowest key first
    assert new[0].tolist() == [[False, False], [True, True]]  # then the first of the ties


def test_the_same_data_gives_the_same_mask(tiny_mlp):
    mask = PruningMask(tiny_mlp)
    for first, second in zip(all_pruners(), all_pruners()):
        assert first.prune(tiny_mlp, mask, 0.8) == second.prune(tiny_mlp, mask, 0.8), first.name


def test_scoring_leaves_the_callers_model_and_mask_unchanged(tiny_mlp):
    state = {k: v.clone() for k, v in tiny_mlp.state_dict().items()}
    mask = RandomPruner(seed=1).prune(tiny_mlp, PruningMask(tiny_mlp), 0.3)
    copy = mask.copy()
    for pruner in all_pruners():
        pruner.prune(tiny_mlp, mask, 0.6)
    assert mask == copy and all(torch.equal(state[k], v) for k, v in tiny_mlp.state_dict().items())


def test_per_layer_rates_and_targets_are_refused_in_one_line(tiny_mlp):
    with pytest.raises(LotteryTicketError, match="ranks all eligible layers together"):
        MagnitudeInitPruner().prune(tiny_mlp, PruningMask(tiny_mlp), {"fc1.weight": 0.5})
    from lottery_ticket.config import PruneConfig

    with pytest.raises(LotteryTicketError, match="takes no per-layer rates"):
        PRUNERS["snip"](PruneConfig(pruner="snip", layer_rates={"fc1.weight": 0.1}), 0)


# ---- the layerwise-shuffle ablation --------------------------------------------------------------------------------
def test_shuffle_layerwise_keeps_each_layers_count_moves_the_survivors_and_is_seeded(tiny_mlp):
    mask = MagnitudePruner(global_pruning=False).prune(tiny_mlp, PruningMask(tiny_mlp), 0.8)
    shuffled = shuffle_layerwise(mask, seed=30_001)
    assert shuffled.layer_sparsities == mask.layer_sparsities
    assert all(not torch.equal(shuffled[n], mask[n]) for n in mask.names)
    assert shuffle_layerwise(mask, seed=30_001) == shuffled
    assert shuffle_layerwise(mask, seed=30_002) != shuffled


# ---- controls and registries ---------------------------------------------------------------------------------------
def test_registries_name_the_methods_and_the_run_folder_knows_every_controls_record():
    assert {"snip", "grasp", "synflow", "magnitude-init"} <= set(PRUNERS)
    assert {"snip", "grasp", "synflow", "magnitude-init", "shuffle-layerwise"} <= set(CONTROLS)
    assert CONTROL_RECORDS == tuple(c.record for c in CONTROLS.values())
    assert CONTROLS["shuffle-layerwise"].record == "shuffle_layerwise"
    assert CONTROLS["magnitude-init"].record == "magnitude_init"
    # Existing seeds unchanged; the shuffle's own stream never meets them for any level below 10,000.
    assert CONTROLS["reinit"].seed_for(7, 3) == 10_007 and CONTROLS["random-prune"].seed_for(7, 3) == 20_010
    assert CONTROLS["shuffle-layerwise"].seed_for(7, 3) == 30_010
    stage_ids = [c.stage_id for c in CONTROLS.values()]
    assert len(set(stage_ids)) == len(stage_ids)


# ---- the engine: θ₀, data, refusals --------------------------------------------------------------------------------
def make_fns(x, y, steps=20):
    def train_fn(model, mask):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            mask.apply(model)

    def eval_fn(model):
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())

    return train_fn, eval_fn


def test_an_at_init_pruner_in_imp_scores_theta0_not_the_trained_weights(toy_data):
    train_fn, eval_fn = make_fns(*toy_data)
    finder = LotteryTicketFinder(TinyMLP, {}, seed=0, pruner=MagnitudeInitPruner(), one_shot=True)
    finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 1, verbose=False)
    theta0 = finder.build_model(0)
    assert finder.masks[1] == MagnitudeInitPruner().prune(theta0, PruningMask(theta0), 0.8)
    trained = finder.build_model(0)
    train_fn(trained, PruningMask(trained))
    assert finder.masks[1] != MagnitudeInitPruner().prune(trained, PruningMask(trained), 0.8)


def test_data_reading_pruners_need_data_and_say_how_to_give_it(toy_data):
    train_fn, eval_fn = make_fns(*toy_data)
    finder = LotteryTicketFinder(TinyMLP, {}, pruner=SnipPruner(), one_shot=True)
    with pytest.raises(LotteryTicketError, match=r"pruner.attach\(ScoringData"):
        finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 1, verbose=False)
    x, y = toy_data
    finder = LotteryTicketFinder(TinyMLP, {}, pruner=SnipPruner().attach(ScoringData(batches=[(x, y)])), one_shot=True)
    _, mask, _ = finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 1, verbose=False)
    theta0 = finder.build_model(0)
    assert mask == SnipPruner(data=ScoringData(batches=[(x, y)])).prune(theta0, PruningMask(theta0), 0.8)


def test_rewinding_and_early_bird_with_an_at_init_pruner_are_refused():
    with pytest.raises(LotteryTicketError, match="rewind_iteration=0"):
        IMP(trainable=None, store=MemoryStore(), pruner=MagnitudeInitPruner(), schedule=Schedule(1, rate=0.2), seed=0,
            rewind_iteration=5)
    with pytest.raises(LotteryTicketError, match="drop early_bird"):
        IMP(trainable=None, store=MemoryStore(), pruner=SnipPruner(), schedule=Schedule(1, rate=0.2), seed=0,
            early_bird=EarlyBirdSpec(0.1, 10))


# ---- the CLI end to end on MNIST-1D --------------------------------------------------------------------------------
TINY = ["--preset", "mnist1d-mlp", "--budget", "20it", "--eval-every", "20it", "--quiet"]


def test_cli_runs_at_init_baselines_and_the_shuffle_as_controls_at_the_tickets_weights_remaining(tmp_path, capsys):
    from lottery_ticket.cli import main

    out = tmp_path / "run"
    controls = "snip,grasp,synflow,magnitude-init,shuffle-layerwise"
    assert main(["find", *TINY, "--rounds", "2", "--controls", controls, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SNIP" in printed and "SynFlow" in printed and "layerwise shuffle" in printed and "random reinit" in printed
    seed = out / "seed_0"
    for level in (1, 2):
        ticket = json.loads((seed / "rounds" / f"round_{level:02d}.json").read_text())
        for record in ("snip", "grasp", "synflow", "magnitude_init", "shuffle_layerwise"):
            row = json.loads((seed / "controls" / f"{record}_round_{level:02d}.json").read_text())
            assert row["kind"] == record and math.isfinite(row["accuracy"])
            assert row["num_remaining"] == ticket["num_remaining"], record  # equal weights remaining
        shuffle = json.loads((seed / "controls" / f"shuffle_layerwise_round_{level:02d}.json").read_text())
        assert shuffle["layer_sparsities"] == ticket["layer_sparsities"]
        assert shuffle["mask_seed"] == 30_000 + level
    metrics = (out / "metrics.csv").read_text()
    assert metrics.count("\n") == 1 + 3 + 5 * 2
    assert "snip" in json.loads((out / "summary.json").read_text())["levels"][1]


def test_cli_one_shot_synflow_ticket_has_the_target_sparsity_and_bad_combinations_are_refused(tmp_path, capsys):
    from lottery_ticket.cli import main

    out = tmp_path / "synflow"
    assert main(["find", *TINY, "--pruner", "synflow", "--one-shot", "--target-sparsity", "0.8", "--rounds", "1",
                 "--out", str(out)]) == 0
    mask = PruningMask.load(out / "seed_0" / "masks" / "round_01.safetensors")
    assert mask.num_pruned == round(0.8 * mask.num_total)
    assert json.loads((out / "config.json").read_text())["experiment"]["prune"]["pruner"] == "synflow"
    capsys.readouterr()
    refused = tmp_path / "refused"
    assert main(["find", *TINY, "--pruner", "snip", "--one-shot", "--target-sparsity", "0.8", "--rounds", "1",
                 "--rewind-iteration", "5", "--out", str(refused)]) == 2
    assert "rewind_iteration=0" in capsys.readouterr().err
    assert main(["find", *TINY, "--pruner", "snip", "--rounds", "1", "--out", str(refused)]) == 2  # preset's rates
    assert "takes no per-layer rates" in capsys.readouterr().err
    assert not refused.exists()  # refused before anything is written
