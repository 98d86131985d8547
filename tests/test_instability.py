"""Instability analysis (Frankle et al. 2020, arXiv 1912.05671): the pure helpers, the step-k start, the copies,
the command end to end on a tiny MNIST-1D run folder, its resume, and its one-line refusals."""

import csv
import dataclasses
import json
import shutil

import pytest
import torch

from lottery_ticket.cli import main
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.experiment.instability import (
    COPIES,
    InstabilityAnalysis,
    alphas,
    error_barrier,
    interpolate_state,
)
from lottery_ticket.state import load_state

BUDGET = 30  # steps per level of the tiny run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny run: dense level + one IMP level, rewinding to step 10 (so rewind.safetensors holds the
    run's own weights after 10 steps of dense training), then `instability --rewind-steps 0,10 --points 3`."""
    out = tmp_path_factory.mktemp("instability") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LOTTERY_TICKET_DATA", raising=False)
        mp.delenv("LOTTERY_TICKET_MIRROR", raising=False)
        assert main(["find", "--preset", "mnist1d-mlp", "--budget", f"{BUDGET}it", "--eval-every", f"{BUDGET}it",
                     "--rounds", "1", "--rewind-iteration", "10", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
        assert main(["instability", str(out), "--rewind-steps", "0,10", "--points", "3", "--device", "cpu",
                     "--quiet"]) == 0
    return out


def states_equal(a, b) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


# ---- error_barrier -------------------------------------------------------------------------------------------
def test_error_barrier_of_a_flat_path_is_zero():
    assert error_barrier([0.1, 0.1, 0.1, 0.1]) == 0.0


def test_error_barrier_of_a_bump_is_its_height_above_the_endpoints_mean():
    assert error_barrier([0.10, 0.30, 0.50, 0.30, 0.10]) == pytest.approx(0.40)
    assert error_barrier([0.10, 0.45, 0.20]) == pytest.approx(0.45 - 0.15)


def test_error_barrier_of_a_dip_is_never_negative():
    # The paper's sup runs over the endpoints too: a dip between equal endpoints is 0, not negative...
    assert error_barrier([0.2, 0.1, 0.05, 0.1, 0.2]) == 0.0
    # ...and between unequal endpoints it is half their difference.
    assert error_barrier([0.3, 0.1, 0.2]) == pytest.approx(0.05)


def test_error_barrier_needs_both_endpoints():
    with pytest.raises(LotteryTicketError):
        error_barrier([0.1])


def test_alphas_are_evenly_spaced_with_exact_ends():
    assert alphas(3) == [0.0, 0.5, 1.0]
    assert alphas(11)[0] == 0.0 and alphas(11)[-1] == 1.0 and len(alphas(11)) == 11
    with pytest.raises(LotteryTicketError, match="--points"):
        alphas(1)


# ---- interpolate_state ---------------------------------------------------------------------------------------
def test_interpolate_state_endpoints_are_the_inputs_and_midpoint_the_average():
    g = torch.Generator().manual_seed(0)
    a = {"w": torch.randn(5, 4, generator=g), "b": torch.randn(4, generator=g), "n": torch.tensor(3)}
    b = {"w": torch.randn(5, 4, generator=g), "b": torch.randn(4, generator=g), "n": torch.tensor(7)}
    assert states_equal(interpolate_state(a, b, 0.0), a)
    assert states_equal(interpolate_state(a, b, 1.0), b)
    mid = interpolate_state(a, b, 0.5)
    assert torch.equal(mid["w"], (a["w"] + b["w"]) / 2) and torch.equal(mid["b"], (a["b"] + b["b"]) / 2)
    assert int(mid["n"]) == 7 and int(interpolate_state(a, b, 0.25)["n"]) == 3  # integer buffers: the nearer end
    assert interpolate_state(a, b, 0.0)["w"] is not a["w"]  # copies, not the caller's tensors


def test_interpolate_state_keeps_masked_weights_zero_on_the_whole_path():
    g = torch.Generator().manual_seed(1)
    keep = torch.rand(6, 6, generator=g) > 0.5
    a = {"w": torch.randn(6, 6, generator=g) * keep}
    b = {"w": torch.randn(6, 6, generator=g) * keep}
    for alpha in alphas(11):
        w = interpolate_state(a, b, alpha)["w"]
        assert torch.all(w[~keep] == 0)


def test_interpolate_state_refuses_different_models():
    with pytest.raises(LotteryTicketError):
        interpolate_state({"a": torch.zeros(2)}, {"b": torch.zeros(2)}, 0.5)
    with pytest.raises(LotteryTicketError):
        interpolate_state({"a": torch.zeros(2)}, {"a": torch.zeros(3)}, 0.5)


# ---- the step-k start and the copies -------------------------------------------------------------------------
def test_k_start_is_the_dense_networks_step_k_under_the_levels_mask(run_dir):
    from lottery_ticket.mask import PruningMask
    from lottery_ticket.state import restore_, snapshot

    analysis = InstabilityAnalysis(run_dir, rewind_steps=[10], levels=[0, 1], points=3, device="cpu")
    dense, ticket = analysis.levels
    rewind = load_state(run_dir / "seed_0" / "rewind.safetensors")
    # Level 0: the run itself stored its dense weights after step 10 (it rewinds to 10).
    assert states_equal(analysis.start_state(dense, 10), rewind)
    # Level 1, as the paper's rewound subnetworks: the dense step-10 weights under the level's mask.
    model = analysis.build(ticket)
    restore_(model, rewind)
    mask = PruningMask.load(run_dir / "seed_0" / "masks" / "round_01.safetensors", model)
    mask.apply(model)
    stored = analysis.start_state(ticket, 10)
    assert states_equal(stored, snapshot(model))
    assert not states_equal(stored, rewind)  # the mask really removed weights
    for name, keep in mask.items():
        assert torch.all(stored[name][~keep] == 0)
    # Level 1 at k = 0: θ₀ under its mask.
    restore_(model, load_state(run_dir / "seed_0" / "init.safetensors"))
    mask.apply(model)
    assert states_equal(analysis.start_state(ticket, 0), snapshot(model))


def test_two_copies_differ_and_keep_the_mask(run_dir):
    from lottery_ticket.mask import PruningMask

    for level, k in ((0, 0), (1, 10)):
        place = run_dir / "instability" / "seed_0" / f"level_{level:02d}" / f"k_{k}"
        w1, w2 = (load_state(place / f"copy_{c}.safetensors") for c in COPIES)
        assert not states_equal(w1, w2)
        records = [json.loads((place / f"copy_{c}.json").read_text()) for c in COPIES]
        assert [r["data_seed"] for r in records] == [1, 2] and all(r["iterations"] == BUDGET for r in records)
        assert all(r["k"] == k for r in records)
    mask = PruningMask.load(run_dir / "seed_0" / "masks" / "round_01.safetensors")
    for c in COPIES:
        w = load_state(run_dir / "instability" / "seed_0" / "level_01" / "k_10" / f"copy_{c}.safetensors")
        for name, keep in mask.items():
            assert torch.all(w[name][~keep] == 0)


# ---- the command ---------------------------------------------------------------------------------------------
def test_cli_writes_csv_json_and_png(run_dir):
    out = run_dir / "instability"
    with open(out / "instability.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 3  # levels 0 and 1 (the default: dense and the last finished) x k 0, 10 x 3 points
    assert set(rows[0]) == {"seed", "level", "weights_remaining_pct", "k", "alpha", "test_error", "test_loss"}
    summary = json.loads((out / "instability.json").read_text())
    assert [(r["level"], r["k"]) for r in summary["results"]] == [(0, 0), (0, 10), (1, 0), (1, 10)]
    for result in summary["results"]:
        errors = [float(r["test_error"]) for r in rows if int(r["level"]) == result["level"] and int(r["k"]) == result["k"]]
        assert result["error_barrier"] == pytest.approx(error_barrier(errors), abs=1e-6)
        assert result["error_barrier"] >= 0 and result["data_seeds"] == [1, 2]
    assert summary["results"][0]["weights_remaining_pct"] == 100.0 and summary["results"][2]["weights_remaining_pct"] < 100
    assert (out / "instability.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("checkpoints/*.json"))


def test_rerun_retrains_nothing(run_dir, monkeypatch, capsys):
    from lottery_ticket.training import Trainer

    cached = {p: p.stat().st_mtime_ns for p in (run_dir / "instability" / "seed_0").rglob("*") if p.is_file()}
    # per (level, k): 2 copies x 2 files + curve; plus the dense step-10 start (2 files), shared by both levels
    assert len(cached) == 2 * 2 * (2 * 2 + 1) + 2

    def no_training(*args, **kwargs):
        raise AssertionError("a rerun trained again")

    monkeypatch.setattr(Trainer, "train", no_training)
    before = (run_dir / "instability" / "instability.json").read_text()
    assert main(["instability", str(run_dir), "--rewind-steps", "10,0", "--points", "3", "--device", "cpu",
                 "--quiet"]) == 0
    assert "error barrier" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in cached} == cached
    assert (run_dir / "instability" / "instability.json").read_text() == before


def test_a_lost_copy_is_retrained_alone_and_identically(run_dir, monkeypatch, capsys):
    from lottery_ticket.training import Trainer

    place = run_dir / "instability" / "seed_0" / "level_01" / "k_10"
    before = load_state(place / "copy_2.safetensors")
    (place / "copy_2.json").unlink()  # as if killed after the weights, before the record that marks them done
    calls = []
    train = Trainer.train

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("start_iteration", 0))
        return train(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train", counted)
    assert main(["instability", str(run_dir), "--rewind-steps", "0,10", "--points", "3", "--device", "cpu",
                 "--quiet"]) == 0
    assert calls == [10]  # copy 2 of (level 1, k 10) only: the stored step-10 start is reused
    assert states_equal(load_state(place / "copy_2.safetensors"), before)


def _partial_copy(run_dir, dest):
    """The run folder without its instability results, for damaging."""
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("instability"))
    return dest


@pytest.mark.parametrize("case, args, message", [
    ("not a run folder", ["--rewind-steps", "0"], "holds no config.json"),
    ("unfinished level", ["--rewind-steps", "0", "--levels", "1"], "lacks the checkpoints this needs"),
    ("missing init", ["--rewind-steps", "0"], "lacks the checkpoints this needs"),
    ("level beyond the rounds", ["--rewind-steps", "0", "--levels", "0,4"], "levels 0 (dense) to 1"),
    ("k at the budget", ["--rewind-steps", f"0,{BUDGET}"], "k beyond the budget"),
    ("negative k", ["--rewind-steps=-1"], "k beyond the budget"),
    ("one point", ["--rewind-steps", "0", "--points", "1"], "--points"),
])
def test_bad_input_is_one_line(run_dir, tmp_path, monkeypatch, capsys, case, args, message):
    from lottery_ticket.training import Trainer

    monkeypatch.setattr(Trainer, "train", lambda *a, **k: pytest.fail("trained on bad input"))
    if case == "not a run folder":
        target = tmp_path / "empty"
        target.mkdir()
    else:
        target = _partial_copy(run_dir, tmp_path / "run")
    if case == "unfinished level":
        (target / "seed_0" / "masks" / "round_01.safetensors").unlink()
        (target / "seed_0" / "rounds" / "round_01.json").unlink()
    elif case == "missing init":
        (target / "seed_0" / "init.safetensors").unlink()
    assert main(["instability", str(target), *args, "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lottery-ticket: error: ") and message in err, err
    assert not (target / "instability").exists()  # refused before anything was written
