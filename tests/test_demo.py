"""The demo: `make demo` runs `lottery-ticket demo`, and that command prints the EXPERIMENT SUMMARY with real numbers."""

import re
from pathlib import Path

from lottery_ticket.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_runs_the_cli_demo_command():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndemo:")[1].split("\n\n")[0]
    assert "lottery-ticket demo" in recipe
    assert "make demo" in (ROOT / "README.md").read_text()


def test_demo_prints_the_summary_with_a_ticket_that_beats_the_random_ticket(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--quiet"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("EXPERIMENT SUMMARY"):]
    for label in ("Dense network:", "Winning ticket:", "Random ticket:", "GAP:"):
        assert label in block
    dense = float(re.search(r"Dense network:.*test accuracy ([\d.]+)%", block).group(1))
    ticket = float(re.search(r"Winning ticket:.*test accuracy ([\d.]+)%", block).group(1))
    random = float(re.search(r"Random ticket:.*test accuracy ([\d.]+)%", block).group(1))
    retained = float(re.search(r"([\d.]+)% retained", block).group(1))
    assert retained < 25 and ticket > random + 2 and ticket > dense - 2
    assert (tmp_path / "demo" / "summary.json").is_file()
