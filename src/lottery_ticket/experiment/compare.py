"""Comparing runs: one table and one plot of test accuracy vs weights remaining, one line per run folder.

Each run is read with the functions `report` uses (load_summary, read_run_config), so a run's numbers here are
its report's numbers. Runs are labelled by what differs between their configs (see run_labels).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import LotteryTicketError
from ..scores import ACCURACY, Score, score_of_record
from ..io import atomic_write_bytes, atomic_write_text
from .report import KIND_LABELS, level_ticks, load_summary, stats_cell, text_table
from .results import KINDS
from .runfolder import read_run_config

CSV_COLUMNS = ["label", "run_dir", "kind", "round", "weights_remaining_pct", "accuracy_mean", "accuracy_std", "n"]


# --- labels: pure functions -------------------------------------------------------------------------------------

def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as dotted keys: {'train': {'lr': 0.001}} -> {'train.lr': 0.001}. An empty dict is a leaf."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value) if value else "[]"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True) if value else "{}"
    return json.dumps(value)  # numbers as JSON writes them: 0.001, 1e-05, 20


_UNSET = "\0unset"  # a key a run lacks; differs from any value, shown as 'unset'


def run_labels(configs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """One label per run: the dotted keys whose values differ across the runs, as 'key=value, key=value'.

    A key one run lacks counts as differing (shown as 'unset'). When nothing differs the labels are the `names`
    (the folder names). Runs that would share a label get their name appended, so every label is unique.
    """
    if len(configs) != len(names):
        raise ValueError("one name per config")
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    differing = [k for k in keys if len({_show(f[k]) if k in f else _UNSET for f in flat}) > 1]
    if not differing:
        labels = [str(n) for n in names]
    else:
        labels = [", ".join(f"{k}={_show(f[k]) if k in f else 'unset'}" for k in differing) for f in flat]
    repeated = {label for label in labels if labels.count(label) > 1}
    return [f"{label} ({name})" if label in repeated else label for label, name in zip(labels, names)]


# --- loading and matching ----------------------------------------------------------------------------------------

@dataclass
class ComparedRun:
    run_dir: str
    label: str
    dataset: str
    seeds: list[int]
    levels: list[dict[str, Any]]  # summarize()'s levels, as report has them
    score: Score = ACCURACY  # what the levels hold (scores.py)


def load_runs(run_dirs: Sequence[str | Path], kind: str = "ticket") -> list[ComparedRun]:
    if kind not in KINDS:
        raise LotteryTicketError(f"kind {kind!r} is unknown; choose from {', '.join(KINDS)}")
    if len(run_dirs) < 2:
        raise LotteryTicketError(f"compare needs at least 2 run folders, got {len(run_dirs)}; "
                                 "pass e.g. `lottery-ticket compare runs/a runs/b`")
    seen: dict[Path, str] = {}
    for run_dir in run_dirs:
        resolved = Path(run_dir).resolve()
        if resolved in seen:
            raise LotteryTicketError(f"{run_dir} is given twice (as {seen[resolved]} too); pass each run folder once")
        seen[resolved] = str(run_dir)
    loaded = []
    for run_dir in run_dirs:
        folder, summary, _ = load_summary(run_dir)  # not a run folder / no finished rounds: report's own errors
        loaded.append((str(run_dir), read_run_config(folder), summary))
    datasets = {config.dataset for _, config, _ in loaded}
    if len(datasets) > 1:
        which = ", ".join(f"{d} ({', '.join(r for r, c, _ in loaded if c.dataset == d)})" for d in sorted(datasets))
        raise LotteryTicketError(f"the runs use different datasets: {which}; accuracies on different test sets "
                                 "do not compare, so pass runs of one dataset")
    scores = {score_of_record(summary) for _, _, summary in loaded}
    if len(scores) > 1:
        which = ", ".join(f"{r}: {score_of_record(summary).key}" for r, _, summary in loaded)
        raise LotteryTicketError(f"the runs are scored differently ({which}); compare runs of one metric")
    lacking = [r for r, _, summary in loaded if not any(kind in lv for lv in summary["levels"])]
    if lacking:
        # A control's --controls name: its record name with dashes (snip, shuffle-layerwise), but for F&C's two.
        control = None if kind == "ticket" else {"random_reinit": "reinit", "random_pruning": "random-prune"}.get(
            kind, kind.replace("_", "-"))
        hint = f"; run them with `--controls {control}`, or compare another --kind" if control else ""
        raise LotteryTicketError(f"no {kind} results in {', '.join(lacking)}{hint}")
    names = [Path(r).name or r for r, _, _ in loaded]
    if len(set(names)) < len(names):  # runs/a/run vs runs/b/run: the paths as given tell them apart
        names = [r for r, _, _ in loaded]
    labels = run_labels([config.to_dict() for _, config, _ in loaded], names)
    return [ComparedRun(r, label, config.dataset, summary["seeds"], summary["levels"], score_of_record(summary))
            for (r, config, summary), label in zip(loaded, labels)]


def level_key(weights_remaining_pct: float) -> float:
    """Levels of different runs are the same row when their weights remaining agree to 0.1 %."""
    return round(weights_remaining_pct, 1)


def _keyed(run: ComparedRun) -> dict[tuple[float, int], dict[str, Any]]:
    """A run's levels by (rounded weights remaining, occurrence): two levels of one run that round alike stay two rows."""
    out: dict[tuple[float, int], dict[str, Any]] = {}
    counts: dict[float, int] = {}
    for level in run.levels:
        key = level_key(level["weights_remaining_pct"])
        counts[key] = counts.get(key, 0) + 1
        out[(key, counts[key] - 1)] = level
    return out


