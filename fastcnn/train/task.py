"""What a recipe provides to the loop: networks, optimizers, data, one training step, the metric."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from ..models import FAST, get_model, get_twin


@dataclass
class Settings:
    """The run's choices that a recipe needs (the CLI fills them)."""
    size: str = "small"
    seed: int = 0
    batch_size: Optional[int] = None   # None: the recipe's
    steps: Optional[int] = None        # None: the recipe's (schedules span this many steps)
    lib: object = FAST                 # FAST (fastcnn) or TORCH (the torch twin, for --compare)
    device: str = "cpu"
    dropout: Optional[float] = None    # override every dropout probability (0 for exact comparisons)
    shift: Optional[int] = None        # override the random-shift augmentation in pixels (0: none)
    options: Optional[dict] = None     # recipe options (e.g. activation=, gan_loss=)
    reference_dir: Optional[str] = None  # where runs of other networks this one needs (lenet, vae) live


@dataclass(frozen=True)
class Option:
    """A recipe setting the CLI exposes as `--option NAME=VALUE`; its type is `kind`, else the default's (a
    tuple: comma-separated values of its first element's type). A None default means "the recipe decides"."""
    default: object
    help: str = ""
    choices: tuple = ()
    kind: Optional[type] = None
    limits: tuple = ()      # (lowest, highest) allowed value, both included; () for any

    def check(self, name: str, value):
        """ValueError naming the option when value lies outside self.limits."""
        if self.limits and value is not None and not self.limits[0] <= value <= self.limits[1]:
            raise ValueError(f"--option {name}: expected {self.limits[0]}..{self.limits[1]}, got {value}")
        return value

    def parse(self, name: str, text: str):
        d = self.default if self.kind is None else self.kind()
        try:
            if isinstance(d, bool):
                value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[text.lower()]
            elif isinstance(d, tuple):
                value = tuple(type(d[0])(t) for t in text.split(","))
            else:
                value = type(d)(text)
        except (KeyError, ValueError):
            kind = f"comma-separated {type(d[0]).__name__}s" if isinstance(d, tuple) else type(d).__name__
            raise ValueError(f"--option {name}: expected {kind}, got {text!r}") from None
        if self.choices and value not in self.choices:
            raise ValueError(f"--option {name}: expected one of {', '.join(map(str, self.choices))}, got {text!r}")
        return self.check(name, value)


def parse_options(recipe: type, pairs) -> dict:
    """['name=value', ...] -> {name: value} checked against recipe.recipe_options; ValueError otherwise."""
    declared, out = recipe.recipe_options, {}
    known = ", ".join(f"{k} (default {v.default!r})" for k, v in sorted(declared.items())) or "none"
    for pair in pairs:
        name, eq, text = pair.partition("=")
        if not eq or not name:
            raise ValueError(f"--option expects NAME=VALUE, got {pair!r}")
        if name not in declared:
            raise ValueError(f"--option {name}: {recipe.name} has no such option; its options: {known}")
        out[name] = declared[name].parse(name, text)
    return out


RECIPES: Dict[str, type] = {}   # trainable name -> its Task subclass, filled as recipe modules are imported


class Task:
    """One network's recipe. Subclasses set the class attributes and build everything in __init__:
    self.nets (the modules whose state is checkpointed), self.optimizers, self.train_set; the loop
    may replace entries of self.fwd (what step() calls) by DistributedDataParallel or torch.compile
    wrappers of the same modules."""

    name = "task"
    metric_name = "metric"
    higher_is_better = True
    target: Optional[float] = None     # the value the metric must reach (None: reported, no target)
    target_text = ""                   # how the target was chosen, for the report
    batch_size = 64
    steps = 500
    supports_ddp = True
    networks: tuple = ()               # the zoo networks trained together, for a pair (e.g. a GAN); () = (name,)
    recipe_options: Dict[str, Option] = {}   # what `--option NAME=VALUE` may set; read with self.option(NAME)

    def __init_subclass__(cls, **kwargs):
        # a subclass that names itself is a recipe; intermediate bases (no `name` of their own) are not
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        if name in RECIPES and RECIPES[name] is not cls:
            raise ValueError(f"two training recipes named {name!r}: {RECIPES[name].__qualname__} and {cls.__qualname__}")
        RECIPES[name] = cls

    def __init__(self, settings: Settings):
        self.s = settings
        self.lib = settings.lib
        self.options = dict(settings.options or {})
        if settings.batch_size is not None:
            self.batch_size = settings.batch_size
        if settings.steps is not None:
            self.steps = settings.steps
        self.nets: Dict[str, nn.Module] = {}
        self.fwd: Dict[str, nn.Module] = {}
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.schedulers: Dict[str, object] = {}
        self.train_set: Optional[Dataset] = None
        self.details: dict = {}          # extra figures for metrics.json / report.md

    def option(self, name: str):
        """The run's value of a declared recipe option (its default when the run did not set it), checked
        against the option's limits (options given in code skip the CLI's parse)."""
        declared = self.recipe_options[name]
        return declared.check(name, self.options.get(name, declared.default))

    # -- building ---------------------------------------------------------------------------------
    def build(self, name: str, key: str = "model", **overrides) -> nn.Module:
        """The zoo network `name` (fastcnn layers, or the torch twin under --compare) in this run's size."""
        maker = get_model if self.lib is FAST else get_twin
        net = maker(name, self.s.size, **overrides).to(self.s.device)
        if self.s.dropout is not None:
            for m in net.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd):
                    m.p = float(self.s.dropout)
        self.nets[key] = net
        self.fwd[key] = net
        return net

    @property
    def F(self):
        """The functional library the losses come from: fastcnn.ops (or torch's for the twin)."""
        return self.lib.F

    def sample_shape(self, key: str = "model"):
        return self.nets[key].input_shape

    # -- what the loop calls ----------------------------------------------------------------------
    def step(self, batch, step: int) -> Dict[str, float]:
        """One training step on `batch` (the loop's step number `step`); returns {'loss': ..., ...}."""
        raise NotImplementedError

    def evaluate(self) -> float:
        """The metric on held-out data (the loop forks the RNG around this call)."""
        raise NotImplementedError

    def plots(self, out_dir: str) -> List[str]:
        """Extra PNGs for a person to look at; returns their file names."""
        return []

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def reached(self, value: float) -> bool:
        if self.target is None or value is None:
            return False
        return value >= self.target if self.higher_is_better else value <= self.target

    def train_mode(self, on: bool = True) -> None:
        for net in self.nets.values():
            net.train(on)

    def to_device(self, batch):
        if isinstance(batch, (list, tuple)):
            return [b.to(self.s.device) for b in batch]
        return batch.to(self.s.device)
