"""A run folder is untrusted input (issue 25): every subcommand on hostile folders.

Each attack is a function that damages a copy of a finished run the way an attacker who hands you the folder
could: import paths to a payload with the hash recomputed, `subprocess:run` with arguments, links from inside
the folder to files and folders outside it, a FIFO named like a record, JSON nested 200,000 deep, ill-typed
settings. Every subcommand then runs on it. Whatever the command does, the payload never runs, no byte outside
the folder changes, and the command ends in 0 or in exactly one line.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lottery_ticket.cli import main
from lottery_ticket.experiment.runfolder import experiment_digest

TINY = ["--preset", "mnist1d-mlp", "--budget", "40it", "--eval-every", "20it", "--rounds", "1", "--quiet",
        "--checkpoint-every", "1000"]
COMMANDS = {
    "find": lambda run, other: ["find", *TINY, "--out", str(run)],  # the same command that made the folder
    "report": lambda run, other: ["report", str(run)],
    "compare": lambda run, other: ["compare", str(run), str(other), "--out", str(run / "cmp")],
    "resume": lambda run, other: ["resume", str(run), "--quiet"],
    "instability": lambda run, other: ["instability", str(run), "--rewind-steps", "0", "--points", "2", "--quiet"],
    "bench-inference": lambda run, other: ["bench-inference", str(run), "--batch-sizes", "1"],
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of this user's (signed with the session's key), and a second one to compare it with."""
    base = tmp_path_factory.mktemp("untrusted")
    for name in ("run", "other"):
        assert main(["find", *TINY, "--out", str(base / name)]) == 0
    return base


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """A module on sys.path that, when imported, writes a sentinel file: proof that code from a folder ran."""
    package = tmp_path / "payload_pkg"
    package.mkdir()
    sentinel = tmp_path / "PAYLOAD_RAN"
    module = f"lt_payload_{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:10]}"
    (package / f"{module}.py").write_text(f"from pathlib import Path\nPath({str(sentinel)!r}).write_text('ran')\n"
                                          "def build(**kwargs):\n    raise SystemExit('payload')\n")
    monkeypatch.syspath_prepend(str(package))
    return module, sentinel


def rehash(run: Path, edit) -> None:
    """Edit config.json the way an attacker can: change the settings, then recompute the plain SHA-256."""
    stored = json.loads((run / "config.json").read_text())
    edit(stored)
    stored["experiment_sha256"] = experiment_digest(stored["experiment"])
    (run / "config.json").write_text(json.dumps(stored))


def outside_snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# Attacks: each gets (run copy, a folder outside it holding a victim's files, the payload) -------------------------
def import_payload_model(run, outside, payload):
    rehash(run, lambda c: (c["experiment"].update(model=f"{payload[0]}:build"),
                           c.update(import_roots=[str(outside), str(run)])))


def import_payload_data(run, outside, payload):
    rehash(run, lambda c: c["experiment"].update(dataset=f"{payload[0]}:build"))


def import_payload_loss(run, outside, payload):
    rehash(run, lambda c: c["experiment"]["train"].update(loss=f"{payload[0]}:build"))


def subprocess_run(run, outside, payload):
    touch = ["touch", str(payload[1])]
    rehash(run, lambda c: c["experiment"].update(model="subprocess:run", model_kwargs={"args": touch}))


def builtins_eval_loss(run, outside, payload):
    rehash(run, lambda c: c["experiment"]["train"].update(loss="builtins:exec"))


def linked_run_lock(run, outside, payload):
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(outside / "victim.txt")


def linked_seed_lock(run, outside, payload):
    (run / "seed_0" / ".lock").unlink(missing_ok=True)
    (run / "seed_0" / ".lock").symlink_to(outside / "victim.txt")


def linked_plots(run, outside, payload):
    shutil.rmtree(run / "plots", ignore_errors=True)
    (run / "plots").symlink_to(outside, target_is_directory=True)


def linked_masks(run, outside, payload):
    shutil.rmtree(run / "seed_0" / "masks")
    (run / "seed_0" / "masks").symlink_to(outside, target_is_directory=True)
    (run / "seed_0" / "rounds" / "round_01.json").unlink()  # so resume has a mask to write


def linked_seed_folder(run, outside, payload):
    shutil.rmtree(run / "seed_0")
    (run / "seed_0").symlink_to(outside, target_is_directory=True)


def linked_instability(run, outside, payload):
    (run / "instability").symlink_to(outside, target_is_directory=True)


def linked_summary(run, outside, payload):
    (run / "summary.json").unlink()
    (run / "summary.json").symlink_to(outside / "victim.txt")


