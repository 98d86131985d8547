"""metrics.csv and summary.json, rebuilt from the per-stage JSON files (so they are always consistent)."""

from __future__ import annotations

import csv
import io
import statistics
from typing import Any

from ..io import atomic_write_text, read_json, write_json
from ..errors import LotteryTicketError
from ..imp.records import unseal
from ..imp.store import valid_record
from ..scores import ACCURACY, score_of_record
from .runfolder import CONTROL_FILE, CONTROL_RECORDS, ROUND_FILE, RunFolder

METRIC_COLUMNS = ["seed", "round", "kind", "weights_remaining_pct", "sparsity", "eligible_sparsity", "num_remaining", "accuracy",
                  "early_stop_iteration", "early_stop_test_accuracy", "iterations", "train_seconds"]
KINDS = ("ticket", *CONTROL_RECORDS)  # F&C's two controls first, then the pruning-at-init baselines and ablations


def collect_rows(folder: RunFolder) -> list[dict[str, Any]]:
    """Every valid record of the run: only the exact file names the engine writes ('round_01 (copy).json' is not
    one), and only records that are what their name says (a damaged one is left for `resume` to redo)."""
    rows = []
    for sf in folder.seeds():
        for sub, pattern in (("rounds", ROUND_FILE), ("controls", CONTROL_FILE)):
            for path in sorted((sf.root / sub).glob("*.json")):
                m = pattern.match(path.name)
                if not m:
                    continue
                kind = m.group(1) if sub == "controls" else None
                level = int(m.group(m.lastindex))
                try:
                    row = unseal(read_json(path))
                except LotteryTicketError:
                    continue
                expected = kind or ("dense" if level == 0 else "ticket")
                if valid_record(row, sf.seed_number, expected, level):
                    rows.append(row)
    rows.sort(key=lambda r: (r["seed"], r["round"], r["kind"]))
    return rows


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of the score (accuracy, or the run's metric) and early-stop iteration, per round and
    kind. The score is the one the records state (scores.py); a record stating another one is left out."""
    score = score_of_record(rows[0]) if rows else ACCURACY
    key = score.key
    levels: dict[int, dict[str, Any]] = {}
    for row in rows:
        if score_of_record(row) != score:
            continue
        kind = "ticket" if row["kind"] in ("dense", "ticket") else row["kind"]
        level = levels.setdefault(row["round"], {"round": row["round"], "weights_remaining_pct": row["weights_remaining_pct"],
                                                 "eligible_sparsity": row.get("eligible_sparsity")})
        level.setdefault(kind, {key: [], "early_stop_iteration": []})
        level[kind][key].append(row[key])
        if row.get("early_stop_iteration") is not None:
            level[kind]["early_stop_iteration"].append(row["early_stop_iteration"])
    out = []
    for r in sorted(levels):
        level = levels[r]
        entry = {"round": r, "weights_remaining_pct": level["weights_remaining_pct"], "eligible_sparsity": level["eligible_sparsity"]}
        for kind in KINDS:
            if kind in level:
                entry[kind] = {k: _mean_std(v) for k, v in level[kind].items() if v}
        out.append(entry)
    dense = out[0]["ticket"][key] if out and "ticket" in out[0] else None
    selection = next((r["selection"] for r in rows if r.get("round") == 0 and "selection" in r), None)
    return {"levels": out, f"dense_{key}": dense, "seeds": sorted({r["seed"] for r in rows}),
            **({"selection": selection} if selection else {}), **score.describe()}


def write_metrics_and_summary(folder: RunFolder, config) -> dict[str, Any]:
    rows = collect_rows(folder)
    buffer = io.StringIO()
    key = score_of_record(rows[0]).key if rows else "accuracy"
    columns = [key if c == "accuracy" else f"early_stop_test_{key}" if c == "early_stop_test_accuracy" else c
               for c in METRIC_COLUMNS]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    atomic_write_text(folder.metrics, buffer.getvalue())
    summary = {"format": "lottery_ticket.summary/1", "model": config.model, "dataset": config.dataset,
               "preset": config.preset, **summarize(rows)}
    write_json(folder.summary, summary)
    return summary
