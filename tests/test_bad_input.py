"""Bad input: each case gives one line naming the value and the fix, a non-zero exit, and loses nothing."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lottery_ticket import LotteryTicketError, PruningMask
from lottery_ticket.cli import main
from lottery_ticket.io import write_json
from lottery_ticket.models import build_model
from shared_data import SHARED_DATASETS

SHARED = SHARED_DATASETS
TINY = ["--preset", "mnist1d-mlp", "--budget", "60it", "--eval-every", "30it", "--rounds", "1", "--quiet"]

# (case, argv after `find ... --out OUT`, text the one-line error must contain)
FIND_CASES = [
    ("sparsity above 1", ["--target-sparsity", "1.5"], "target_sparsity=1.5 is outside [0, 1)"),
    ("sparsity of exactly 1", ["--target-sparsity", "1"], "outside [0, 1)"),
    ("negative sparsity", ["--target-sparsity", "-0.1"], "outside [0, 1)"),
    ("percent instead of fraction", ["--target-sparsity", "90"], "did you mean 0.9"),
    ("sparsity not a number", ["--target-sparsity", "lots"], "invalid float value: 'lots'"),
    ("zero rounds", ["--rounds", "0"], "rounds=0 must be an integer >= 1"),
    ("negative rounds", ["--rounds", "-2"], "rounds=-2 must be an integer >= 1"),
    ("unknown model", ["--model", "resnet9000"], "unknown model 'resnet9000'; choose from"),
    ("unknown dataset", ["--dataset", "imagenet"], "unknown dataset 'imagenet'; choose from"),
    ("unknown preset", ["--preset", "lenet-mnist"], "unknown preset 'lenet-mnist'; choose from"),
    ("repeated seed", ["--seeds", "0,0"], "repeat a seed"),
    ("seeds not integers", ["--seeds", "a,b"], "not a comma-separated list of integers"),
    ("unknown control", ["--controls", "reinit,shuffle"], "unknown control(s) ['shuffle']"),
    ("bad budget", ["--budget", "10 epochs"], "budget '10 epochs' is not understood"),
    ("negative learning rate", ["--lr", "-0.1"], "lr=-0.1 must be > 0"),
    ("zero batch size", ["--batch-size", "0"], "batch_size=0 must be an integer >= 1"),
    ("unknown optimizer", ["--optimizer", "rmsprop"], "optimizer='rmsprop' is unknown"),
    ("negative rewind", ["--rewind-iteration", "-1"], "rewind_iteration=-1 must be an integer >= 0"),
    ("rewind past the budget", ["--rewind-iteration", "100"], "rewind_iteration=100 is not below the 60 training steps"),
    ("early-bird out of range", ["--early-bird", "2"], "early_bird=2.0 must be in (0, 1)"),
    ("missing data files", ["--dataset", "mnist", "--model", "lenet300", "--data-dir", "EMPTY"], "mnist files not found"),
]


@pytest.mark.parametrize("argv,message", [c[1:] for c in FIND_CASES], ids=[c[0] for c in FIND_CASES])
def test_find_rejects_bad_input_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [a.replace("EMPTY", str(tmp_path / "empty")) for a in argv]
    out = tmp_path / "run"
    try:
        code = main(["find", *TINY, *argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_folder_of_another_experiment_is_refused_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["find", *TINY, "--lr", "0.01", "--out", str(out)]) == 2
    assert "holds a different experiment (differs in: train)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_non_empty_folder_without_config_is_refused(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["find", *TINY, "--out", str(tmp_path)]) == 2
    assert "is not empty and holds no config.json" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("command", ["resume", "report"])
def test_resume_and_report_need_a_run_folder(tmp_path, capsys, command):
    assert main([command, str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="shared datasets not found")
def test_truncated_data_file_is_named(tmp_path, capsys):
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / f).write_bytes((SHARED / "mnist" / f).read_bytes())
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b")
    assert main(["find", *TINY, "--dataset", "mnist", "--model", "lenet300", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "run")]) == 2
    assert "train-labels-idx1-ubyte.gz does not match the official mnist checksum" in capsys.readouterr().err


def test_mask_for_the_wrong_model_names_the_layers(tmp_path):
    PruningMask(build_model("lenet300")).save(tmp_path / "m.safetensors")
    with pytest.raises(LotteryTicketError, match=r"fc1.weight \(mask \(300, 784\) vs weight \(300, 40\)\)"):
        PruningMask.load(tmp_path / "m.safetensors", build_model("lenet300", input_shape=(40,)))


def test_a_pickled_mask_is_refused_without_being_loaded(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"fc1.weight": Evil()}, tmp_path / "mask.safetensors")
    with pytest.raises(LotteryTicketError, match="pickle/torch.save file, which can run code"):
        PruningMask.load(tmp_path / "mask.safetensors")
    assert not marker.exists()


def test_a_run_folder_with_a_pickled_weights_file_is_never_unpickled_and_the_stage_is_redone(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    expected = (out / "seed_0" / "masks" / "round_01.safetensors").read_bytes()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save(Evil(), out / "seed_0" / "trained" / "round_00.safetensors")
    for f in (out / "seed_0" / "masks").glob("round_01*"):
        f.unlink()
    for f in (out / "seed_0" / "rounds").glob("round_01*"):
        f.unlink()
    assert main(["resume", str(out), "--quiet"]) == 0  # the damaged weights are retrained, deterministically
    assert not marker.exists()
    assert (out / "seed_0" / "masks" / "round_01.safetensors").read_bytes() == expected
    assert (out / "seed_0" / "trained" / "round_00.safetensors").read_bytes()[:1] != b"\x80"


def test_a_diverging_loss_stops_with_a_message_and_keeps_earlier_rounds(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    # Same folder, same experiment: nothing to redo. A new folder with an absurd lr diverges in round 0.
    assert main(["find", *TINY, "--lr", "1e6", "--optimizer", "sgd", "--budget", "200it", "--out", str(tmp_path / "bad")]) == 2
    assert "training diverged: loss is nan" in capsys.readouterr().err
    # nothing had finished: the folder is gone, so the corrected learning rate runs on the same --out
    assert not (tmp_path / "bad").exists()
    assert main(["find", *TINY, "--optimizer", "sgd", "--budget", "200it", "--out", str(tmp_path / "bad")]) == 0


def test_disk_full_is_a_clear_error_and_leaves_no_partial_file(tmp_path, monkeypatch):
    from lottery_ticket import io as lt_io

    target = tmp_path / "x.json"
    write_json(target, {"old": True})

    def full(fd, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lt_io.os, "fsync", full)
    with pytest.raises(LotteryTicketError, match="No space left on device; free disk space"):
        write_json(target, {"new": True})
    assert target.read_text().strip().startswith("{") and '"old": true' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_ctrl_c_stops_cleanly_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lottery_ticket", "find", "--preset", "mnist1d-mlp", "--budget", "1000it",
           "--rounds", "2", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "seed_0" / "init.safetensors").exists():
        time.sleep(0.05)  # Ctrl-C once the run is under way (not while Python is still importing torch)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if (out / "seed_0" / "rounds" / "round_02.json").is_file():
        # A starved test process can miss the whole run; a Ctrl-C then lands in interpreter shutdown (exit 0 or -2).
        pytest.skip("the run finished before Ctrl-C arrived")
    # 130 from main(), or death by SIGINT itself (-2; a shell shows both as 130): on a loaded machine CPython
    # sometimes re-raises the signal at exit although main() caught it and printed its line (cause not found).
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    assert f"lottery-ticket resume {out}" in err and "Traceback" not in err, err
    assert main(["resume", str(out), "--quiet"]) == 0
    assert (out / "seed_0" / "rounds" / "round_02.json").is_file()