def deep_config(run, outside, payload):
    (run / "config.json").write_text("[" * 200_000 + "]" * 200_000)


def deep_record(run, outside, payload):
    (run / "seed_0" / "rounds" / "round_01.json").write_text('{"a":' * 200_000 + "1" + "}" * 200_000)


def config_not_an_object(run, outside, payload):
    (run / "config.json").write_text("[1, 2, 3]")


def ill_typed(field, value):
    def attack(run, outside, payload):
        def edit(c):
            target = c["experiment"]
            *path, last = field.split(".")
            for part in path:
                target = target[part]
            target[last] = value
        rehash(run, edit)
    attack.__name__ = f"ill_typed_{field}"
    return attack


def import_roots_not_a_list(run, outside, payload):
    rehash(run, lambda c: c.update(import_roots=5))


ATTACKS = [import_payload_model, import_payload_data, import_payload_loss, subprocess_run, builtins_eval_loss,
           linked_run_lock, linked_seed_lock, linked_plots, linked_masks, linked_seed_folder, linked_instability,
           linked_summary, deep_config, deep_record, config_not_an_object, import_roots_not_a_list,
           ill_typed("model_kwargs", [1, 2]), ill_typed("prune", None), ill_typed("train.lr", "0.1"),
           ill_typed("train.augment", "no"), ill_typed("train.compile", "yes"), ill_typed("seeds", "0"),
           ill_typed("model_kwargs", {"num_classes": -3}), ill_typed("train.momentum", -1.0),
           ill_typed("prune.layer_rates", {"fc1.weight": "half"})]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.__name__)
def test_no_payload_runs_nothing_outside_changes_and_each_ends_in_one_line(finished, tmp_path, payload, capsys,
                                                                           attack, command):
    run, outside = tmp_path / "run", tmp_path / "outside"
    shutil.copytree(finished / "run", run, symlinks=True)
    outside.mkdir()
    (outside / "victim.txt").write_text("the user's own file\n")
    (outside / ".round_01.safetensors.abcdefgh.tmp").write_text("looks like our orphan, is not ours\n")
    attack(run, outside, payload)
    before = outside_snapshot(outside)
    path_before = list(sys.path)

    code = main(COMMANDS[command](run, finished / "other"))

    err = capsys.readouterr().err.strip()
    assert not payload[1].exists(), "code named by the folder ran"
    assert outside_snapshot(outside) == before, "a file outside the run folder changed"
    added = [p for p in sys.path if p not in path_before]  # (a lazily imported library may add its own vendor folder)
    assert not [p for p in added if p.startswith(str(tmp_path))], "the folder put something on sys.path"
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.count("\n") == 0 and err.startswith("lottery-ticket: error: "), err
    if attack.__name__.startswith(("import_payload", "subprocess", "builtins")) and command in ("find", "resume",
                                                                                                "instability"):
        assert code == 2 and ("--trust-code" in err or "standard-library" in err or "different experiment" in err), err


