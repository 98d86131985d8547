"""Your own model, data and loss by import path: 'package.module:callable', as on the command line.

    --model my_pkg.nets:build      build(**model_kwargs) -> nn.Module
    --dataset my_pkg.data:loaders  loaders() -> {"train": ..., "test": ..., "val": ...} iterables of (inputs, targets)
    --loss my_pkg.losses:loss      loss(outputs, targets) -> the batch's mean loss

The run folder records the paths, so `resume` and `instability` find them again (the package must be importable
there too: installed, or on PYTHONPATH, or under the current directory). A folder names code to import only when
its config.json is signed by you (experiment/trust.py) or you pass --trust-code; `report` and `compare` never import.
Paths into the standard library or torch's code loaders are refused outright: no model is `subprocess:run`.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

from .errors import LotteryTicketError

_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


# Modules that run processes, load code or reach into the interpreter: never a model, dataset or loss.
_REFUSED_MODULES = ("torch.hub", "torch.package", "torch.utils.cpp_extension", "torch.jit", "torch._dynamo",
                    "lottery_ticket.plugins", "lottery_ticket.cli")


def is_import_path(name: str) -> bool:
    return isinstance(name, str) and ":" in name


def check_import_path(path: Any, what: str) -> str:
    """`path` if it has the form 'package.module:callable' and names no standard-library or code-loading object;
    importing nothing."""
    if not isinstance(path, str) or not _PATH.match(path):
        raise LotteryTicketError(f"{what} {path!r} is not an import path; write it as 'package.module:callable'")
    module_name, attr = path.split(":", 1)
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top == "__main__" or any(
            module_name == m or module_name.startswith(m + ".") for m in _REFUSED_MODULES):
        raise LotteryTicketError(f"{what} {path!r} names a standard-library or code-loading module, not your own "
                                 "code; give your package's 'package.module:callable'")
    if any(part.startswith("_") for part in attr.split(".")) or any(p.startswith("__") for p in module_name.split(".")):
        raise LotteryTicketError(f"{what} {path!r} names a private or dunder attribute; give a public callable")
    return path


def load_object(path: str, what: str) -> Any:
    """The object `path` names, or one line saying what is wrong with it."""
    check_import_path(path, what)
    module_name, attr = path.split(":", 1)
    if os.getcwd() not in sys.path:  # `lottery-ticket` (unlike `python -m`) does not put the current folder on it
        sys.path.append(os.getcwd())  # last: a file in the current folder never shadows an installed module
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LotteryTicketError(f"{what} {path!r}: cannot import {module_name!r} ({exc}); check the spelling and that "
                                 "the package is installed or on PYTHONPATH") from None
    except Exception as exc:  # the user's module raised while importing
        raise LotteryTicketError(f"{what} {path!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise LotteryTicketError(f"{what} {path!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise LotteryTicketError(f"{what} {path!r} is a {type(obj).__name__}, not a callable")
    return obj


def build_user_model(path: str, seed: int, **kwargs):
    """`path`(**kwargs) initialized from `seed` (the global RNG left as it was), checked to be an nn.Module."""
    import torch
    from torch import nn

    factory = load_object(path, "model")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = factory(**kwargs)
        except TypeError as exc:
            raise LotteryTicketError(f"model {path!r} could not be called with {sorted(kwargs) or 'no arguments'}: {exc}") from None
        except Exception as exc:  # your factory's own error, as one line
            raise LotteryTicketError(f"model {path!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise LotteryTicketError(f"model {path!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_user_data(path: str):
    from .data.types import LoaderSplits

    factory = load_object(path, "data")
    try:
        splits = factory()
    except Exception as exc:  # your factory's own error, as one line
        raise LotteryTicketError(f"data {path!r} raised {type(exc).__name__}: {exc}") from None
    return LoaderSplits.from_mapping(f"data {path!r}", splits)


def import_root(path: str) -> str | None:
    """The folder to put on sys.path for `path` to import again (recorded in the run folder), or None."""
    module_name = path.split(":", 1)[0]
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if file is None:
        return None
    root = os.path.dirname(os.path.abspath(file))
    for _ in range(module_name.count(".") + (0 if file.endswith("__init__.py") else 0)):
        root = os.path.dirname(root)
    if file.endswith("__init__.py"):
        root = os.path.dirname(root)
    return root


def add_import_roots(roots) -> None:
    """Make the folders a trusted run folder recorded importable, so `resume` works from any directory. Appended,
    so they never shadow the library or anything installed."""
    for root in roots or ():
        if isinstance(root, str) and os.path.isdir(root) and root not in sys.path:
            sys.path.append(root)
