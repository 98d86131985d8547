"""The CLI end to end on a tiny budget: find -> SIGKILL -> resume -> report, and the demo's summary."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from conftest import metrics_without_timing
from lottery_ticket.cli import main

TINY = ["--preset", "mnist1d-mlp", "--budget", "150it", "--eval-every", "50it", "--rounds", "2",
        "--target-sparsity", "0.75", "--controls", "reinit,random-prune", "--quiet"]


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lottery_ticket", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_find_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "weights remaining" in printed and "random reinit" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["experiment"]["prune"]["rounds"] == 2
    assert {"git_commit", "torch_version", "created"} <= set(config["provenance"])
    assert (out / "metrics.csv").read_text().count("\n") == 1 + 3 + 2 * 2  # header, 3 ticket rounds, 2 controls x 2
    for name in ("init.safetensors", "masks/round_00.safetensors", "masks/round_02.safetensors", "rounds/round_02.json",
                 "controls/random_reinit_round_02.json", "controls/random_pruning_round_01.json"):
        assert (out / "seed_0" / name).is_file(), name
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("checkpoints/*.json"))
    assert main(["report", str(out)]) == 0
    for plot in ("accuracy_vs_weights.png", "early_stop_vs_weights.png", "layer_sparsity.png"):
        assert (out / "plots" / plot).read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["bench-inference", str(out), "--batch-sizes", "4"]) == 0
    table = capsys.readouterr().out
    assert "round 2" in table and "| csr | 4 |" in table and "size on disk" in table


def wait_for(predicate, proc, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_killed_run_resumes_to_the_same_masks_and_metrics(tmp_path):
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    # The preset's own per-layer rates (no --target-sparsity, which would switch them off): the schedule a
    # resume once got wrong. The reference runs as a subprocess too: same thread count, so the same floats.
    args = [arg for arg in TINY if arg not in ("--target-sparsity", "0.75")]
    assert run_cli("find", *args, "--out", str(reference)).returncode == 0
    cmd = [sys.executable, "-m", "lottery_ticket", "find", *args, "--out", str(crashed), "--checkpoint-every", "20"]
    seed = crashed / "seed_0"
    kill_points = [  # mid-training of the dense round (a checkpoint exists), then mid-way through round 1
        lambda: any((seed / "checkpoints").glob("round_00.json")),
        lambda: (seed / "rounds" / "round_01.json").exists() or any((seed / "checkpoints").glob("*round_01.json")),
    ]
    for ready in kill_points:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(ready, proc), "the run ended before the kill point: the kill would land on nothing"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL  # killed mid-run, not finished
    result = run_cli("resume", str(crashed), "--quiet")
    assert result.returncode == 0, result.stderr
    assert metrics_without_timing(crashed) == metrics_without_timing(reference)
    assert not list(crashed.rglob("*.tmp"))  # orphans of a kill mid-write are swept on resume
    for r in range(3):
        name = f"seed_0/masks/round_{r:02d}.safetensors"
        assert (crashed / name).read_bytes() == (reference / name).read_bytes()


def test_a_kill_while_writing_config_leaves_a_folder_that_find_still_accepts(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".config.json.k3x_9q2a.tmp").write_text('{"half": ')  # what SIGKILL mid-write leaves
    assert main(["find", *TINY, "--out", str(out)]) == 0
    assert not list(out.rglob("*.tmp"))


def test_a_folder_holding_another_experiment_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    assert main(["find", *TINY[:-1], "--rounds", "3", "--out", str(out)]) == 2
    assert "holds a different experiment" in capsys.readouterr().err


def test_bad_input_is_one_line_and_nonzero():
    result = run_cli("find", "--preset", "mnist1d-mlp", "--target-sparsity", "1.5", "--out", "/tmp/never")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "target_sparsity=1.5" in result.stderr
    assert not Path("/tmp/never").exists()


def test_the_same_command_twice_gives_identical_files(tmp_path):
    """README's "What is reproducible": the same command on the same thread count, in two processes, writes the
    same masks, weights, records and metrics (wall-clock seconds aside)."""
    from kill_helpers import fingerprint

    runs = [tmp_path / "first", tmp_path / "second"]
    for out in runs:
        result = run_cli("find", *TINY, "--out", str(out), env={"OMP_NUM_THREADS": "2"})
        assert result.returncode == 0, result.stderr
    first = fingerprint(runs[0])
    assert any(name.endswith("mask.safetensors") or "masks" in name for name in first), sorted(first)
    assert first == fingerprint(runs[1])
    assert metrics_without_timing(runs[0]) == metrics_without_timing(runs[1])
