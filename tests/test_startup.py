"""Start-up work a short run should not pay for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lottery_ticket.data import load_dataset

SRC = Path(__file__).resolve().parents[1] / "src"


def test_a_cached_mnist1d_loads_without_importing_the_mnist1d_package(tmp_path):
    load_dataset("mnist1d", tmp_path)  # generates and caches
    probe = ("import sys; from lottery_ticket.data import load_dataset; "
             f"d = load_dataset('mnist1d', {str(tmp_path)!r}); "
             "print(len(d.train), any(m == 'mnist1d' or m.startswith('mnist1d.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3500", "False"]  # mnist1d (and the matplotlib/scipy it imports) never loaded
