"""Reliability, round three (issue 25): every input validated before the first write, stored files validated by
schema, faults that lost state, and behaviours no test pinned. The hostile run folders: test_untrusted_folder.py."""

import json
import math
import os
import pickle
import socket
import statistics
import threading
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from lottery_ticket import LotteryTicketError, LotteryTicketFinder
from lottery_ticket.cli import main
from lottery_ticket.config import ExperimentConfig, TrainConfig
from lottery_ticket.config_file import to_toml
from lottery_ticket.io import read_json
from shared_data import SHARED_DATASETS

TINY = ["--preset", "mnist1d-mlp", "--budget", "60it", "--eval-every", "30it", "--rounds", "1", "--quiet"]
BYO = "tests.byo_faults"


def exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()  # ours, or argparse's ("lottery-ticket find: error: argument ...")
    assert err.count("\n") == 0 and err.startswith("lottery-ticket") and ": error: " in err, err
    return err


# 3. Every input validated before the first write ----------------------------------------------------------------
@pytest.mark.parametrize("text,message", [
    ('[train]\nlr = "0.1"\n', "lr='0.1' must be a number"),
    ('[train]\naugment = "no"\n', "augment='no' must be true or false"),
    ('[train]\ncompile = "yes"\n', "compile='yes' must be true or false"),
    ('[train]\nbatch_size = 1.5\n', "batch_size=1.5 must be an integer"),
    ('seeds = "0"\n', "seeds='0' must be a list of integers"),
    ('[prune]\nexclude = [1]\n', "exclude=(1,) must be a list of strings"),
    ('[prune]\nlayer_rates = { "fc1.weight" = "half" }\n', "must be a table of name = number"),
    ('[model_kwargs]\nhidden = -3\n', "failed to build"),
    ('[train]\nwarmup = "100000it"\n', "longer than the budget"),
    ('[train]\nmilestones = ["50it", "20it"]\n', "must increase"),
    ('[train]\nmomentum = -0.5\n', "momentum=-0.5 must be >= 0"),
])
def test_ill_typed_or_out_of_range_config_files_are_one_line_and_write_nothing(tmp_path, capsys, text, message):
    (tmp_path / "run.toml").write_text('preset = "mnist1d-mlp"\n' + text)
    out = tmp_path / "run"
    assert exit_code(["find", "--config", str(tmp_path / "run.toml"), "--budget", "60it", "--rounds", "1",
                      "--quiet", "--out", str(out)]) == 2
    assert message in one_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("bad,message", [
    (["--lr", "inf"], "lr=inf must be a finite number"),
    (["--lr", "nan"], "lr=nan"),
    (["--lr", "-1"], "lr=-1.0 must be > 0"),
    (["--momentum", "-0.9"], "momentum=-0.9 must be >= 0"),
    (["--weight-decay", "inf"], "weight_decay=inf must be a finite number"),
    (["--checkpoint-every", "0"], "is not an integer >= 1"),
    (["--workers", "0"], "is not an integer >= 1"),
    (["--warmup", "1000it"], "longer than the budget"),
    (["--milestones", "40it,20it"], "must increase"),
    (["--rounds", "100000"], "rounds=100000"),
    (["--seeds", "\u0663"], "comma-separated list of integers"),
    (["--model", ""], "--model is empty"),
    (["--layer-rate", "nothing.here=0.1"], "pattern 'nothing.here' matches no parameter"),
    (["--exclude", "fc9.weight"], "pattern 'fc9.weight' matches no parameter"),
])
def test_bad_values_are_one_line_before_any_write_and_the_fixed_command_runs_on_the_same_out(tmp_path, capsys, bad,
                                                                                             message):
    out = tmp_path / "run"
    assert exit_code(["find", *TINY, *bad, "--out", str(out)]) == 2
    assert message in one_line(capsys)
    assert not out.exists()
    assert main(["find", *TINY, "--out", str(out)]) == 0


