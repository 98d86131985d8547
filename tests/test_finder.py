"""IMP end to end: reset to θ₀, rewinding, the sparsity schedule, controls and experiment files."""

import math

import pytest
import torch
from torch import nn

from conftest import TinyMLP
from lottery_ticket import (
    LotteryTicketError,
    LotteryTicketFinder,
    MagnitudePruner,
    MaskEnforcer,
    load_experiment,
    per_round_rate,
    sparsity_after_round,
)
from lottery_ticket.mask import named_parameters


def make_fns(x, y, steps=30, record=None):
    def train_fn(model, mask, on_step=None, start_iteration=0):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        enforcer = MaskEnforcer(mask, model)
        if record is not None:
            record.append({n: p.detach().clone() for n, p in named_parameters(model).items()})
        for it in range(start_iteration + 1, steps + 1):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            enforcer.step(optimizer)
            if on_step:
                on_step(it, model)
        return {"iterations": steps}

    def eval_fn(model):
        with torch.no_grad():
            return (model(x).argmax(1) == y).float().mean().item()

    return train_fn, eval_fn


def test_survivors_equal_theta0_at_the_start_of_every_round(toy_data):
    starts = []
    train_fn, eval_fn = make_fns(*toy_data, record=starts)
    finder = LotteryTicketFinder(TinyMLP, {}, "cpu", seed=0)
    _, _, results = finder.find_winning_ticket(None, train_fn, eval_fn, 0.9, 3, verbose=False)
    theta0 = finder.initial_state
    assert len(starts) == 4
    for r, weights in enumerate(starts):
        mask = finder.masks[r]
        for n in mask:
            assert torch.equal(weights[n][mask[n]], theta0[n][mask[n]]), f"round {r} {n}"
            assert torch.all(weights[n][~mask[n]] == 0)
        assert torch.equal(weights["fc1.bias"], theta0["fc1.bias"])


def test_rewinding_resets_survivors_to_their_values_after_k_steps(toy_data):
    starts = []
    train_fn, eval_fn = make_fns(*toy_data, record=starts)
    finder = LotteryTicketFinder(TinyMLP, {}, "cpu", rewind_iteration=5)
    finder.find_winning_ticket(None, train_fn, eval_fn, 0.5, 2, verbose=False)
    rewind = finder.rewind_state
    assert not torch.equal(rewind["fc1.weight"], finder.initial_state["fc1.weight"])
    for r in (1, 2):
        m = finder.masks[r]["fc1.weight"]
        assert torch.equal(starts[r]["fc1.weight"][m], rewind["fc1.weight"][m])


def test_rewinding_needs_a_train_fn_that_reports_steps(toy_data):
    def train_fn(model, mask):
        return None

    finder = LotteryTicketFinder(TinyMLP, {}, rewind_iteration=5)
    with pytest.raises(LotteryTicketError, match="on_step"):
        finder.find_winning_ticket(None, train_fn, lambda m: 0.0, 0.5, 1, verbose=False)


@pytest.mark.parametrize("rounds,target", [(1, 0.5), (3, 0.9), (5, 0.8), (7, 0.964)])
def test_sparsity_after_n_rounds_matches_the_formula_within_one_weight_per_layer(toy_data, rounds, target):
    train_fn, eval_fn = make_fns(*toy_data, steps=2)
    finder = LotteryTicketFinder(TinyMLP, {}, pruner=MagnitudePruner(global_pruning=False))
    _, mask, results = finder.find_winning_ticket(None, train_fn, eval_fn, target, rounds, verbose=False)
    rate = per_round_rate(target, rounds)
    for r, row in enumerate(results["rounds"]):
        expected = 1 - (1 - rate) ** r
        for name, s in row["layer_sparsities"].items():
            numel = finder.masks[r][name].numel()
            assert abs(s * numel - expected * numel) <= 1, (r, name)
    assert math.isclose(sparsity_after_round(target, rounds, rounds), target)


def test_masks_only_shrink_across_rounds(toy_data):
    train_fn, eval_fn = make_fns(*toy_data, steps=5)
    finder = LotteryTicketFinder(TinyMLP, {})
    finder.find_winning_ticket(None, train_fn, eval_fn, 0.95, 4, verbose=False)
    for earlier, later in zip(finder.masks, finder.masks[1:]):
        for n in earlier:
            assert not (later[n] & ~earlier[n]).any()


def test_one_shot_prunes_every_level_from_the_dense_weights(toy_data):
    train_fn, eval_fn = make_fns(*toy_data, steps=5)
    finder = LotteryTicketFinder(TinyMLP, {}, one_shot=True)
    finder.find_winning_ticket(None, train_fn, eval_fn, 0.9, 3, verbose=False)
    assert [round(m.sparsity, 2) for m in finder.masks] == [0.0, 0.54, 0.78, 0.9]


