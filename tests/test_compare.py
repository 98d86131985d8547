"""`lottery-ticket compare`: one table, csv and plot across run folders, labelled by what differs between them."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from lottery_ticket.cli import main
from lottery_ticket.experiment.compare import ComparedRun, flatten, format_comparison, run_labels
from lottery_ticket.experiment.report import report
from lottery_ticket.experiment.runfolder import experiment_digest

TINY = ["--preset", "mnist1d-mlp", "--budget", "20it", "--eval-every", "20it", "--rounds", "2", "--seeds", "0,1",
        "--controls", "reinit", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three real run folders (built once): the preset, --lr 0.01, --pruner random; all on offline mnist1d."""
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:  # conftest's isolation is per test; this fixture runs before it
        mp.delenv("LOTTERY_TICKET_DATA", raising=False)
        mp.delenv("LOTTERY_TICKET_MIRROR", raising=False)
        for name, extra in (("base", []), ("lr", ["--lr", "0.01"]), ("random", ["--pruner", "random"])):
            assert main(["find", *TINY, *extra, "--out", str(root / name)]) == 0
    return {name: str(root / name) for name in ("base", "lr", "random")}


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def table_of(printed: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header and {weights remaining cell: the other cells} of a printed table (the header starts with it)."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("weights remaining"))
    header, body = cells(lines[start]), []
    for line in lines[start + 2:]:
        if not re.match(r"^\s*\d+\.\d%", line):
            break
        body.append(cells(line))
    return header, {row[0]: row[1:] for row in body}


def reported_column(run_dir: str, column: str) -> dict[str, str]:
    """{weights remaining: cell} of one column of `lottery-ticket report`'s table."""
    header, rows = table_of(report(run_dir, plots=False))
    return {level: row[header.index(column) - 1] for level, row in rows.items()}


def run_compare(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["compare", *map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# --- labels (pure) --------------------------------------------------------------------------------------------

def test_flatten_gives_dotted_keys_and_keeps_empty_dicts_as_leaves():
    assert flatten({"model": "conv2", "train": {"lr": 0.001, "milestones": []}, "prune": {"layer_rates": {}}}) == \
        {"model": "conv2", "train.lr": 0.001, "train.milestones": [], "prune.layer_rates": {}}


def test_labels_show_only_the_keys_that_differ():
    base = {"model": "conv2", "dataset": "cifar10", "train": {"lr": 0.001, "batch_size": 60}, "prune": {"pruner": "magnitude"}}
    lr = {**base, "train": {"lr": 0.003, "batch_size": 60}}
    rand = {**base, "prune": {"pruner": "random"}}
    conv4 = {**base, "model": "conv4"}
    assert run_labels([base, lr], ["a", "b"]) == ["train.lr=0.001", "train.lr=0.003"]
    assert run_labels([base, rand], ["a", "b"]) == ["prune.pruner=magnitude", "prune.pruner=random"]
    assert run_labels([base, conv4], ["a", "b"]) == ["model=conv2", "model=conv4"]
    assert run_labels([base, lr, rand], ["a", "b", "c"]) == [
        "prune.pruner=magnitude, train.lr=0.001", "prune.pruner=magnitude, train.lr=0.003",
        "prune.pruner=random, train.lr=0.001"]


def test_labels_fall_back_to_names_and_stay_unique():
    base = {"train": {"lr": 0.001}, "seeds": [0, 1]}
    assert run_labels([base, dict(base)], ["run_a", "run_b"]) == ["run_a", "run_b"]
    other = {"train": {"lr": 0.01}, "seeds": [0, 1]}
    assert run_labels([base, dict(base), other], ["x", "y", "z"]) == ["train.lr=0.001 (x)", "train.lr=0.001 (y)",
                                                                      "train.lr=0.01"]
    assert run_labels([base, {**base, "seeds": [0, 1, 2]}], ["x", "y"]) == ["seeds=0,1", "seeds=0,1,2"]
    assert run_labels([base, {**base, "early_bird": None}], ["x", "y"]) == ["early_bird=unset", "early_bird=none"]


def test_levels_match_to_a_tenth_of_a_percent_and_missing_ones_show_a_dash():
    acc = lambda mean: {"ticket": {"accuracy": {"mean": mean, "std": 0.01, "n": 2}}}
    a = ComparedRun("a", "A", "mnist1d", [0, 1], [{"round": 0, "weights_remaining_pct": 100.0, **acc(0.9)},
                                                  {"round": 1, "weights_remaining_pct": 80.66, **acc(0.91)}])
    b = ComparedRun("b", "B", "mnist1d", [0, 1], [{"round": 0, "weights_remaining_pct": 100.0, **acc(0.8)},
                                                  {"round": 1, "weights_remaining_pct": 80.74, **acc(0.82)},
                                                  {"round": 2, "weights_remaining_pct": 64.0, **acc(0.83)}])
    _, rows = table_of(format_comparison([a, b]))
    assert rows == {"100.0% (dense)": ["90.00 ± 1.00", "80.00 ± 1.00"], "80.7%": ["91.00 ± 1.00", "82.00 ± 1.00"],
                    "64.0%": ["-", "83.00 ± 1.00"]}


# --- the command on real run folders --------------------------------------------------------------------------

def test_compare_table_equals_each_runs_report_and_the_csv_round_trips(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    rc, printed, err = run_compare(capsys, runs["base"], runs["lr"], runs["random"], "--out", out)
    assert rc == 0, err
    header, rows = table_of(printed)
    assert header[1:] == ["prune.pruner=magnitude, train.lr=0.002", "prune.pruner=magnitude, train.lr=0.01",
                          "prune.pruner=random, train.lr=0.002"]
    assert list(rows) == ["100.0% (dense)", "80.7%", "65.1%"]
    for column, name in enumerate(("base", "lr", "random")):
        assert reported_column(runs[name], "test acc: ticket") == {level: row[column] for level, row in rows.items()}
        assert all("±" in row[column] for row in rows.values())  # two seeds: mean ± std
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / "compare.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert len(records) == 3 * 3 and {r["kind"] for r in records} == {"ticket"}
    for r in records:
        level = f"{round(float(r['weights_remaining_pct']), 1):.1f}%" + (" (dense)" if r["round"] == "0" else "")
        cell = f"{100 * float(r['accuracy_mean']):.2f} ± {100 * float(r['accuracy_std']):.2f}"
        assert rows[level][header[1:].index(r["label"])] == cell
    assert not list(out.glob(".*.tmp"))


def test_labels_name_exactly_the_differing_key(runs, tmp_path, capsys):
    rc, printed, _ = run_compare(capsys, runs["base"], runs["lr"], "--out", tmp_path)
    assert rc == 0 and table_of(printed)[0][1:] == ["train.lr=0.002", "train.lr=0.01"]
    rc, printed, _ = run_compare(capsys, runs["base"], runs["random"], "--out", tmp_path)
    assert rc == 0 and table_of(printed)[0][1:] == ["prune.pruner=magnitude", "prune.pruner=random"]
    twin = tmp_path / "base_again"
    shutil.copytree(runs["base"], twin)
    rc, printed, _ = run_compare(capsys, runs["base"], twin, "--out", tmp_path)
    assert rc == 0 and table_of(printed)[0][1:] == ["base", "base_again"]  # nothing differs: the folder names


def test_kind_compares_a_control(runs, tmp_path, capsys):
    rc, printed, err = run_compare(capsys, runs["base"], runs["lr"], "--kind", "random_reinit", "--out", tmp_path)
    assert rc == 0, err
    _, rows = table_of(printed)
    assert "random reinit" in printed and rows["100.0% (dense)"] == ["-", "-"]  # controls start after the dense level
    for column, name in enumerate(("base", "lr")):
        assert reported_column(runs[name], "random reinit") == {level: row[column] for level, row in rows.items()}


def _other_dataset(run_dir: str, to: Path) -> Path:
    """A copy of a run whose config says another dataset (its hash rewritten, as the runner would have written it)."""
    shutil.copytree(run_dir, to)
    stored = json.loads((to / "config.json").read_text())
    stored["experiment"]["dataset"] = "fashion-mnist"
    stored["experiment_sha256"] = experiment_digest(stored["experiment"])
    (to / "config.json").write_text(json.dumps(stored))
    return to


def test_bad_input_is_one_line(runs, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(Path(runs["base"]) / "config.json", unfinished / "config.json")
    other = _other_dataset(runs["lr"], tmp_path / "fashion")
    cases = [
        ((runs["base"], empty), f"{empty} is not a run folder"),
        ((runs["base"], unfinished), f"{unfinished} has no finished rounds yet"),
        ((runs["base"],), "compare needs at least 2 run folders, got 1"),
        ((runs["base"], runs["base"]), "is given twice"),
        ((runs["base"], other), "the runs use different datasets: fashion-mnist"),
        ((runs["base"], runs["lr"], "--kind", "random_pruning"), "no random_pruning results in"),
    ]
    for args, message in cases:
        rc, printed, err = run_compare(capsys, *args, "--out", tmp_path / "never")
        assert rc == 2 and err.startswith("lottery-ticket: error: ") and message in err, (args, err)
        assert err.strip().count("\n") == 0, err
    rc, _, err = run_compare(capsys, runs["base"], other, "--out", tmp_path / "never")
    assert "mnist1d" in err and "accuracies on different test sets do not compare" in err
    assert not (tmp_path / "never").exists()


def test_kind_choices_name_every_record_kind_a_run_can_hold():
    from lottery_ticket.cli import build_parser
    from lottery_ticket.experiment.runfolder import CONTROL_RECORDS

    compare_parser = build_parser()._subparsers._group_actions[0].choices["compare"]
    kind = next(a for a in compare_parser._actions if a.dest == "kind")
    assert tuple(kind.choices) == ("ticket", *CONTROL_RECORDS)