def comparison_rows(runs: Sequence[ComparedRun], kind: str = "ticket") -> list[tuple[tuple[float, int], list[dict | None]]]:
    """Rows of the table, densest first: (level key, per run the accuracy stats at that level or None)."""
    keyed = [_keyed(run) for run in runs]
    keys = sorted({k for levels in keyed for k in levels}, key=lambda k: (-k[0], k[1]))
    score = runs[0].score.key
    return [(key, [levels[key].get(kind, {}).get(score) if key in levels else None for levels in keyed])
            for key in keys]


# --- outputs -----------------------------------------------------------------------------------------------------

def format_comparison(runs: Sequence[ComparedRun], kind: str = "ticket") -> str:
    dense = {k for run, levels in ((r, _keyed(r)) for r in runs) for k, lv in levels.items() if lv["round"] == 0}
    header = ["weights remaining"] + [run.label for run in runs]
    score = runs[0].score
    lines = []
    for key, stats in comparison_rows(runs, kind):
        lines.append([f"{key[0]:.1f}%" + (" (dense)" if key in dense else "")]
                     + [stats_cell(s, score.scale(), score.fmt()) for s in stats])

    title = f"test {score.label()} of the {KIND_LABELS[kind]} on {runs[0].dataset}, mean ± std over seeds"
    out = [title, *text_table(header, lines)]
    out += [f"  {run.label}: {run.run_dir} (seeds {','.join(map(str, run.seeds))})" for run in runs]
    return "\n".join(out)


def comparison_csv(runs: Sequence[ComparedRun], kind: str = "ticket") -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        for level in run.levels:
            stats = level.get(kind, {}).get(run.score.key)
            if stats:  # the csv's accuracy_* columns hold the runs' score (accuracy unless --metric said otherwise)
                writer.writerow({"label": run.label, "run_dir": run.run_dir, "kind": kind, "round": level["round"],
                                 "weights_remaining_pct": repr(level["weights_remaining_pct"]),
                                 "accuracy_mean": repr(stats["mean"]), "accuracy_std": repr(stats["std"]),
                                 "n": stats["n"]})
    return buffer.getvalue()


def comparison_png(runs: Sequence[ComparedRun], kind: str = "ticket") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    everywhere = []
    for run in runs:
        key, scale = run.score.key, run.score.scale()
        pts = [(lv["weights_remaining_pct"], lv[kind][key]) for lv in run.levels if kind in lv and key in lv[kind]]
        if kind != "ticket":  # controls start from the dense point, as in report's plots
            dense = run.levels[0].get("ticket", {}).get(key)
            if dense and pts:
                pts = [(run.levels[0]["weights_remaining_pct"], dense)] + pts
        xs = [p[0] for p in pts]
        ys = [scale * p[1]["mean"] for p in pts]
        es = [scale * p[1]["std"] for p in pts]
        line = ax.errorbar(xs, ys, yerr=es, label=run.label, capsize=3, marker="o")
        ax.fill_between(xs, [y - e for y, e in zip(ys, es)], [y + e for y, e in zip(ys, es)],
                        color=line[0].get_color(), alpha=0.15, linewidth=0)
        everywhere += xs
    ax.set_xscale("log")
    ax.set_xticks(*level_ticks(everywhere))
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("% of weights remaining (log scale)")
    score = runs[0].score
    ax.set_ylabel(f"test {score.label()}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"{KIND_LABELS[kind]} on {runs[0].dataset} (mean ± std over seeds)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def compare(run_dirs: Sequence[str | Path], out: str | Path = "compare", kind: str = "ticket") -> str:
    """Print-ready table; writes OUT/compare.csv and OUT/compare.png."""
    runs = load_runs(run_dirs, kind)
    text = format_comparison(runs, kind)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LotteryTicketError(f"--out {out} is a file, not a folder; choose another --out")
    written = [atomic_write_text(out / "compare.csv", comparison_csv(runs, kind)),
               atomic_write_bytes(out / "compare.png", comparison_png(runs, kind))]
    return text + "\n" + "\n".join(f"wrote {p}" for p in written)