def test_same_seed_gives_identical_masks_and_metrics(toy_data):
    runs = []
    for _ in range(2):
        train_fn, eval_fn = make_fns(*toy_data)
        finder = LotteryTicketFinder(TinyMLP, {}, seed=7)
        _, mask, results = finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 2, verbose=False)
        runs.append((mask, [r["accuracy"] for r in results["rounds"]]))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]


def test_controls_use_the_tickets_counts_with_a_new_init_or_a_new_mask(toy_data):
    train_fn, eval_fn = make_fns(*toy_data)
    finder = LotteryTicketFinder(TinyMLP, {}, seed=0)
    _, mask, _ = finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 2, verbose=False)
    reinit = finder.verify_random_ticket(train_fn, eval_fn)
    random_pruning = finder.random_pruning_control(train_fn, eval_fn)
    assert reinit["init_seed"] == 10_000 and reinit["sparsity"] == mask.sparsity
    assert random_pruning["sparsity"] == mask.sparsity
    assert set(finder.results["controls"]) == {"random_reinit", "random_pruning"}


def test_a_train_fn_that_ignores_the_mask_is_caught(toy_data):
    x, y = toy_data

    def careless(model, mask):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    finder = LotteryTicketFinder(TinyMLP, {})
    with pytest.raises(LotteryTicketError, match="left pruned weights non-zero"):
        finder.find_winning_ticket(None, careless, lambda m: 0.0, 0.5, 1, verbose=False)


def test_a_train_fn_without_a_mask_argument_is_masked_by_step_hooks(toy_data):
    x, y = toy_data

    def plain(model):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(10):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    finder = LotteryTicketFinder(TinyMLP, {})
    model, mask, _ = finder.find_winning_ticket(None, plain, lambda m: 0.5, 0.7, 2, verbose=False)
    assert mask.is_applied(model)


def test_save_and_load_experiment_round_trip_bit_identically(tmp_path, toy_data):
    train_fn, eval_fn = make_fns(*toy_data)
    finder = LotteryTicketFinder(TinyMLP, {}, rewind_iteration=3)
    _, mask, results = finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 2, verbose=False)
    finder.verify_random_ticket(train_fn, eval_fn)
    finder.save_experiment(tmp_path / "exp")
    loaded, restored = load_experiment(tmp_path / "exp")
    assert loaded["rounds"] == results["rounds"] and loaded["controls"] == finder.results["controls"]
    assert restored.masks == finder.masks
    for k, v in finder.initial_state.items():
        assert torch.equal(restored.initial_state[k], v)
    assert torch.equal(restored.rewind_state["fc1.weight"], finder.rewind_state["fc1.weight"])
    assert not list((tmp_path / "exp").rglob("*.tmp"))


