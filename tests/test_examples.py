"""The examples and the README's Python snippet run as written."""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_quickstart_runs_as_written(capsys):
    runpy.run_path(str(ROOT / "examples" / "api_quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "random reinit" in out and "one-shot global prune: sparsity 0.500" in out
    assert "fc1 obeys 2:4: True" in out
