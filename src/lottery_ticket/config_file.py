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
    except IsADirectoryError:
        raise LotteryTicketError(f"config file {path} is a folder; pass a .toml file to --config") from None
    except OSError as exc:
        raise LotteryTicketError(f"cannot read config file {path} ({exc.strerror or exc})") from None
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
    """A resolved ExperimentConfig dict as TOML (None values are left out: they are the defaults). Written by a
    TOML library, so any key (one with a space or a quote, in [model_kwargs]) reads back as itself."""
    import tomli_w

    def without_none(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, (list, tuple)):
            return [without_none(v) for v in value]
        return value

    top = {k: v for k, v in without_none(config).items() if k not in NESTED}
    tables = {k: without_none(config.get(k, {})) for k in NESTED}
    try:
        return tomli_w.dumps({**top, **tables})
    except TypeError as exc:
        raise LotteryTicketError(f"cannot write the config as TOML ({exc})") from None
