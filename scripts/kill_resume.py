"""Kill `lottery-ticket find` with SIGKILL at random moments, resume each time, and compare with a clean run.

    python scripts/kill_resume.py [--kills 20] [--seed 0]

Outcome required: the final masks are byte-identical and the metrics (all but wall-clock seconds) equal to an
uninterrupted run with the same seed, and no temporary or half-written file is left behind.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["--preset", "mnist1d-mlp", "--budget", "400it", "--eval-every", "100it", "--rounds", "3",
        "--controls", "reinit,random-prune", "--checkpoint-every", "25", "--quiet"]


def find(out: Path) -> list[str]:
    return [sys.executable, "-m", "lottery_ticket", "find", *ARGS, "--out", str(out)]


def fingerprint(run: Path) -> tuple[dict, dict]:
    rows = {}
    for path in sorted(run.rglob("*.json")):
        if path.parent.name in ("rounds", "controls"):
            row = json.loads(path.read_text())
            row.pop("train_seconds", None)
            rows[str(path.relative_to(run))] = row
    masks = {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("masks/*.safetensors"))}
    return rows, masks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        reference, crashed = Path(tmp) / "reference", Path(tmp) / "crashed"
        start = time.perf_counter()
        subprocess.run(find(reference), check=True, stdout=subprocess.DEVNULL)
        clean_seconds = time.perf_counter() - start
        kills = 0
        while kills < args.kills:
            proc = subprocess.Popen(find(crashed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, max(1.0, clean_seconds / 4)))
            if proc.poll() is not None:
                break  # finished before the kill: the run is complete
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            print(f"kill {kills}: {len(list(crashed.rglob('rounds/*.json')))} rounds done")
        subprocess.run(find(crashed), check=True, stdout=subprocess.DEVNULL)
        leftovers = [p for p in crashed.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".part")]
        for p in leftovers:
            print(f"leftover: {p.relative_to(crashed)}")
        same = fingerprint(crashed) == fingerprint(reference)
        print(f"{kills} kills; identical masks and metrics: {same}; leftover temp files: {len(leftovers)}")
        return 0 if same and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
