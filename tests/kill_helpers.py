"""Kill a run mid-way, resume it, and compare it with an uninterrupted one: shared by the kill tests."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "lottery_ticket", *args]


def fingerprint(run: Path) -> dict[str, object]:
    """Every mask, weight file and record of the run (records without wall-clock seconds)."""
    out: dict[str, object] = {}
    for path in sorted(run.rglob("*")):
        rel = str(path.relative_to(run))
        if not path.is_file() or "checkpoints" in path.parts or path.name in (".lock", "config.json"):
            continue
        if path.suffix == ".safetensors":
            out[rel] = path.read_bytes()
        elif path.suffix == ".json" and path.parent.name in ("rounds", "controls"):
            row = json.loads(path.read_text())
            row.pop("train_seconds")
            row.pop("record_sha256")
            out[rel] = row
    return out


def kill_after_first_level_then_resume(find_args: list[str], tmp_path: Path) -> tuple[dict, dict]:
    """The fingerprints of an uninterrupted run and of one SIGKILLed once seed 0's first pruned level is recorded,
    then resumed; the same thread count in every process, so the same floats."""
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cli(*find_args, "--out", str(reference)), env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(cli(*find_args, "--out", str(crashed)), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not (crashed / "seed_0" / "rounds" / "round_01.json").exists() and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cli("resume", str(crashed), "--quiet"), env=env, cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    return fingerprint(reference), fingerprint(crashed)