def test_imp_on_mnist1d_reaches_its_target_sparsity_and_keeps_accuracy():
    """A short real run: MNIST-1D (generated offline), an MLP, 4 rounds to 80 % sparsity."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 2000
    data = make_dataset(args)
    x = torch.tensor(data["x"], dtype=torch.float32)
    y = torch.tensor(data["y"], dtype=torch.int64)
    xt = torch.tensor(data["x_test"], dtype=torch.float32)
    yt = torch.tensor(data["y_test"], dtype=torch.int64)
    mean, std = x.mean(), x.std()
    x, xt = (x - mean) / std, (xt - mean) / std

    def train_fn(model, mask):
        g = torch.Generator().manual_seed(0)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        enforcer = MaskEnforcer(mask, model)
        for _ in range(600):
            idx = torch.randint(0, len(x), (100,), generator=g)
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            enforcer.step(optimizer)

    def eval_fn(model):
        with torch.no_grad():
            return (model(xt).argmax(1) == yt).float().mean().item()

    finder = LotteryTicketFinder(TinyMLP, {"inputs": 40, "hidden": 100, "classes": 10})
    model, mask, results = finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 4, verbose=False)
    assert abs(mask.sparsity - 0.8) < 1 / mask.num_total
    dense, ticket = results["rounds"][0]["accuracy"], results["rounds"][-1]["accuracy"]
    assert dense > 0.4  # 10 classes: chance is 0.1
    assert ticket > dense - 0.1


def test_an_eval_fn_dict_without_accuracy_is_one_clear_error(toy_data):
    train_fn, _ = make_fns(*toy_data, steps=2)
    finder = LotteryTicketFinder(TinyMLP, {})
    with pytest.raises(LotteryTicketError, match="eval_fn returned a dict without 'accuracy'"):
        finder.find_winning_ticket(None, train_fn, lambda m: {"loss": 1.0}, 0.5, 1, verbose=False)


def test_a_rewind_iteration_past_the_training_is_one_clear_error(toy_data):
    train_fn, eval_fn = make_fns(*toy_data, steps=5)
    finder = LotteryTicketFinder(TinyMLP, {}, rewind_iteration=9)
    with pytest.raises(LotteryTicketError, match="training ended before rewind_iteration=9"):
        finder.find_winning_ticket(None, train_fn, eval_fn, 0.5, 1, verbose=False)


def test_controls_run_at_every_level_as_find_runs_them(toy_data):
    train_fn, eval_fn = make_fns(*toy_data)
    finder = LotteryTicketFinder(TinyMLP, {}, seed=0, controls=("reinit", "random-prune"))
    _, _, results = finder.find_winning_ticket(None, train_fn, eval_fn, 0.8, 3, verbose=False)
    for record in ("random_reinit", "random_pruning"):
        rows = results["control_rounds"][record]
        assert [r["round"] for r in rows] == [1, 2, 3]
        for level, row in enumerate(rows, start=1):  # each level's control has that level's ticket sparsity
            assert row["sparsity"] == finder.masks[level].sparsity and row["kind"] == record
        assert results["controls"][record] == rows[-1]
    assert [r["init_seed"] for r in results["control_rounds"]["random_reinit"]] == [10_000] * 3  # as verify_random_ticket
    # the same rows as running each control afterwards on that level's mask would give
    alone = LotteryTicketFinder(TinyMLP, {}, seed=0)
    alone.find_winning_ticket(None, train_fn, eval_fn, 0.8, 3, verbose=False)
    again = alone.verify_random_ticket(train_fn, eval_fn)
    assert again["accuracy"] == results["controls"]["random_reinit"]["accuracy"]


def test_unknown_controls_are_one_line():
    with pytest.raises(LotteryTicketError, match="unknown control"):
        LotteryTicketFinder(TinyMLP, {}, controls=("reinitialise",))
    with pytest.raises(LotteryTicketError, match="is a string"):
        LotteryTicketFinder(TinyMLP, {}, controls="reinit")


def test_a_per_level_rate_prunes_that_share_of_the_survivors_each_round(toy_data):
    train_fn, eval_fn = make_fns(*toy_data)
    finder = LotteryTicketFinder(TinyMLP, {}, seed=0, pruner=MagnitudePruner(global_pruning=False))
    _, _, results = finder.find_winning_ticket(None, train_fn, eval_fn, pruning_rounds=3, verbose=False, rate=0.5)
    for level in range(1, 4):
        for name, fraction in finder.masks[level].layer_sparsities.items():
            assert abs(fraction - (1 - 0.5 ** level)) < 0.02, (level, name)
    assert results["config"]["rate"] == 0.5 and results["config"]["target_sparsity"] == 1 - 0.5 ** 3
    with pytest.raises(LotteryTicketError, match="pass target_sparsity or rate, not both"):
        finder.find_winning_ticket(None, train_fn, eval_fn, 0.9, 3, verbose=False, rate=0.2)


def test_save_experiment_writes_a_run_folder_that_report_and_compare_read(tmp_path, toy_data, capsys):
    from lottery_ticket.cli import main

    train_fn, eval_fn = make_fns(*toy_data)
    folders = []
    for rate in (0.5, 0.7):
        finder = LotteryTicketFinder(TinyMLP, {}, seed=0, controls=("reinit",))
        _, _, results = finder.find_winning_ticket(None, train_fn, eval_fn, pruning_rounds=2, verbose=False, rate=rate)
        folders.append(finder.save_experiment(tmp_path / f"rate{rate}", dataset="toy"))
    capsys.readouterr()
    assert main(["report", str(folders[0]), "--no-plots"]) == 0
    table = capsys.readouterr().out
    assert "conftest.TinyMLP on toy (1 seed)" in table
    last = results["rounds"][-1]  # of the second folder: its table's last ticket cell
    assert main(["report", str(folders[1]), "--no-plots"]) == 0
    final_row = [line for line in capsys.readouterr().out.splitlines() if line.strip()][-1]
    assert f"{100 * last['accuracy']:.2f}" in final_row
    reinit = results["control_rounds"]["random_reinit"][-1]["accuracy"]
    assert f"{100 * reinit:.2f}" in final_row
    assert main(["compare", *map(str, folders), "--out", str(tmp_path / "cmp")]) == 0
    assert "settings.rate=0.5" in capsys.readouterr().out
    assert main(["resume", str(folders[0])]) == 2
    assert "saved from Python" in capsys.readouterr().err
    # and load_experiment still reads it, bit-identically
    loaded, again = load_experiment(folders[1])
    assert loaded["rounds"][-1]["accuracy"] == last["accuracy"]
    assert all(torch.equal(again.masks[-1][n], finder.masks[-1][n]) for n in finder.masks[-1])
