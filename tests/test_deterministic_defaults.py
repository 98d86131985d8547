"""Every default deterministic (issue 27 item 2): the default code path does not depend on the machine's timing,
the path each training took is recorded, and `resume` says when the machine's torch or thread count changed."""

import json

from lottery_ticket.cli import main
from lottery_ticket.config import TrainConfig

TINY = ["--preset", "mnist1d-mlp", "--budget", "20it", "--eval-every", "10it", "--rounds", "2", "--rate", "0.9",
        "--quiet"]


def test_the_default_is_the_masked_dense_step_and_no_calibration_runs(tmp_path, monkeypatch):
    from lottery_ticket.training import calibration

    def timed(*args, **kwargs):
        raise AssertionError("the default must not time the machine")

    monkeypatch.setattr(calibration, "time_passes", timed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert TrainConfig().sparse_training == "off"
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    records = [json.loads(p.read_text()) for p in sorted((out / "seed_0" / "rounds").glob("*.json"))]
    assert len(records) == 3 and not any("sparse_layers" in r for r in records)
    assert not calibration.cache_path().exists()


def test_the_path_a_training_took_is_recorded_when_it_is_not_the_default(tmp_path):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--sparse-training", "on", "--out", str(out)]) == 0
    dense = json.loads((out / "seed_0" / "rounds" / "round_00.json").read_text())
    pruned = json.loads((out / "seed_0" / "rounds" / "round_02.json").read_text())
    assert "sparse_layers" not in dense  # nothing pruned yet: every layer dense
    assert set(pruned["sparse_layers"]) and set(pruned["sparse_layers"].values()) <= {"gather", "gemm"}
    config = json.loads((out / "config.json").read_text())
    assert config["experiment"]["train"]["sparse_training"] == "on"


def test_resume_warns_when_the_torch_version_changed(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    config["provenance"]["torch_version"] = "1.13.1"
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["resume", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "was made with torch 1.13.1 then" in err and "may differ in the last digits" in err
    config["provenance"]["torch_version"] = __import__("torch").__version__
    (out / "config.json").write_text(json.dumps(config))
    assert main(["resume", str(out), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err
