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


def test_a_short_run_never_imports_torch_dynamo(tmp_path):
    # torch.optim's step() imports torch._dynamo (~1.7 s); our fused optimizers run the same kernels without it.
    load_dataset("mnist1d", tmp_path)
    probe = ("import sys; from lottery_ticket.cli import main; "
             f"main(['find', '--preset', 'mnist1d-mlp', '--budget', '2it', '--rounds', '1', '--eval-every', '1it', "
             f"'--data-dir', {str(tmp_path)!r}, '--out', {str(tmp_path / 'run')!r}, '--quiet']); "
             "print('dynamo', 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["dynamo", "False"]
    assert (tmp_path / "run" / "seed_0").is_dir()
