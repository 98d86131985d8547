"""Plots a reader trusts (issue 27 item 5): series side by side, a dense baseline, what the bars are and the budget
in the title, and early-stop points that are the budget marked as such."""

import json

from lottery_ticket.cli import main
from lottery_ticket.experiment.report import SPREAD, offset, plot_title, stopped_at_budget


def test_series_sit_side_by_side_around_each_level():
    xs = [100.0, 51.2, 3.6]
    placed = [offset(xs, i, 3) for i in range(3)]
    assert placed[1] == xs  # the middle series at the level itself
    for level in range(3):
        positions = [p[level] for p in placed]
        assert positions[0] < positions[1] < positions[2]
        assert positions[2] / positions[0] == __import__("pytest").approx(SPREAD ** 2)


def test_an_early_stop_is_marked_only_where_every_seed_stopped_at_its_last_step():
    rows = [{"round": 0, "kind": "dense", "early_stop_iteration": 100, "iterations": 100},
            {"round": 1, "kind": "ticket", "early_stop_iteration": 100, "iterations": 100},
            {"round": 1, "kind": "ticket", "early_stop_iteration": 60, "iterations": 100},  # another seed
            {"round": 1, "kind": "random_reinit", "early_stop_iteration": 100, "iterations": 100},
            {"round": 2, "kind": "ticket", "early_stop_iteration": None, "iterations": 100}]
    assert stopped_at_budget(rows) == {(0, "ticket"), (1, "random_reinit")}


def test_the_title_says_what_the_bars_are_and_the_budget():
    assert plot_title("conv2 on cifar10", 3, "20000it") == "conv2 on cifar10\nmean ± std over 3 seeds, 20000it per training"
    assert plot_title("mine", 1, None) == "mine\nmean ± std over 1 seed"


def test_report_draws_the_plots_with_the_budget_markers(tmp_path):
    out = tmp_path / "run"
    assert main(["find", "--preset", "mnist1d-mlp", "--budget", "20it", "--eval-every", "10it", "--rounds", "1",
                 "--controls", "reinit", "--quiet", "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    for name in ("accuracy_vs_weights.png", "early_stop_vs_weights.png"):
        assert (out / "plots" / name).stat().st_size > 10_000
    record = json.loads((out / "seed_0" / "rounds" / "round_01.json").read_text())
    assert record["iterations"] == 20
