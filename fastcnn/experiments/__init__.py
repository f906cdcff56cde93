"""`fastcnn experiment NAME`: regenerate one of the lecture's comparisons (docs/results.md).

An experiment trains the networks it needs with `fastcnn train` (or reuses finished runs in the runs
folder), evaluates them beside the lecture's baseline on held-out data, and writes its rows and
pictures. One module per experiment in this package; each registers itself with `@experiment`, so a
new comparison is one new file."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from ._context import Context, Row

__all__ = ["EXPERIMENTS", "Experiment", "Context", "Row", "experiment", "list_experiments"]


@dataclass(frozen=True)
class Experiment:
    name: str
    summary: str                 # one line: the lecture's point this comparison shows
    networks: Tuple[str, ...]    # the `fastcnn train` names it trains (or reuses)
    run: Callable[[Context], None]


EXPERIMENTS: Dict[str, Experiment] = {}


def experiment(name: str, summary: str, networks: Tuple[str, ...] = ()):
    """Register `fn(ctx: Context) -> None`, which adds rows and pictures to ctx."""
    def register(fn):
        if name in EXPERIMENTS:
            raise ValueError(f"two experiments named {name!r}")
        EXPERIMENTS[name] = Experiment(name, summary, tuple(networks), fn)
        return fn
    return register


def list_experiments():
    _load()
    return sorted(EXPERIMENTS)


def _load():
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
