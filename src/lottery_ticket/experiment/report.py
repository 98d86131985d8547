"""Reports: the summary table (mean ± std over seeds) and the paper's plots, from a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import LotteryTicketError
from ..io import atomic_write_bytes, read_json
from ..scores import ACCURACY, score_of_record
from .results import KINDS, collect_rows, summarize
from .runfolder import RunFolder

KIND_LABELS = {"ticket": "ticket (IMP)", "random_reinit": "random reinit", "random_pruning": "random pruning",
               "snip": "SNIP", "grasp": "GraSP", "synflow": "SynFlow", "magnitude_init": "magnitude at init",
               "shuffle_layerwise": "layerwise shuffle"}
KIND_STYLES = {"ticket": dict(color="tab:blue", marker="o"), "random_reinit": dict(color="tab:orange", marker="s", linestyle="--"),
               "random_pruning": dict(color="tab:green", marker="^", linestyle=":"),
               "snip": dict(color="tab:red", marker="v", linestyle="-."), "grasp": dict(color="tab:purple", marker="D", linestyle="-."),
               "synflow": dict(color="tab:brown", marker="P", linestyle="-."),
               "magnitude_init": dict(color="tab:gray", marker="x", linestyle="-."),
               "shuffle_layerwise": dict(color="tab:olive", marker="*", linestyle=":")}
ALWAYS_SHOWN = ("ticket", "random_reinit", "random_pruning")  # table columns even when not run; the others when run


def load_summary(run_dir: str | Path) -> tuple[RunFolder, dict[str, Any], list[dict[str, Any]]]:
    folder = RunFolder(Path(run_dir))
    if not folder.config.is_file():
        raise LotteryTicketError(f"{run_dir} is not a run folder (no config.json); pass the --out folder of `lottery-ticket find`")
    rows = collect_rows(folder)
    if not rows:
        raise LotteryTicketError(f"{run_dir} has no finished rounds yet; run `lottery-ticket resume {run_dir}` first")
    return folder, summarize(rows), rows


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The terminal tables of report, compare and instability: right-aligned columns, a rule under the header."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    return [line(header), line(["-" * w for w in widths])] + [line(row) for row in rows]


def stats_cell(stats: dict | None, scale: float = 100.0, fmt: str = "{:.2f}") -> str:
    if not stats:
        return "-"
    mean, std, n = stats["mean"] * scale, stats["std"] * scale, stats["n"]
    return (fmt.format(mean) + (" ± " + fmt.format(std) if n > 1 else "")).strip()


def format_table(summary: dict[str, Any], title: str = "") -> str:
    # Both sparsities: overall (every masked weight) and of the eligible weights the pruner may touch; they
    # differ when layers are excluded (open_lth leaves the output layer dense).
    score = score_of_record(summary)
    kinds = [k for k in KINDS if k in ALWAYS_SHOWN or any(k in level for level in summary["levels"])]
    first = "test acc: ticket" if score == ACCURACY else f"test {score.key}: ticket"
    header = ["weights remaining", "eligible pruned", first, "random reinit", "random pruning",
              *(KIND_LABELS[k] for k in kinds if k not in ALWAYS_SHOWN), "early-stop it (ticket)"]
    lines = []
    for level in summary["levels"]:
        pct = f"{level['weights_remaining_pct']:.1f}%" + (" (dense)" if level["round"] == 0 else "")
        eligible = level.get("eligible_sparsity")
        cells = [pct, "-" if eligible is None else f"{100 * eligible:.1f}%"]
        for kind in kinds:
            cells.append(stats_cell(level.get(kind, {}).get(score.key), score.scale(), score.fmt()))
        cells.append(stats_cell(level.get("ticket", {}).get("early_stop_iteration"), scale=1.0, fmt="{:,.0f}"))
        lines.append(cells)
    out = [title] if title else []
    if summary.get("selection"):  # runs from before issue 26 have none
        from ..mask import selection_line

        out.append(selection_line(summary["selection"]))
    out += text_table(header, lines)
    return "\n".join(out)


SPREAD = 1.04  # neighbouring series sit this factor apart on the log axis, so their error bars do not hide each other


def offset(xs: list[float], index: int, count: int) -> list[float]:
    """Series `index` of `count` at each level, moved sideways on the log axis around the level's own position."""
    return [x * SPREAD ** (index - (count - 1) / 2) for x in xs]


def stopped_at_budget(rows: list[dict[str, Any]]) -> set[tuple[int, str]]:
    """(round, kind) whose every seed's early-stop iteration is its last: still improving when the budget ran out."""
    seen: dict[tuple[int, str], bool] = {}
    for row in rows:
        key = (row["round"], "ticket" if row["kind"] in ("dense", "ticket") else row["kind"])
        last = row.get("early_stop_iteration") is not None and row.get("early_stop_iteration") == row.get("iterations")
        seen[key] = seen.get(key, True) and last
    return {key for key, value in seen.items() if value}


def plot_title(title: str, seeds: int, budget: str | None) -> str:
    spread = f"mean ± std over {seeds} seed{'s' if seeds != 1 else ''}"
    return f"{title}\n{spread}" + (f", {budget} per training" if budget else "")


