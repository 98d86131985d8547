"""Start-up cost of a short run (issue 16): a whole `lottery-ticket find` of two 1-step trainings against a bare
`python -c "import torch"`, interleaved, medians of --repeats.

    python benchmarks/startup.py [--repeats 5]

The run is the issue's: `lottery-ticket find --preset mnist1d-mlp --budget 1it --rounds 1 --eval-every 1it`
into a fresh folder each time (MNIST-1D generated once beforehand into a temporary data folder, so its one-time
generation is not counted). Also reports whether torch._dynamo was imported during the run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lt_startup_"))
    data = tmp / "data"
    run = ["-m", "lottery_ticket.cli", "find", "--preset", "mnist1d-mlp", "--budget", "1it", "--rounds", "1",
           "--eval-every", "1it", "--data-dir", str(data), "--quiet"]
    subprocess.run([sys.executable, *run, "--out", str(tmp / "warm")], check=True, capture_output=True)
    bare, ours = [], []
    for i in range(args.repeats):
        bare.append(wall([sys.executable, "-c", "import torch"]))
        ours.append(wall([sys.executable, *run, "--out", str(tmp / f"run{i}")]))
    probe = (f"import sys; from lottery_ticket.cli import main; main({run[2:] + ['--out', str(tmp / 'probe')]!r}); "
             "print('torch._dynamo' in sys.modules)")
    dynamo = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()[-1]
    b, o = statistics.median(bare), statistics.median(ours)
    print("| what | median s | runs (s) |")
    print("|---|---:|---|")
    print(f"| python -c 'import torch' | {b:.2f} | {', '.join(f'{t:.2f}' for t in bare)} |")
    print(f"| lottery-ticket find (2 trainings of 1 step) | {o:.2f} | {', '.join(f'{t:.2f}' for t in ours)} |")
    print(f"\nthe run costs {o - b:.2f} s more than importing torch; torch._dynamo imported: {dynamo}")


if __name__ == "__main__":
    main()
