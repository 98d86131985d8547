"""DDP on CPU: two gloo processes launched by torchrun (torch.distributed.run), as a user would."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from lottery_ticket.cli import main

ARGS = ["--preset", "mnist1d-mlp", "--budget", "120it", "--eval-every", "60it", "--rounds", "2", "--controls", "reinit",
        "--rewind-iteration", "10", "--quiet"]

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")


def torchrun(*args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lottery_ticket", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", **__import__("os").environ})


def files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and "checkpoints" not in p.parts}


def test_two_processes_agree_on_masks_and_weights_and_write_a_normal_run_folder(tmp_path):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    result = torchrun("find", "--distributed", *ARGS, "--out", str(ddp))
    assert result.returncode == 0, result.stderr[-2000:]
    assert main(["find", *ARGS, "--out", str(single)]) == 0
    assert files(ddp) == files(single)  # same format: rank 0 alone wrote it, no `module.` surprises
    for path in list(ddp.rglob("rounds/*.json")) + list(ddp.rglob("controls/*.json")):
        assert json.loads(path.read_text())["replicas_identical"] is True  # hashes of weights+mask all-gathered
    from lottery_ticket.state import load_state

    assert all("module." not in k for k in load_state(ddp / "seed_0" / "init.safetensors"))
    assert (ddp / "seed_0" / "rewind.safetensors").is_file()

    # Resume: drop the last round and let two processes redo it.
    for f in ("masks/round_02.safetensors", "rounds/round_02.json", "controls/random_reinit_round_02.json"):
        (ddp / "seed_0" / f).unlink()
    result = torchrun("resume", str(ddp), "--distributed", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((ddp / "seed_0" / "rounds" / "round_02.json").read_text())["replicas_identical"] is True


def test_distributed_without_torchrun_says_how_to_launch(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["find", "--distributed", *ARGS, "--out", str(tmp_path / "x")]) == 2
    assert "torchrun --nproc_per_node=N" in capsys.readouterr().err