def test_an_empty_out_and_a_config_that_is_a_folder_are_one_line(tmp_path, capsys):
    assert exit_code(["find", *TINY, "--out", ""]) == 2
    assert "--out is empty" in one_line(capsys)
    assert exit_code(["compare", str(tmp_path), str(tmp_path / "b"), "--out", ""]) == 2
    assert "--out is empty" in one_line(capsys)
    assert exit_code(["find", "--config", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "is a folder" in one_line(capsys)
    assert exit_code(["find", *TINY, "--data-dir", __file__, "--out", str(tmp_path / "run")]) == 2
    assert "is a file" in one_line(capsys)


@pytest.mark.parametrize("args,message", [
    (["--model", f"{BYO}:raising_model"], "raised ValueError: no such width"),
    (["--model", f"{BYO}:meta_model"], "on the meta device"),
    (["--data", f"{BYO}:raising_data"], "raised RuntimeError: the bucket is gone"),
    (["--data", f"{BYO}:empty_data"], "yields no batch"),
    (["--data", f"{BYO}:labels_out_of_range"], "labels span 0..12 but the model has 10 outputs"),
    (["--loss", f"{BYO}:raising_loss"], "does not fit the model or the loss: ZeroDivisionError"),
    (["--loss", f"{BYO}:per_example_loss"], "must return one finite number per batch"),
    (["--loss", f"{BYO}:nan_loss"], "must return one finite number per batch"),
])
def test_your_own_code_is_tried_on_one_real_batch_before_config_json_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    base = ["find", "--preset", "mnist1d-mlp", "--budget", "20it", "--eval-every", "10it", "--rounds", "1", "--quiet"]
    assert exit_code([*base, *args, "--out", str(out)]) == 2
    assert message in one_line(capsys)
    assert not (out / "config.json").exists()
    fixed = [a if not a.startswith(BYO) else {"--model": "mnist1d_mlp", "--data": "mnist1d",
                                               "--loss": "cross_entropy"}[args[0]] for a in args]
    assert main([*base, *fixed, "--out", str(out)]) == 0


def test_instability_refuses_repeated_levels_and_too_many_points(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    assert exit_code(["instability", str(out), "--rewind-steps", "0", "--levels", "1,1"]) == 2
    assert "repeats a level" in one_line(capsys)
    assert exit_code(["instability", str(out), "--rewind-steps", "0", "--points", "100000"]) == 2
    assert "at most 1001" in one_line(capsys)
    assert not (out / "instability").exists()


def test_bench_inference_batch_sizes_that_cannot_be_allocated_are_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    assert exit_code(["bench-inference", str(out), "--batch-sizes", "1,100000000000"]) == 2
    assert "--batch-sizes 100000000000 cannot be allocated" in one_line(capsys)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5, None, "0.9", torch.tensor(0.9)],
                         ids=["nan", "inf", "negative", "none", "string", "tensor"])
def test_an_eval_fn_returning_no_accuracy_is_a_lottery_ticket_error(value):
    from conftest import TinyMLP

    def train_fn(model, mask):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)

    finder = LotteryTicketFinder(TinyMLP, {}, "cpu")
    with pytest.raises(LotteryTicketError, match="eval_fn returned"):
        finder.find_winning_ticket(TinyMLP(), train_fn, lambda model: value, target_sparsity=0.5,
                                   pruning_rounds=1, verbose=False)
    with pytest.raises(LotteryTicketError, match="eval_fn returned"):
        finder.find_winning_ticket(TinyMLP(), train_fn, lambda model: {"accuracy": value},
                                   target_sparsity=0.5, pruning_rounds=1, verbose=False)


# 4. Stored files validated by schema ------------------------------------------------------------------------------
def test_json_nested_200000_deep_is_one_error_not_a_recursion_crash(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(LotteryTicketError, match="nested too deep"):
        read_json(path)


def test_a_cifar_batch_asking_for_a_huge_array_is_refused_before_allocating(tmp_path):
    from lottery_ticket.data.cifar10 import safe_load_batch

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct

    class Huge:
        def __reduce__(self):
            return _reconstruct, (np.ndarray, (2**40,), b"b")

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Huge(), b"labels": [0]}, protocol=2))
    with pytest.raises(LotteryTicketError, match="larger than the file"):
        safe_load_batch(path)

    class CallsNdarray:  # numpy.ndarray itself, called: allocation by another door
        def __reduce__(self):
            return np.ndarray, ((2**40,),)

    path.write_bytes(pickle.dumps({b"data": CallsNdarray(), b"labels": [0]}, protocol=2))
    with pytest.raises(LotteryTicketError):
        safe_load_batch(path)
    real = np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072)  # a real array still loads, bit for bit
    path.write_bytes(pickle.dumps({b"data": real, b"labels": [1, 2]}, protocol=2))
    assert np.array_equal(safe_load_batch(path)["data"], real)


