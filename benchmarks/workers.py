"""Wall time of independent trainings in parallel: `lottery-ticket find --workers N` vs `--workers 1`.

    python benchmarks/workers.py [--preset lenet300-mnist] [--budget 1000it] [--rounds 2] [--data-dir DIR]

Seeds are independent, so `--workers N` trains N of them at once in N processes (one thread each).
Both runs are the same experiment (2 seeds x both controls) into fresh folders, timed end to end as a
user sees it (process start, data loading and all), one after the other in one invocation; read the ratios.
The middle row is one process with one thread: what each worker gets.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], out: Path, workers: int, env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lottery_ticket", "find", *args, "--workers", str(workers), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lenet300-mnist")
    parser.add_argument("--budget", default="1000it")
    parser.add_argument("--rounds", default="2")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    a = parser.parse_args()
    args = ["--preset", a.preset, "--budget", a.budget, "--eval-every", a.budget, "--rounds", a.rounds,
            "--seeds", a.seeds, "--controls", "reinit,random-prune", "--quiet"]
    if a.data_dir:
        args += ["--data-dir", a.data_dir]
    with tempfile.TemporaryDirectory() as tmp:
        one = run(args, Path(tmp) / "one", 1)
        one_thread = run(args, Path(tmp) / "one-thread", 1, {"OMP_NUM_THREADS": "1"})
        many = run(args, Path(tmp) / "many", a.workers)
    print(f"{a.preset}, {a.budget}/training, {a.rounds} rounds, seeds {a.seeds}, both controls; "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print("| run | wall time (s) | --workers 1 / this |")
    print("|---|---|---|")
    print(f"| --workers 1 (torch's default threads: {os.cpu_count()}) | {one:.1f} | 1.00x |")
    print(f"| --workers 1, OMP_NUM_THREADS=1 | {one_thread:.1f} | {one / one_thread:.2f}x |")
    print(f"| --workers {a.workers} (one thread each) | {many:.1f} | {one / many:.2f}x |")


if __name__ == "__main__":
    main()