def test_a_fifo_named_like_a_record_does_not_hang_report_or_resume(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished / "run", run)
    record = run / "seed_0" / "rounds" / "round_01.json"
    record.unlink()
    os.mkfifo(record)
    os.mkfifo(run / "seed_0" / "controls.json")  # not a name of ours: never opened
    for args in (["report", str(run), "--no-plots"], ["resume", str(run), "--quiet"]):
        result = subprocess.run([sys.executable, "-m", "lottery_ticket", *args], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode in (0, 2), result.stderr
        assert result.returncode == 0 or result.stderr.strip().count("\n") == 0, result.stderr


def test_your_own_folder_runs_your_code_and_a_copy_with_another_import_does_not(tmp_path, payload, capsys):
    """The signature: a folder made here verifies; the same folder with its import path swapped does not, though
    its plain hash was recomputed; --trust-code is the one way past, and it names what it would import."""
    mine = tmp_path / "mine"
    args = ["--model", "examples.mnist1d_attention:build", "--data", "examples.mnist1d_attention:data",
            "--budget", "20it", "--eval-every", "10it", "--rounds", "1", "--quiet"]
    assert main(["find", *args, "--out", str(mine)]) == 0
    stored = json.loads((mine / "config.json").read_text())
    assert len(stored["signature"]) == 64
    shutil.rmtree(mine / "seed_0" / "rounds")
    assert main(["resume", str(mine), "--quiet"]) == 0  # signed by this user: no flag needed
    capsys.readouterr()

    theirs = tmp_path / "theirs"
    shutil.copytree(mine, theirs)
    rehash(theirs, lambda c: c["experiment"].update(model=f"{payload[0]}:build"))
    assert main(["resume", str(theirs), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"model '{payload[0]}:build'" in err and "--trust-code" in err and err.count("\n") == 0, err
    assert not payload[1].exists()
    with pytest.raises(SystemExit):  # the user read the code and trusts it: now it is imported, and it runs
        main(["resume", str(theirs), "--quiet", "--trust-code"])
    assert payload[1].read_text() == "ran"


def test_a_folder_signed_under_another_key_needs_trust(tmp_path, monkeypatch, capsys):
    mine = tmp_path / "mine"
    args = ["--model", "examples.mnist1d_attention:build", "--data", "examples.mnist1d_attention:data",
            "--budget", "20it", "--eval-every", "10it", "--rounds", "1", "--quiet"]
    assert main(["find", *args, "--out", str(mine)]) == 0
    monkeypatch.setenv("LOTTERY_TICKET_KEY", str(tmp_path / "colleague.key"))  # someone else opens it
    assert main(["resume", str(mine), "--quiet"]) == 2
    assert "not signed with your key" in capsys.readouterr().err
    assert main(["resume", str(mine), "--quiet", "--trust-code"]) == 0


def test_the_key_is_created_once_private_and_a_damaged_key_is_one_line(tmp_path, monkeypatch):
    from lottery_ticket import LotteryTicketError
    from lottery_ticket.experiment import trust

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    signature = trust.sign({"a": 1})
    path = tmp_path / "cfg" / "lottery-ticket" / "signing.key"
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_bytes()) == trust.KEY_BYTES
    assert trust.sign({"a": 1}) == signature and trust.verifies({"a": 1}, signature)
    assert not trust.verifies({"a": 2}, signature) and not trust.verifies({"a": 1}, None)
    path.write_bytes(b"short")
    with pytest.raises(LotteryTicketError, match="damaged"):
        trust.sign({"a": 1})


def test_built_in_models_need_no_trust_and_report_imports_nothing(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished / "run", run)
    rehash(run, lambda c: c.pop("signature"))  # no signature at all: a built-in model still resumes
    (run / "seed_0" / "rounds" / "round_01.json").unlink()
    assert main(["resume", str(run), "--quiet"]) == 0
    before = set(sys.modules)
    assert main(["report", str(run), "--no-plots"]) == 0
    assert not {m for m in set(sys.modules) - before if not m.startswith(("matplotlib", "PIL"))}


def test_import_roots_of_a_trusted_folder_go_last_on_sys_path_and_report_adds_none(finished, tmp_path, monkeypatch):
    from lottery_ticket.experiment.runfolder import RunFolder, read_run_config, signed_part
    from lottery_ticket.experiment.trust import sign

    run = tmp_path / "run"
    shutil.copytree(finished / "run", run)
    root = tmp_path / "their_code"
    root.mkdir()

    def edit(c):
        c["experiment"]["model"] = "their_nets:build"
        c["import_roots"] = [str(root)]
        c["signature"] = sign(signed_part(c["experiment"], c["import_roots"]))  # as if this user had made it

    rehash(run, edit)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert read_run_config(RunFolder(run)).model == "their_nets:build"  # reading: nothing added
    assert str(root) not in sys.path
    read_run_config(RunFolder(run), run_code=True)  # signed: its root is appended, after every installed package
    assert sys.path[-1] == str(root)
    rehash(run, lambda c: c.update(import_roots=[str(root), str(run)]))  # roots changed: the signature no longer holds
    with pytest.raises(Exception, match="--trust-code"):
        read_run_config(RunFolder(run), run_code=True)


def test_an_out_that_is_itself_a_link_is_the_users_choice_and_works(tmp_path, capsys):
    real = tmp_path / "scratch" / "run"
    real.parent.mkdir()
    (tmp_path / "run").symlink_to(real.parent, target_is_directory=True)  # e.g. ~/runs -> /scratch/me
    link_out = tmp_path / "run" / "run"
    assert main(["find", *TINY, "--out", str(link_out)]) == 0
    (real / "seed_0" / "rounds" / "round_01.json").unlink()
    assert main(["resume", str(link_out), "--quiet"]) == 0
    direct = tmp_path / "direct"
    direct.symlink_to(real, target_is_directory=True)  # the run folder itself a link
    (real / "seed_0" / "rounds" / "round_01.json").unlink()
    assert main(["resume", str(direct), "--quiet"]) == 0
    assert (real / "seed_0" / "rounds" / "round_01.json").is_file()
