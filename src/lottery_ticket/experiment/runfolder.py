"""The run folder's layout, in one place, so the runner, the report and resume agree on it.

RUN_DIR/
  config.json                    resolved ExperimentConfig, its identity, provenance (git commit, torch, host)
  .lock, seed_<s>/.lock          advisory locks: one process claims the folder / works on a seed at a time
  metrics.csv                    one row per (seed, round, kind), rebuilt from the round files
  summary.json                   mean ± std per level over seeds, per kind
  plots/*.png
  seed_<s>/init.safetensors      θ₀
  seed_<s>/rewind.safetensors    weights after k steps (rewind_iteration > 0)
  seed_<s>/masks/round_XX.safetensors
  seed_<s>/trained/round_XX.safetensors     weights after training round XX (the next prune reads them)
  seed_<s>/rounds/round_XX.json             metrics of round XX: written last, so it marks the round done
  seed_<s>/controls/<kind>_round_XX.json    a control at that level (kind: its record name in imp/controls.py)
  seed_<s>/checkpoints/<stage>.{safetensors,json}   mid-training state, deleted when the stage is done
  seed_<s>/logs/<stage>.csv                  train loss and LR every 100 steps, and every evaluation, of a training
  tensorboard/seed_<s>/<stage>/              with --tensorboard (needs the tensorboard package)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEED_DIR = re.compile(r"^seed_(\d+)$")
ROUND_FILE = re.compile(r"^round_(\d{2,})\.json$")
# The record names of imp/controls.py's CONTROLS, in its order (tests/test_at_init.py checks they agree); written
# out rather than imported, so that reading a run folder's layout loads no torch.
CONTROL_RECORDS = ("random_reinit", "random_pruning", "snip", "grasp", "synflow", "magnitude_init", "shuffle_layerwise")
CONTROL_FILE = re.compile(rf"^({'|'.join(CONTROL_RECORDS)})_round_(\d{{2,}})\.json$")


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self):
        from ..safefs import confine

        confine(self.root)  # whatever we write below it never goes through a link (safefs.refuse_links)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def seed(self, seed: int) -> "SeedFolder":
        return SeedFolder(self.root / f"seed_{seed}")

    def seeds(self) -> list["SeedFolder"]:
        return [SeedFolder(p) for p in sorted(self.root.glob("seed_*")) if p.is_dir() and SEED_DIR.match(p.name)]


@dataclass(frozen=True)
class SeedFolder:
    root: Path

    @property
    def seed_number(self) -> int | None:
        m = SEED_DIR.match(self.root.name)
        return int(m.group(1)) if m else None

    @property
    def init(self) -> Path:
        return self.root / "init.safetensors"

    @property
    def rewind(self) -> Path:
        return self.root / "rewind.safetensors"

    def mask(self, r: int) -> Path:
        return self.root / "masks" / f"round_{r:02d}.safetensors"

    def trained(self, r: int) -> Path:
        return self.root / "trained" / f"round_{r:02d}.safetensors"

    def round_result(self, r: int) -> Path:
        return self.root / "rounds" / f"round_{r:02d}.json"

    def control_result(self, kind: str, r: int) -> Path:
        return self.root / "controls" / f"{kind}_round_{r:02d}.json"

    def checkpoint(self, stage: str) -> Path:
        return self.root / "checkpoints" / stage


def read_run_config(folder: RunFolder, *, run_code: bool = False, trust_code: bool = False):
    """The ExperimentConfig a run folder's config.json holds (older formats are read in today's terms).

    Reading imports nothing. With `run_code` (resume, instability: they build the model and load the data), the
    folder's own model/data/loss import paths are allowed only when its signature is this user's
    (experiment/trust.py) or `trust_code` is given; then its recorded import roots go on sys.path, last.
    """
    from ..config import ExperimentConfig, unresolved
    from ..errors import LotteryTicketError
    from ..io import read_json
    from ..registries import check_names

    if not folder.config.is_file():
        raise LotteryTicketError(f"{folder.root} holds no config.json; pass a folder made by `lottery-ticket find --out`")
    stored = read_json(folder.config)
    if not isinstance(stored, dict) or not isinstance(stored.get("experiment"), dict):
        raise LotteryTicketError(f"{folder.config} is not a lottery_ticket run config; pass a folder made by `lottery-ticket find`")
    advice = "restore it from a copy, or start over with `lottery-ticket find --out` a new folder"
    if "experiment_sha256" in stored and stored["experiment_sha256"] != experiment_digest(stored["experiment"]):
        # Every setting, seeds included: a flipped digit must not silently become another seed or learning rate.
        raise LotteryTicketError(f"{folder.config} was edited or damaged (its settings no longer match the hash "
                                 f"written with them); {advice}")
    roots = stored.get("import_roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise LotteryTicketError(f"{folder.config}: import_roots must be a list of folders, not {roots!r}; {advice}")
    format = stored.get("format", "lottery_ticket.run/1")
    if format == API_RUN_FORMAT:
        if run_code:
            raise LotteryTicketError(f"{folder.root} was saved from Python (LotteryTicketFinder.save_experiment): it has "
                                     "no model or data to import, so it cannot be resumed or retrained here; report and "
                                     "compare read it, and `lottery-ticket find` with import paths makes a full run")
        return ApiRunConfig.from_dict(stored["experiment"], folder.config)
    if format not in ("lottery_ticket.run/1", "lottery_ticket.run/2"):
        raise LotteryTicketError(f"{folder.config}: unknown format {format!r}; {advice}")
    try:
        with unresolved():
            config = check_names(ExperimentConfig.from_dict(stored["experiment"], format=format))
    except LotteryTicketError as exc:
        raise LotteryTicketError(f"{folder.config} does not describe an experiment ({exc}); {advice}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise LotteryTicketError(f"{folder.config} does not describe an experiment ({exc}); {advice}") from None
    if run_code and config.code_paths():
        from .trust import verifies

        if not trust_code and not verifies(signed_part(stored["experiment"], roots), stored.get("signature")):
            named = ", ".join(f"{what} {path!r}" for what, path in config.code_paths())
            raise LotteryTicketError(f"{folder.root} names code to import ({named}) and was not made by you (its "
                                     "config.json is not signed with your key); read that code, then pass --trust-code "
                                     "to run it")
        from ..plugins import add_import_roots

        add_import_roots(roots)  # your own model/data modules, wherever `resume` runs from
    return config


MAX_WORKERS = 1024  # a process per seed at most is ever started


def changed_environment(folder: RunFolder) -> list[str]:
    """What differs between the machine that made the run (config.json's provenance) and this one, in what changes
    the numbers: the torch version and the thread count. Empty when nothing does, or the record is unreadable."""
    import torch

    from ..errors import LotteryTicketError
    from ..io import read_json

    try:
        made = read_json(folder.config).get("provenance")
    except (LotteryTicketError, AttributeError):
        return []
    if not isinstance(made, dict):
        return []
    changes = []
    if isinstance(made.get("torch_version"), str) and made["torch_version"] != torch.__version__:
        changes.append(f"torch {made['torch_version']} then, {torch.__version__} now")
    threads = made.get("num_threads")
    if isinstance(threads, int) and not isinstance(threads, bool) and threads != torch.get_num_threads():
        changes.append(f"{threads} threads then, {torch.get_num_threads()} now")
    return changes


def reuse_execution(folder: RunFolder) -> int:
    """Set up this process as config.json's "execution" records (worker processes, threads each) and return the
    number of workers: a run resumed with another thread count sums in another order (7th-digit differences).
    A record that is missing or not ours changes nothing."""
    import os

    from ..errors import LotteryTicketError
    from ..io import read_json

    try:
        execution = read_json(folder.config).get("execution")
    except (LotteryTicketError, AttributeError):  # unreadable, or not an object: read_run_config says which
        return 1
    if not isinstance(execution, dict):
        return 1
    workers, threads = execution.get("workers"), execution.get("threads")
    valid = lambda n, most: isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= most
    if not valid(workers, MAX_WORKERS):
        return 1
    if valid(threads, os.cpu_count() or 1):  # more threads than this machine has cores: not a setup to copy
        if workers > 1:
            os.environ["LOTTERY_TICKET_WORKER_THREADS"] = str(threads)
        else:
            import torch

            torch.set_num_threads(threads)
    return workers


def signed_part(experiment, import_roots) -> dict:
    """What a run folder's signature covers: every setting, and where its code is imported from."""
    return {"experiment": experiment, "import_roots": list(import_roots)}


def experiment_digest(experiment) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(experiment, sort_keys=True).encode()).hexdigest()