def write_plots(folder: RunFolder, summary: dict[str, Any], title: str = "", rows: list[dict[str, Any]] = (),
                budget: str | None = None) -> list[Path]:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..safefs import refuse_read_only

    refuse_read_only(folder.root, "report's plots")
    levels = summary["levels"]
    written = []

    def save(fig, name):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(atomic_write_bytes(folder.plots / name, buffer.getvalue()))

    score = score_of_record(summary)
    for metric, ylabel, scale, name in ((score.key, f"test {score.label()}", score.scale(), f"{score.key}_vs_weights.png"),
                                        ("early_stop_iteration", "early-stop iteration", 1.0, "early_stop_vs_weights.png")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        plotted = False
        shown = [k for k in KINDS if any(k in lv and metric in lv[k] for lv in levels)]
        at_budget = stopped_at_budget(list(rows)) if metric == "early_stop_iteration" else set()
        for index, kind in enumerate(shown):
            pts = [(lv["weights_remaining_pct"], lv[kind][metric], lv["round"]) for lv in levels
                   if kind in lv and metric in lv[kind]]
            if kind != "ticket":  # controls start from the dense point, as in the paper's plots
                dense = levels[0].get("ticket", {}).get(metric)
                if dense and pts:
                    pts = [(levels[0]["weights_remaining_pct"], dense, 0)] + pts
            if not pts:
                continue
            xs = offset([p[0] for p in pts], index, len(shown))
            ys = [p[1]["mean"] * scale for p in pts]
            es = [p[1]["std"] * scale for p in pts]
            ax.errorbar(xs, ys, yerr=es, label=KIND_LABELS[kind], capsize=3, **KIND_STYLES[kind])
            capped = [(x, y) for x, y, p in zip(xs, ys, pts) if (p[2], "ticket" if p[2] == 0 else kind) in at_budget]
            if capped:  # hollow rings: the run was still improving, so the early-stop point is the budget
                ax.scatter(*zip(*capped), s=140, facecolors="none", edgecolors="black", linewidths=1.0, zorder=5,
                           label="stopped at the budget" if index == 0 or not plotted else None)
            plotted = True
        dense_level = levels[0].get("ticket", {}).get(metric) if levels and levels[0]["round"] == 0 else None
        if plotted and dense_level and metric != "early_stop_iteration":
            ax.axhline(dense_level["mean"] * scale, color="gray", linestyle=":", linewidth=1, label="dense network")
        if not plotted:
            plt.close(fig)
            continue
        ax.set_xscale("log")
        ax.set_xticks(*level_ticks([lv["weights_remaining_pct"] for lv in levels]))
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("% of weights remaining (log scale)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))  # "stopped at the budget" once
        ax.legend(unique.values(), unique.keys(), fontsize="small")
        ax.set_title(plot_title(title, len(summary.get("seeds", [])), budget), fontsize="medium")
        save(fig, name)

    final = summary["levels"][-1]
    layer_file = None
    for sf in folder.seeds():
        candidate = sf.round_result(final["round"])
        if candidate.exists():
            layer_file = candidate
            break
    layers = collect_layer_sparsities(layer_file) if layer_file is not None else {}
    if layers:
        fig, ax = plt.subplots(figsize=(6.4, 0.35 * len(layers) + 1.5))
        names = list(layers)
        ax.barh(names, [100 * (1 - layers[n]) for n in names], color="tab:blue")
        ax.invert_yaxis()
        ax.set_xlabel("% of weights remaining")
        ax.set_title(f"{title} — per-layer density of the final ticket".strip(" —"))
        ax.grid(True, axis="x", alpha=0.3)
        save(fig, "layer_sparsity.png")
    return written


def level_ticks(remaining_pct: list[float], at_most: int = 12) -> tuple[list[float], list[str]]:
    """Tick positions and labels at the run's own levels (any schedule), thinned to `at_most` labels."""
    points = sorted(set(round(p, 3) for p in remaining_pct), reverse=True)
    step = max(1, -(-len(points) // at_most))
    kept = points[::step]
    return kept, [f"{p:.3g}" for p in kept]


def collect_layer_sparsities(path: Path) -> dict[str, float]:
    try:
        layers = read_json(path).get("layer_sparsities", {})
    except (LotteryTicketError, AttributeError):
        return {}
    return layers if isinstance(layers, dict) else {}


def report(run_dir: str | Path, plots: bool = True) -> str:
    from .runfolder import read_run_config

    folder, summary, rows = load_summary(run_dir)
    config = read_run_config(folder)
    title = f"{config.model} on {config.dataset} ({len(summary['seeds'])} seed{'s' if len(summary['seeds']) > 1 else ''})"
    text = format_table(summary, title)
    if plots:
        try:
            budget = getattr(getattr(config, "train", None), "budget", None)
            paths = write_plots(folder, summary, title, rows, budget)
        except LotteryTicketError as exc:  # a read-only folder still gets its table
            return text + f"\nno plots: {exc}"
        text += "\n" + "\n".join(f"wrote {p}" for p in paths)
    return text
