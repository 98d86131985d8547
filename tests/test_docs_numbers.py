"""Every number traceable (issue 27 item 1): the result tables in README.md and docs/ equal what the committed run
folders give, cell by cell, and the README's demo block is the committed demo output."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "runs"
KIND = {"ticket": "ticket", "IMP ticket": "ticket", "random reinit": "random_reinit", "random pruning": "random_pruning",
        "SNIP": "snip", "GraSP": "grasp", "SynFlow": "synflow", "magnitude at init": "magnitude_init",
        "layerwise shuffle": "shuffle_layerwise", "test acc: ticket": "ticket",
        "test perplexity: ticket": "ticket", "mnist1d-mlp ticket": "ticket", "mnist1d-cnn ticket": "ticket"}

# (document, a line that starts the table, run folder): every row and known column of the table is checked
TABLES = [
    ("README.md", "| weights remaining | ticket | random reinit | random pruning |", "lenet300-mnist-10k-3seeds"),
    ("docs/medium_article.md", "| weights remaining | ticket | random reinit | random pruning |",
     "lenet300-mnist-10k-3seeds"),
    ("docs/medium_article.md", "| weights remaining | ticket | random reinit | random pruning |\n|---:|---:|---:|---:|\n"
                               "| 100 % (dense) | 88.22", "lenet300-fashion-10k-3seeds"),
    ("docs/pruning_at_init.md", "| weights remaining | IMP ticket |", "lenet300-mnist-at-init-5k"),
    ("docs/byo.md", "| weights remaining | ticket | random reinit |", "byo-attention-mnist1d"),
    ("docs/transformer_lm.md", "weights remaining  eligible pruned  test perplexity: ticket", "char-lm-fortunes"),
    ("docs/huggingface.md", "weights remaining  eligible pruned  test acc: ticket", "huggingface-gpt2-mnist1d"),
    ("docs/models.md", "| weights remaining | mnist1d-mlp ticket |", "mnist1d-mlp-seed0"),
    ("docs/models.md", "| weights remaining | mnist1d-cnn ticket |", "mnist1d-cnn-seed0"),
]


def table_at(text: str, start: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, data rows) of the pipe or plain-text table whose header begins at `start`."""
    lines = text[text.index(start):].splitlines()
    header, body = lines[0], lines[1:]
    if header.startswith("|"):
        split = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]
        rows = []
        for line in body:
            if not line.startswith("|"):
                break
            if not set(line) <= set("|-: "):
                rows.append(split(line))
    else:
        split = lambda line: re.split(r"\s{2,}", line.strip())
        rows = []
        for line in body:
            if not line.strip() or line.startswith("```"):
                break
            if not set(line.strip()) <= set("- "):
                rows.append(split(line))
    return split(header), rows


def cell(stats: dict | None, scale: float, digits: int) -> str:
    if stats is None:
        return ""
    text = f"{scale * stats['mean']:.{digits}f}"
    return text + (f" ± {scale * stats['std']:.{digits}f}" if stats["n"] > 1 else "")


@pytest.mark.parametrize("doc,start,run", TABLES, ids=[f"{d}:{r}" for d, _, r in TABLES])
def test_a_published_table_equals_its_run_folder(doc, start, run):
    summary = json.loads((RUNS / run / "summary.json").read_text())
    score = summary.get("score", {"key": "accuracy", "percent": True})
    scale, digits = (100.0, 2) if score["percent"] else (1.0, 3)
    header, rows = table_at((ROOT / doc).read_text(), start)
    assert rows, f"{doc}: no rows under {start!r}"
    levels = {round(lv["weights_remaining_pct"], 1): lv for lv in summary["levels"]}
    checked = 0
    for row in rows:
        pct = round(float(re.match(r"([\d.]+)\s*%", row[0]).group(1)), 1)
        level = levels.get(pct) or next(lv for key, lv in levels.items() if abs(key - pct) <= 0.05 + 1e-9)
        for name, value in zip(header, row):
            kind = KIND.get(name)
            if kind is None:
                continue
            value = value.replace("*", "")
            expected = cell(level.get(kind, {}).get(score["key"]), scale, digits)
            if value in ("", "-", "–"):
                assert expected == "" or (kind != "ticket" and level["round"] == 0), (doc, pct, name)
                continue
            assert value == expected, f"{doc}: {name} at {pct} % is {value}, the run folder gives {expected}"
            checked += 1
    assert checked >= len(rows)


def test_the_readme_demo_block_is_the_committed_demo_output():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("EXPERIMENT SUMMARY") - 65:]
    block = block[:block.index("```")].strip()
    for output in ("demo.txt", "demo_fresh_clone.txt"):  # make demo here, and in a fresh clone with its own .venv
        assert block in (ROOT / "docs" / "bench" / output).read_text(), output


def test_the_cifar_smoke_demo_block_in_results_md_is_the_committed_output():
    results = (ROOT / "docs" / "results.md").read_text()
    section = results[results.index("## CIFAR-10, Conv-4"):]
    block = section[section.index("```\n") + 4:]
    block = block[:block.index("```")].strip()
    assert "EXPERIMENT SUMMARY" in block and block in (ROOT / "docs" / "bench" / "demo_cifar10.txt").read_text()