# Temporary files are `.NAME.XXXXXXXX.tmp` (io.atomic_write_bytes: mkstemp's 8 random characters), for the names
# the library writes, in the folders it writes them to. Nothing else is ever swept.
OUR_TEMP_FILE = re.compile(r"^\.(config\.json|metrics\.csv|summary\.json|[A-Za-z0-9_]+\.(json|safetensors|png))"
                           r"\.[a-z0-9_]{8}\.tmp$")
SEED_SUBFOLDERS = ("masks", "trained", "rounds", "controls", "checkpoints", "logs")


def our_temp_files(places: list[Path]) -> list[Path]:
    """Orphans a SIGKILL mid-write left in these places; never a user's file or folder."""
    return [p for place in places if place.is_dir() for p in place.iterdir()
            if OUR_TEMP_FILE.match(p.name) and p.is_file() and not p.is_symlink()]


def seed_places(sf: SeedFolder) -> list[Path]:
    """Where a seed's files are written (only by the process holding the seed's lock)."""
    return [sf.root] + [sf.root / sub for sub in SEED_SUBFOLDERS]


API_RUN_FORMAT = "lottery_ticket.api_run/1"


@dataclass(frozen=True)
class ApiRunConfig:
    """What a run folder written by LotteryTicketFinder.save_experiment says about itself: labels of the model and
    data (the Python objects themselves are not in it) and the finder's settings. Read as plain data."""

    model: str
    dataset: str
    seeds: tuple
    controls: tuple
    settings: dict
    preset: None = None
    framework: str = "python"

    @classmethod
    def from_dict(cls, data: dict, where) -> "ApiRunConfig":
        from ..errors import LotteryTicketError

        try:
            config = cls(model=data["model"], dataset=data["dataset"], seeds=tuple(data["seeds"]),
                         controls=tuple(data.get("controls", ())), settings=dict(data.get("settings", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise LotteryTicketError(f"{where} does not describe a saved experiment ({exc}); save it again with "
                                     "save_experiment") from None
        if not (isinstance(config.model, str) and isinstance(config.dataset, str)
                and all(isinstance(s, int) and not isinstance(s, bool) for s in config.seeds)):
            raise LotteryTicketError(f"{where} does not describe a saved experiment; save it again with save_experiment")
        return config

    def to_dict(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, "seeds": list(self.seeds),
                "controls": list(self.controls), "settings": dict(self.settings)}

    def identity(self) -> dict:
        return {"saved_from_python": self.to_dict()}

    def code_paths(self) -> list:
        return []
