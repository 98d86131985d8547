"""Config files: every setting `find` knows, in TOML; flags on the command line override the file.

    lottery-ticket find --config run.toml --out runs/x        # the file, then any flags given
    lottery-ticket find --preset conv4-cifar10 --print-config  # the resolved config as TOML, to start a file from

A file may name a `preset` to start from; its tables `[train]`, `[prune]` and `[model_kwargs]` change single
keys of the preset's, while `layer_rates` and lists replace the preset's whole. Unknown keys are an error that
lists the valid ones (the config dataclasses check them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import LotteryTicketError

NESTED = ("train", "prune", "model_kwargs")


def read_config_file(path: str | Path) -> dict[str, Any]:
    import tomllib

    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise LotteryTicketError(f"config file {path} does not exist; check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LotteryTicketError(f"config file {path} is not valid TOML ({exc})") from None
    for key in NESTED:
        if key in data and not isinstance(data[key], dict):
            raise LotteryTicketError(f"config file {path}: '{key}' must be a table ([{key}]), not {type(data[key]).__name__}")
    return data


def merged(base: dict[str, Any], file: dict[str, Any]) -> dict[str, Any]:
    """`base` (a config as a dict) with the file's values: tables key by key, everything else replaced."""
    out = json.loads(json.dumps(base))
    for key, value in file.items():
        if key in NESTED and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def to_toml(config: dict[str, Any]) -> str:
    """A resolved ExperimentConfig dict as TOML (None values are left out: they are the defaults)."""
    lines = []
    for key, value in config.items():
        if key not in NESTED and value is not None:
            lines.append(f"{key} = {_value(value)}")
    for table in NESTED:
        lines += ["", f"[{table}]"] + [f"{k} = {_value(v)}" for k, v in config.get(table, {}).items() if v is not None]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise LotteryTicketError(f"cannot write {value!r} to TOML")
