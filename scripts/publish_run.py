"""Copy a finished run folder's summary (not its checkpoints) into docs/runs/NAME for the repository.

    python scripts/publish_run.py RUN_DIR [--name NAME]

Copies config.json, summary.json, metrics.csv and plots/*.png, and writes report.txt (the mean ± std table that
`lottery-ticket report` prints). Weights, masks and checkpoints stay in the run folder: they are megabytes per
round and anyone can regenerate them with the command recorded in config.json.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from lottery_ticket.experiment.report import report

DOCS_RUNS = Path(__file__).resolve().parents[1] / "docs" / "runs"


def publish(run_dir: Path, name: str) -> Path:
    out = DOCS_RUNS / name
    (out / "plots").mkdir(parents=True, exist_ok=True)
    table = report(run_dir, plots=True)  # (re)writes run_dir/plots from the final metrics
    for file in ("config.json", "summary.json", "metrics.csv"):
        shutil.copy2(run_dir / file, out / file)
    for png in sorted((run_dir / "plots").glob("*.png")):
        shutil.copy2(png, out / "plots" / png.name)
    table = "\n".join(line for line in table.splitlines() if not line.startswith("wrote "))  # local paths
    (out / "report.txt").write_text(table + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", help="folder name under docs/runs (default: the run folder's name)")
    args = parser.parse_args()
    print(publish(args.run_dir, args.name or args.run_dir.name))


if __name__ == "__main__":
    main()
