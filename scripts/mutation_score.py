"""The mutation score from `mutmut results --all true`, per module and in total.

    python scripts/mutation_score.py mutation-results.txt
    python scripts/mutation_score.py full-run.txt rerun-of-survivors.txt   # later verdicts replace earlier ones

mutmut forgets every verdict when a rerun changes the test selection, so a rerun of only the survivors (with
`mutmut run NAME...`) lists the rest as "not checked": given several listings, a later file's verdict replaces an
earlier one's, and "not checked" never replaces a verdict. A kill stays valid because tests are only added.

Mutants listed in tests/mutation_equivalent.txt (one name per line, then ' # ' and the reason) are equivalent:
no test can tell them from the original, so they count neither as killed nor as survivors.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$")
EQUIVALENT_FILE = Path(__file__).resolve().parents[1] / "tests" / "mutation_equivalent.txt"


def equivalents() -> dict[str, str]:
    if not EQUIVALENT_FILE.is_file():
        return {}
    out = {}
    for line in EQUIVALENT_FILE.read_text().splitlines():
        name, _, reason = line.partition(" # ")
        if name.strip() and not name.startswith("#"):
            out[name.strip()] = reason.strip()
    return out


def module_of(mutant: str) -> str:
    # mutmut 3 names a mutant MODULE.x_FUNCTION__mutmut_N, or MODULE.xǁCLASSǁMETHOD__mutmut_N for a method.
    m = re.match(r"^(.*?)\.x[_ǁ]", mutant)
    return m.group(1) if m else mutant.rsplit(".", 1)[0]


def verdicts(paths: list[str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            m = LINE.match(line)
            if m and (m.group(2) != "not checked" or m.group(1) not in merged):
                merged[m.group(1)] = m.group(2)
    return merged


def main(paths: list[str]) -> int:
    skip = equivalents()
    per_module: dict[str, Counter] = defaultdict(Counter)
    for name, status in verdicts(paths).items():
        if name in skip and status != "not checked":  # an equivalent this run did not reach is unrun, as any
            status = "equivalent"
        per_module[module_of(name)][status] += 1
    if not per_module:
        print(f"no mutants in {', '.join(paths)}: did `mutmut run` finish?")
        return 1
    total = Counter()
    print(f"{'module':40s} {'killed':>7s} {'survived':>9s} {'no test':>8s} {'other':>6s} {'unrun':>6s} {'equiv.':>7s} {'score':>7s}")
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        print(row(module, counts))
    print(row("total", total))
    return 0


def row(name: str, c: Counter) -> str:
    """Score = killed / mutants tested; a mutant no selected test reaches counts as a survivor, one the run
    did not reach yet ("not checked") counts neither way but is shown."""
    # A mutant that makes the tests run past mutmut's timeout (an endless training loop) is detected: killed.
    killed, survived, no_test = c["killed"] + c["timeout"], c["survived"], c["no tests"]
    equivalent, unrun = c["equivalent"], c["not checked"]
    other = sum(c.values()) - killed - survived - no_test - equivalent - unrun  # suspicious, segfaults
    scored = killed + survived + no_test + other
    score = f"{100 * killed / scored:.1f}%" if scored else "-"
    return f"{name:40s} {killed:7d} {survived:9d} {no_test:8d} {other:6d} {unrun:6d} {equivalent:7d} {score:>7s}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
