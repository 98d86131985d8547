"""Reliability, round two (issue 12): one writer per run folder, never touch user files, validate every byte read.

One test per defect an adversarial review found, a fuzz test that damages run-folder files byte by byte, and a
concurrency test with two writers. (The CIFAR-10, IDX and MNIST-1D readers: tests/test_data_validation.py.)"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import metrics_without_timing
from lottery_ticket import LotteryTicketError, MagnitudePruner, PruningMask
from lottery_ticket.cli import main
from lottery_ticket.config import Budget
from lottery_ticket.io import FILE_MODE, write_json
from lottery_ticket.models import MODELS
from lottery_ticket.state import load_state

TINY = ["--preset", "mnist1d-mlp", "--budget", "60it", "--eval-every", "30it", "--rounds", "1", "--quiet"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lottery-ticket: error: "), err
    return err


def exit_code(argv: list[str]) -> int:
    """main()'s status, or argparse's (a usage error exits 2 from inside the parser)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def find_process(*args):
    return subprocess.Popen([sys.executable, "-m", "lottery_ticket", "find", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


# 1. Two processes, one run folder -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_different_experiments_started_together_on_one_new_folder_never_mix(tmp_path):
    for trial in range(2):
        out = tmp_path / f"run{trial}"
        a = find_process(*TINY, "--budget", "60it", "--out", str(out))
        b = find_process(*TINY, "--budget", "90it", "--out", str(out))
        codes = sorted((a.wait(), b.wait()))
        errors = a.stderr.read() + b.stderr.read()
        assert codes == [0, 2], errors
        assert "holds a different experiment" in errors and errors.count("\n") == 1
        budget = json.loads((out / "config.json").read_text())["experiment"]["train"]["budget"]
        trained = {row["iterations"] for row in metrics_without_timing(out)}
        assert trained == {Budget.parse(budget).iterations(1)}  # every round trained with config.json's budget


# 2. The temp-file sweep never touches a user's files -------------------------------------------------------------
def test_a_folder_of_user_files_ending_in_tmp_is_not_empty_and_is_left_alone(tmp_path, capsys):
    d = tmp_path / "d"
    (d / "backup.tmp").mkdir(parents=True)
    (d / ".cache.tmp").write_text("x")
    assert main(["find", *TINY, "--out", str(d)]) == 2
    assert "is not empty" in one_line_error(capsys)
    assert (d / "backup.tmp").is_dir() and (d / ".cache.tmp").read_text() == "x"


def test_user_entries_inside_a_run_folder_survive_resume_and_our_orphans_do_not(tmp_path):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    (out / ".x.tmp").mkdir()  # made every later resume crash in 0.1
    (out / ".notes.tmp").write_text("mine")
    (out / "seed_0" / ".scratch.tmp").write_text("mine")
    orphan = out / "seed_0" / "masks" / ".round_01.safetensors.k3x_9q2a.tmp"
    orphan.write_bytes(b"half a file")
    assert main(["resume", str(out), "--quiet"]) == 0
    assert (out / ".x.tmp").is_dir() and (out / ".notes.tmp").read_text() == "mine"
    assert (out / "seed_0" / ".scratch.tmp").read_text() == "mine"
    assert not orphan.exists()


# 4. NaN is caught on the step it appears, and never reaches pruning ------------------------------------------------
def test_an_infinite_learning_rate_stops_at_once_with_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--lr", "inf", "--budget", "49it", "--out", str(out)]) == 2
    assert "lr=inf must be a finite number" in one_line_error(capsys)
    assert not out.exists()  # refused with the settings, before the folder exists
    assert main(["find", *TINY, "--lr", "1e38", "--budget", "49it", "--out", str(out)]) == 2  # finite, but diverges
    assert "training diverged" in one_line_error(capsys)
    assert not (out / "seed_0" / "masks" / "round_01.safetensors").exists()
    assert not (out / "seed_0" / "rounds" / "round_00.json").exists()


def test_pruning_refuses_non_finite_weights():
    torch.manual_seed(0)
    model = MODELS["lenet300"]()
    with torch.no_grad():
        model.fc2.weight[0, 0] = float("nan")
    for global_pruning in (True, False):
        with pytest.raises(LotteryTicketError, match="NaN or infinite"):
            MagnitudePruner(global_pruning=global_pruning).prune(model, PruningMask(model), 0.5)


# 5. Checkpoint and stage records are not trusted blindly ------------------------------------------------------------
def _interrupted_dense_round(tmp_path):
    """A run folder whose dense round stopped after a checkpoint (a kill, in effect), plus the uninterrupted result."""
    args = [*TINY, "--budget", "90it", "--checkpoint-every", "30"]
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert main(["find", *args, "--out", str(reference)]) == 0
    assert main(["find", *args, "--out", str(run)]) == 0
    shutil.rmtree(run / "seed_0")
    (run / "seed_0").mkdir()
    # Recreate a mid-round checkpoint exactly as the trainer writes it: train the first 30 steps again.
    from lottery_ticket.experiment.runner import ExperimentRunner
    from lottery_ticket.experiment.runfolder import RunFolder, read_run_config

    runner = ExperimentRunner(read_run_config(RunFolder(run)), run, progress=False, log=lambda m: None,
                              checkpoint_every=30)
    imp = runner.imp(0)

    class Stop(Exception):
        pass

    from lottery_ticket.training.callbacks import Callback

    class StopAt(Callback):
        every = 1

        def on_step(self, trainer, iteration, loss):
            if iteration == 31:
                raise Stop

    original = imp.trainable.train

    def train_then_stop(model, mask, **kwargs):
        kwargs["callbacks"] = [*kwargs["callbacks"], StopAt()]
        return original(model, mask, **kwargs)

    imp.trainable.train = train_then_stop
    with pytest.raises(Stop):
        imp.train_level(0)
    checkpoint = run / "seed_0" / "checkpoints" / "round_00.json"
    assert checkpoint.is_file()
    return reference, run, checkpoint


def test_an_edited_checkpoint_record_is_ignored_and_the_stage_restarts(tmp_path):
    reference, run, checkpoint = _interrupted_dense_round(tmp_path)
    record = json.loads(checkpoint.read_text())
    record["iteration"] = 89  # in 0.1 this made the round skip its training
    checkpoint.write_text(json.dumps(record))
    assert main(["resume", str(run), "--quiet"]) == 0
    assert metrics_without_timing(run) == metrics_without_timing(reference)


def test_a_structurally_wrong_checkpoint_record_is_ignored_not_a_crash(tmp_path):
    reference, run, checkpoint = _interrupted_dense_round(tmp_path)
    checkpoint.write_text(json.dumps(["not", "a", "record"]))
    assert main(["resume", str(run), "--quiet"]) == 0
    assert metrics_without_timing(run) == metrics_without_timing(reference)


def test_an_edited_round_record_is_redone(tmp_path):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    expected = metrics_without_timing(out)
    path = out / "seed_0" / "rounds" / "round_01.json"
    row = json.loads(path.read_text())
    row["accuracy"] = 0.999
    path.write_text(json.dumps(row))
    assert main(["resume", str(out), "--quiet"]) == 0
    assert metrics_without_timing(out) == expected


# 7. Invalid settings fail before anything is written ----------------------------------------------------------------
@pytest.mark.parametrize("bad,fix", [
    (["--batch-size", "100000"], "larger than the"),
    (["--seeds", "100000000000000000000"], "seeds"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:99"], "CUDA"),
    (["--device", "bogus"], "not understood"),
    (["--budget", "0.5it"], "fraction of an iteration"),
    (["--eval-every", "0.5it"], "fraction of an iteration"),
    (["--seeds", ","], "comma-separated list of integers"),
    (["--target-sparsity", "1"], "1 would prune every weight"),
])
def test_invalid_settings_fail_in_one_line_before_any_write_and_the_corrected_command_works(tmp_path, capsys, bad, fix):
    out = tmp_path / "run"
    assert exit_code(["find", *TINY, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert fix in err and err.count("\n") == 0, err
    assert not out.exists()
    assert main(["find", *TINY, "--out", str(out)]) == 0


def test_a_target_that_rounds_to_every_weight_never_empties_the_ticket(tmp_path, capsys):
    # 0.9999999 rounds to every weight. From the CLI the collapse guard (min_density 0) keeps one weight a layer;
    # without a guard the pruner refuses it in one line (tests/test_properties.py).
    out = tmp_path / "run"
    assert main(["find", *TINY, "--target-sparsity", "0.9999999", "--out", str(out)]) == 0
    mask = PruningMask.load(out / "seed_0" / "masks" / "round_01.safetensors")
    assert all(int(mask[n].sum()) >= 1 for n in mask.names)
    torch.manual_seed(0)
    model = MODELS["lenet300"]()
    with pytest.raises(LotteryTicketError, match="prunes every remaining weight"):
        MagnitudePruner(global_pruning=True, min_density=None).prune(model, PruningMask(model), 0.9999999)


# 8. One line where a traceback used to be ----------------------------------------------------------------------------
def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("mine")
    assert main(["find", *TINY, "--out", str(target)]) == 2
    assert "is a file" in one_line_error(capsys) and target.read_text() == "mine"


def test_report_prints_its_table_even_where_it_cannot_write_plots(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "plots").write_text("a file where the plots folder goes")  # writes fail here even as root
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "weights remaining" in printed and "no plots:" in printed


@pytest.mark.parametrize("damage", [
    lambda c: c["experiment"].update(train=[1, 2]),
    lambda c: c["experiment"].update(seeds="zero"),
    lambda c: c["experiment"]["train"].update(lr=0.5),  # a valid value that is not this run's
    lambda c: c.update(experiment=None),
])
def test_a_malformed_or_edited_config_json_is_one_line_with_advice_that_works(tmp_path, capsys, damage):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    damage(config)
    (out / "config.json").write_text(json.dumps(config))
    assert main(["resume", str(out), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert "delete it" not in err and "config.json" in err


def test_bench_inference_batch_size_zero_is_one_line(tmp_path, capsys):
    assert exit_code(["bench-inference", str(tmp_path), "--batch-sizes", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must be >= 1" in err


def test_a_write_into_an_impossible_place_is_one_line(tmp_path):
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(LotteryTicketError, match="could not write"):
        write_json(tmp_path / "blocker" / "sub" / "x.json", {})


# 9. Advice that works: a truncated weights file is retrained, not a dead end -----------------------------------------
def test_a_truncated_trained_weights_file_is_retrained_on_resume(tmp_path):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--rounds", "2", "--out", str(out)]) == 0
    expected = metrics_without_timing(out)
    trained = out / "seed_0" / "trained" / "round_01.safetensors"
    reference_bytes = trained.read_bytes()
    trained.write_bytes(reference_bytes[: len(reference_bytes) // 2])
    (out / "seed_0" / "masks" / "round_02.safetensors").unlink()  # so the next prune must read it
    assert main(["resume", str(out), "--quiet"]) == 0
    assert trained.read_bytes() == reference_bytes and metrics_without_timing(out) == expected


# 10. Only the engine's own record names are read --------------------------------------------------------------------
def test_a_copied_record_is_not_an_extra_row_or_seed(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    rounds = out / "seed_0" / "rounds"
    shutil.copy(rounds / "round_01.json", rounds / "round_01 (copy).json")
    (out / "seed_x").mkdir()
    capsys.readouterr()
    assert main(["report", str(out), "--no-plots"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if "%" in line and not line.startswith("masked:")]
    assert "(1 seed)" in table and len(rows) == 2


# 11. Files follow the user's umask ------------------------------------------------------------------------------------
def test_files_are_created_with_the_users_umask(tmp_path):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert FILE_MODE == 0o666 & ~umask
    for path in [out / "config.json", out / "seed_0" / "masks" / "round_01.safetensors", out / "metrics.csv"]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


# Fuzz: damage one byte of any run-folder file ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "reference"
    assert main(["find", *TINY, "--controls", "reinit", "--checkpoint-every", "100000", "--out", str(out)]) == 0
    return out


def _results(run: Path) -> tuple[list, list]:
    masks = [PruningMask.load(run / "seed_0" / "masks" / f"round_{r:02d}.safetensors") for r in range(2)]
    return metrics_without_timing(run), masks


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaging_any_byte_of_a_run_folder_never_runs_code_never_escapes_and_resume_restores_it(
        finished_run, tmp_path, capsys, data):
    files = sorted(str(p.relative_to(finished_run)) for p in finished_run.rglob("*") if p.is_file() and p.name != ".lock")
    name = data.draw(st.sampled_from(files), label="file")
    run = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    shutil.copytree(finished_run, run)
    target = run / name
    content = bytearray(target.read_bytes())
    offset = data.draw(st.integers(0, len(content) - 1), label="offset")
    content[offset] ^= data.draw(st.integers(1, 255), label="xor")
    target.write_bytes(bytes(content))

    code = main(["resume", str(run), "--quiet"])  # an exception escaping here fails the test
    err = capsys.readouterr().err.strip()
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 0 and name == "config.json", err  # only a damaged config.json stops a resume
        return
    expected_rows, expected_masks = _results(finished_run)
    rows, masks = _results(run)
    assert rows == expected_rows and masks == expected_masks
    for path in run.rglob("*.safetensors"):  # every weights file reads back right, or says it is damaged
        try:
            state = load_state(path)
        except LotteryTicketError:
            continue
        reference = load_state(finished_run / path.relative_to(run))
        assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)


def test_bad_metadata_in_saved_experiments_and_tickets_is_one_clear_error(tmp_path):
    from lottery_ticket import load_experiment
    from lottery_ticket.export.size import load_ticket, save_ticket
    from lottery_ticket.io import read_tensor_metadata, save_tensors
    from lottery_ticket.io import load_tensors as read_tensors

    (tmp_path / "exp").mkdir()
    write_json(tmp_path / "exp" / "experiment.json", {"format": "lottery_ticket.experiment/1", "num_masks": "many"})
    with pytest.raises(LotteryTicketError, match="num_masks='many', not a mask count"):
        load_experiment(tmp_path / "exp")

    torch.manual_seed(0)
    model = MODELS["lenet300"]()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.9)
    mask.apply(model)
    path = tmp_path / "ticket.safetensors"
    save_ticket(path, model, mask, "csr")
    meta = read_tensor_metadata(path)
    meta["layers"] = "{not json"
    save_tensors(path, read_tensors(path), metadata=meta)
    with pytest.raises(LotteryTicketError, match="damaged sparse ticket"):
        load_ticket(path)
