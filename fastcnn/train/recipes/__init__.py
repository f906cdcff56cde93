"""One recipe (a Task subclass that sets `name`) per trainable name, one module per family. Every
module of this package is imported here, and each recipe registers itself (Task.__init_subclass__):
a new family is one new file."""
from __future__ import annotations

import importlib
import pkgutil

from ..task import RECIPES

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

# Adversarial pairs: the trainable name -> the zoo networks it trains together (from the recipes).
PAIRS = {name: task.networks for name, task in RECIPES.items() if len(task.networks) > 1}
