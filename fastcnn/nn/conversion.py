"""fastcnn.nn.convert(model): swap every torch.nn layer fastcnn has kernels for by its fastcnn twin;
fastcnn.nn.conversion_report(model): what convert would swap, and what stays torch and why.

The table is discovered, not written: every fastcnn.nn class built on the base (_base.py) whose name
is a torch.nn class's replaces that class. A new module joins the table just by being defined so.

convert is atomic: it plans every swap first (building every replacement, which shares the torch
module's parameters and buffers) and changes the model only once the plan is complete. A module it
cannot swap stays torch and is listed in the report; with strict=True it raises ConversionError
naming all of them, and the model is left exactly as it was.

Modules are sorted into:
- swapped: torch.nn modules of a class in the table (exact class), replaced by their twin;
- fastcnn: already fastcnn.nn modules;
- left (stay torch, with why): other torch.nn compute modules (no twin, settings or dtype the kernels
  lack, a subclass of a torch.nn layer, a parametrized layer), and modules whose from_torch failed;
- custom: modules of the user's own classes that hold parameters or buffers themselves: their
  forward runs as written (its torch.nn children are converted like any other);
- containers and reshapes (Sequential, ModuleList, ModuleDict, Identity, Flatten, ...) and custom
  modules without parameters of their own are only walked through.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple, Type

from torch import nn
from torch.nn.utils import parametrize

from ._base import Module as FastcnnModule

__all__ = ["convert", "conversion_report", "conversion_table", "ConversionReport", "ConversionError"]

# Modules that compute nothing themselves (their children do): walked through, never reported.
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict, nn.Identity,
              nn.Flatten, nn.Unflatten)


def conversion_table() -> Dict[Type[nn.Module], Type[FastcnnModule]]:
    """{torch.nn class: fastcnn.nn class} for every fastcnn.nn module that mirrors a torch.nn class."""
    import fastcnn.nn as fnn

    table = {}
    for name in fnn.__all__:
        ours, theirs = getattr(fnn, name), getattr(nn, name, None)
        if isinstance(ours, type) and issubclass(ours, FastcnnModule) and ours.torch_class is theirs is not None:
            table[theirs] = ours
    return table


@dataclass(frozen=True)
class Entry:
    path: str  # dotted name in the model, "" for the model itself
    kind: str  # the module's class, e.g. "torch.nn.Conv2d"
    note: str = ""  # swapped: the fastcnn class; left / custom: why

    def line(self, tag: str) -> str:
        where = f"  {tag:<7} {self.path or '(model)'}: {self.kind}"
        if not self.note:
            return where
        return f"{where} -> {self.note}" if tag == "swap" else f"{where}: {self.note}"


@dataclass
class ConversionReport:
    """What convert() swaps (or swapped) and what stays torch. `left` is empty when every torch.nn
    compute module runs on fastcnn kernels; print the report for a readable list."""

    swapped: List[Entry] = field(default_factory=list)
    fastcnn: List[Entry] = field(default_factory=list)
    left: List[Entry] = field(default_factory=list)
    custom: List[Entry] = field(default_factory=list)

    def __str__(self) -> str:
        head = (f"fastcnn.nn.convert: {len(self.swapped)} to swap, {len(self.fastcnn)} already fastcnn, "
                f"{len(self.left)} stay torch, {len(self.custom)} custom")
        lines = [e.line("swap") for e in self.swapped] + [e.line("torch") for e in self.left]
        return "\n".join([head] + lines + [e.line("custom") for e in self.custom])


class ConversionError(ValueError):
    """convert(strict=True) found compute modules it cannot swap; `report` lists them (model unchanged)."""

    def __init__(self, report: ConversionReport):
        self.report = report
        names = "\n".join(e.line("torch") for e in report.left)
        super().__init__(f"convert(strict=True): {len(report.left)} module(s) cannot run on fastcnn kernels; "
                         f"the model is unchanged:\n{names}")


def _torch_name(cls) -> str:
    if getattr(nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


class _Plan:
    """Every replacement, built before anything changes; apply() then installs them."""

    def __init__(self, model: nn.Module, settings: dict):
        self.table = conversion_table()
        known = set().union(*(ours.settings for ours in self.table.values()))
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"convert: unknown setting(s) {unknown}; fastcnn.nn modules take {sorted(known)}")
        self.settings = settings
        self.report = ConversionReport()
        self.replacements: Dict[int, nn.Module] = {}  # id(torch module) -> its fastcnn twin
        self.slots: List[Tuple[nn.Module, str, nn.Module]] = []  # (parent, attribute, child), every place
        self._seen = set()
        self._visit(model, "")

    def _visit(self, module: nn.Module, path: str) -> None:
        if id(module) in self._seen:  # a module used at several places is planned once: one shared twin
            return
        self._seen.add(id(module))
        skip = self._classify(module, path)
        for name, child in module._modules.items():
            if child is not None and name not in skip:
                self.slots.append((module, name, child))
                self._visit(child, f"{path}.{name}" if path else name)

    def _classify(self, module: nn.Module, path: str) -> set:
        """Records module's fate; returns the names of children not to walk."""
        cls, report = type(module), self.report
        if isinstance(module, FastcnnModule):
            report.fastcnn.append(Entry(path, f"fastcnn.nn.{cls.__name__}"))
        elif parametrize.is_parametrized(module):
            plain = cls.__bases__[0]
            report.left.append(Entry(path, _torch_name(plain), "parametrized (torch.nn.utils.parametrize): convert "
                                     "the plain layer, then register the parametrization on the fastcnn twin"))
            return {"parametrizations"}
        elif cls in self.table:
            self._swap(module, path, self.table[cls])
        elif cls in CONTAINERS or cls is nn.Module:  # (a user's subclass is judged as custom, below)
            pass
        elif isinstance(module, tuple(self.table)):
            base = next(t for t in cls.__mro__ if t in self.table)
            report.left.append(Entry(path, f"{cls.__module__}.{cls.__qualname__}",
                                     f"a subclass of {_torch_name(base)}: its twin would drop the subclass's code"))
        elif cls.__module__.startswith("torch.nn."):
            report.left.append(Entry(path, _torch_name(cls), "no fastcnn twin (no fastcnn kernel for this layer)"))
        elif any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            report.custom.append(Entry(path, f"{cls.__module__}.{cls.__qualname__}",
                                       "own forward runs as written (it holds parameters or buffers itself)"))
        return set()

    def _swap(self, module: nn.Module, path: str, ours: Type[FastcnnModule]) -> None:
        kind = _torch_name(type(module))
        try:
            twin = ours.from_torch(module, **{k: v for k, v in self.settings.items() if k in ours.settings})
        except Exception as e:  # any failure leaves this module torch, and is reported (strict: raised)
            self.report.left.append(Entry(path, kind, f"{type(e).__name__}: {e}"))
            return
        self.replacements[id(module)] = twin
        self.report.swapped.append(Entry(path, kind, f"fastcnn.nn.{ours.__name__}"))

    def apply(self, model: nn.Module) -> nn.Module:
        for parent, name, child in self.slots:
            twin = self.replacements.get(id(child))
            if twin is not None:  # set on the parent's twin if the parent itself is swapped
                self.replacements.get(id(parent), parent)._modules[name] = twin
        return self.replacements.get(id(model), model)


def conversion_report(model: nn.Module, **settings) -> ConversionReport:
    """What convert(model, **settings) would swap, and every module that would stay torch with why
    (after a convert: what stayed torch). Changes nothing."""
    return _Plan(model, settings).report


def convert(model: nn.Module, *, strict: bool = False, **settings) -> nn.Module:
    """Replaces, in place, every torch.nn layer of `model` that has a fastcnn twin (exact class, settings
    and dtypes the kernels compute) by the twin sharing its parameters and buffers; returns the model
    (or the twin when `model` itself is such a layer). `settings` (e.g. backend='cpu', algo='direct')
    go to every twin that takes them. Prints nothing: conversion_report(model) lists what stays torch
    and why. strict=True raises ConversionError naming every compute module that cannot be swapped,
    before changing anything."""
    plan = _Plan(model, settings)
    if strict and plan.report.left:
        raise ConversionError(plan.report)
    return plan.apply(model)
