"""scripts/mutation_score.py: the score of a mutmut listing, later verdicts replacing earlier ones, equivalents
counted neither way, and only where the run reached them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def score(tmp_path, *listings):
    paths = []
    for i, text in enumerate(listings):
        path = tmp_path / f"listing{i}.txt"
        path.write_text(text)
        paths.append(str(path))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "mutation_score.py"), *paths],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}


def test_later_verdicts_replace_earlier_ones_and_unreached_equivalents_stay_unrun(tmp_path):
    equivalent = next(line.split(" # ")[0] for line in (ROOT / "tests" / "mutation_equivalent.txt").read_text()
                      .splitlines() if line.startswith("lottery_ticket.mask.") and " # " in line)
    first = ("    lottery_ticket.mask.x_a__mutmut_1: survived\n    lottery_ticket.mask.x_a__mutmut_2: killed\n"
             f"    {equivalent}: not checked\n")
    rows = score(tmp_path, first)
    # killed, survived, no test, other, unrun, equiv., score
    assert rows["lottery_ticket.mask"] == ["1", "1", "0", "0", "1", "0", "50.0%"]
    rows = score(tmp_path, first, "    lottery_ticket.mask.x_a__mutmut_1: killed\n"
                                  f"    lottery_ticket.mask.x_a__mutmut_2: not checked\n    {equivalent}: survived\n")
    assert rows["lottery_ticket.mask"] == ["2", "0", "0", "0", "0", "1", "100.0%"]