def test_a_break_even_cache_that_is_valid_json_but_not_an_object_is_ignored_and_rewritten(tmp_path, monkeypatch):
    from lottery_ticket.training import calibration

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = calibration.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[1, 2, 3]")
    measure = lambda out, inp, batch, grad, d: (1.0, 0.5, 0.6)  # sparse always pays
    found = calibration.break_even(8, 8, 4, False, measure=measure)
    assert found == {k: calibration.DENSITIES[0] for k in found}
    assert isinstance(json.loads(path.read_text()), dict)


# 5. Faults ------------------------------------------------------------------------------------------------------
def test_a_kill_after_the_final_checkpoint_and_before_the_record_keeps_the_last_loss(tmp_path, monkeypatch):
    from lottery_ticket.imp.engine import IMP

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    args = [*TINY, "--checkpoint-every", "30"]
    assert main(["find", *args, "--out", str(reference)]) == 0
    original = IMP._finish

    def killed_before_the_level_1_record(self, kind, level, stage, row):
        if level == 1:
            raise KeyboardInterrupt  # the process dies here: the final checkpoint is on disk, the record is not
        return original(self, kind, level, stage, row)

    monkeypatch.setattr(IMP, "_finish", killed_before_the_level_1_record)
    assert main(["find", *args, "--out", str(killed)]) == 130
    assert (killed / "seed_0" / "checkpoints" / "round_01.json").is_file()
    monkeypatch.setattr(IMP, "_finish", original)
    assert main(["resume", str(killed), "--quiet"]) == 0
    loss = lambda run: json.loads((run / "seed_0" / "rounds" / "round_01.json").read_text())["final_train_loss"]
    assert loss(killed) == loss(reference) and loss(killed) > 0


def test_the_worker_and_thread_setup_is_recorded_and_resume_reuses_it(tmp_path, monkeypatch):
    from lottery_ticket.experiment.runfolder import RunFolder, reuse_execution

    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    stored = json.loads((out / "config.json").read_text())
    assert stored["execution"] == {"workers": 1, "threads": torch.get_num_threads()}
    stored["execution"] = {"workers": 3, "threads": 2}
    (out / "config.json").write_text(json.dumps(stored))
    monkeypatch.setenv("LOTTERY_TICKET_WORKER_THREADS", "1")  # so the value reuse_execution sets is undone after
    assert reuse_execution(RunFolder(out)) == 3 and os.environ["LOTTERY_TICKET_WORKER_THREADS"] == "2"
    threads = torch.get_num_threads()
    try:
        other = 2 if threads == 1 else 1
        stored["execution"] = {"workers": 1, "threads": other}
        (out / "config.json").write_text(json.dumps(stored))
        assert reuse_execution(RunFolder(out)) == 1 and torch.get_num_threads() == other
        stored["execution"] = {"workers": 1, "threads": 10**6}  # more than this machine's cores: ignored
        (out / "config.json").write_text(json.dumps(stored))
        assert reuse_execution(RunFolder(out)) == 1 and torch.get_num_threads() == other
    finally:
        torch.set_num_threads(threads)
    for junk in ("many", {"workers": True}, {"workers": 10**9}, None):
        stored["execution"] = junk
        (out / "config.json").write_text(json.dumps(stored))
        assert reuse_execution(RunFolder(out)) == 1


def test_a_read_only_run_folder_reports_and_refuses_writes_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    modes = {p: p.stat().st_mode for p in [out, *out.rglob("*")]}
    for p in modes:
        p.chmod(modes[p] & ~0o222)
    try:
        assert main(["report", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "no plots" in printed and "read-only" in printed and "weights remaining" in printed
        for argv in (["resume", str(out), "--quiet"], ["find", *TINY, "--out", str(out)],
                     ["instability", str(out), "--rewind-steps", "0"]):
            assert main(argv) == 2
            assert "is read-only" in one_line(capsys)
        assert not (out / "instability").exists() and not (out / "plots").exists()
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


class _BadServer:
    """A local HTTP server that answers every request with `reply` (bytes), sent in `pieces` with `pause` s between."""

    def __init__(self, reply: bytes, pieces: int = 1, pause: float = 0.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.reply, self.pieces, self.pause, self.stop = reply, pieces, pause, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def _serve(self):
        import time

        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                size = max(1, len(self.reply) // self.pieces)
                for i in range(0, len(self.reply), size):
                    if self.stop.is_set():
                        break
                    try:
                        conn.sendall(self.reply[i:i + size])
                    except OSError:
                        break
                    time.sleep(self.pause)

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("reply,pieces,pause", [
    (b"garbage that is no status line\r\n\r\n", 1, 0.0),  # BadStatusLine
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10, 1, 0.0),  # IncompleteRead
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 1, 0.0),  # a header line over http.client's limit
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000, 100000, 0.05),  # a byte every 50 ms
], ids=["bad-status-line", "incomplete-read", "oversized-header", "trickle"])
def test_every_http_failure_is_one_line_with_no_part_file_and_the_download_has_a_deadline(tmp_path, monkeypatch,
                                                                                          reply, pieces, pause):
    from lottery_ticket.data.download import DEADLINE_VAR, download_file

    server = _BadServer(reply, pieces, pause)
    monkeypatch.setenv(DEADLINE_VAR, "1.5")
    try:
        with pytest.raises(LotteryTicketError) as error:
            download_file([server.url + "train-images-idx3-ubyte.gz"], tmp_path / "train-images-idx3-ubyte.gz", None)
    finally:
        server.close()
    assert "\n" not in str(error.value) and "could not download" in str(error.value)
    assert list(tmp_path.iterdir()) == []
    if pieces > 1:
        assert "not finished after 1.5 s" in str(error.value)


# 6. --print-config round-trips any key ---------------------------------------------------------------------------
def test_print_config_round_trips_keys_with_spaces_quotes_and_nested_tables():
    config = ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", train=TrainConfig(milestones=("10it", "20it")))
    data = config.to_dict()
    data["model_kwargs"] = {"a key with spaces": 1, 'quote"d': [1.5, 2], "nested": {"x y": True}}
    data["prune"]["layer_rates"] = {"blocks.0 conv.weight": 0.1, "*": 0.2}
    back = tomllib.loads(to_toml(data))
    expected = json.loads(json.dumps(data))
    drop_none = lambda d: {k: drop_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}
    assert back == drop_none(expected)


# 7. Behaviours no test pinned ------------------------------------------------------------------------------------
def test_the_spread_across_seeds_is_the_sample_standard_deviation():
    from lottery_ticket.experiment.results import summarize

    rows = [{"seed": s, "round": 0, "kind": "dense", "weights_remaining_pct": 100.0, "accuracy": a}
            for s, a in enumerate([0.5, 0.7, 0.9])]
    stats = summarize(rows)["levels"][0]["ticket"]["accuracy"]
    by_hand = math.sqrt(((0.5 - 0.7) ** 2 + 0.0 + (0.9 - 0.7) ** 2) / (3 - 1))  # n - 1: 0.2, not 0.163
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(0.7) and stats["std"] == pytest.approx(by_hand)
    assert stats["std"] == pytest.approx(statistics.stdev([0.5, 0.7, 0.9])) and stats["std"] != pytest.approx(0.1633, abs=1e-3)


@pytest.mark.parametrize("failing", ["trained", "mask"])
def test_a_level_record_is_written_only_after_the_files_it_depends_on(tmp_path, monkeypatch, failing):
    from lottery_ticket.imp.store import FolderStore

    def fail(*args, **kwargs):
        raise LotteryTicketError("disk full (simulated)")

    if failing == "trained":
        original = FolderStore.save_state
        monkeypatch.setattr(FolderStore, "save_state", lambda self, key, state: fail() if key == "trained/1"
                            else original(self, key, state))
    else:
        original_mask = FolderStore.save_mask
        monkeypatch.setattr(FolderStore, "save_mask", lambda self, level, mask: fail() if level == 1
                            else original_mask(self, level, mask))
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 2
    assert (out / "seed_0" / "rounds" / "round_00.json").is_file()
    assert not (out / "seed_0" / "rounds" / "round_01.json").exists()


NORMALIZED = [("mnist", SHARED_DATASETS), ("fashion-mnist", None), ("cifar10", SHARED_DATASETS)]


@pytest.mark.parametrize("name,root", NORMALIZED, ids=[n for n, _ in NORMALIZED])
def test_each_datasets_normalization_constants_are_its_training_images_mean_then_std(name, root):
    from lottery_ticket.data import DATASETS, load_dataset

    try:
        data = load_dataset(name, root, verify_checksums=False, validation=False)
    except LotteryTicketError as exc:
        pytest.skip(f"{name} is not on this machine ({exc})")
    x = data.train.x.float() / 255
    per_channel = x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() == 4 else x.reshape(1, -1)
    mean, std = per_channel.mean(1).tolist(), per_channel.std(1).tolist()
    spec = DATASETS[name]
    assert data.mean == spec.mean and data.std == spec.std
    assert spec.mean == pytest.approx(tuple(mean), abs=3e-3) and spec.std == pytest.approx(tuple(std), abs=3e-3)
