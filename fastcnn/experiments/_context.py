"""What an experiment works with: the trained runs it asks for, and where its rows and pictures go."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional


@dataclass
class Row:
    """One line of docs/results.md's table."""
    network: str
    task: str
    metric: str
    baseline: str              # what the lecture compares with
    baseline_figure: str       # measured here, same data
    figure: str                # ours, measured here
    training_time: str = "—"   # e.g. "212 s (2 threads)"
    speed_ratio: str = "—"     # the torch twin's training-step time over fastcnn's (above 1: fastcnn faster)


@dataclass
class Context:
    """runs_dir: where `fastcnn train` runs live (reused when finished); out_dir: where this experiment's
    JSON and PNGs go; quick: a smoke run (few steps, small evaluation) whose figures mean nothing."""
    name: str
    runs_dir: str
    out_dir: str
    quick: bool = False
    seed: int = 0
    threads: Optional[int] = None
    rows: List[Row] = field(default_factory=list)
    images: List[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)    # free-form numbers for the JSON (per-pair figures ...)

    QUICK_STEPS = 3

    def trained(self, name: str, *extra: str, steps: Optional[int] = None, folder: Optional[str] = None) -> str:
        """The folder of a finished `fastcnn train name` run (trained now if missing). `extra` are more CLI
        arguments; a quick context trains QUICK_STEPS steps in its own folder."""
        from ..train.cli import main as train_main

        folder = os.path.join(self.runs_dir, folder or name)
        if os.path.exists(os.path.join(folder, "metrics.json")):
            return folder
        args = [name, "--out", folder, "--seed", str(self.seed), "--reference-dir", self.runs_dir, *extra]
        if self.quick:
            args += ["--steps", str(self.QUICK_STEPS), "--no-progress"]
        elif steps is not None:
            args += ["--steps", str(steps)]
        if self.threads:
            args += ["--threads", str(self.threads)]
        rc = train_main(args)
        if rc != 0:
            raise RuntimeError(f"experiment {self.name}: `fastcnn train {' '.join(args)}` failed with exit code {rc}")
        return folder

    @staticmethod
    def metrics(folder: str) -> dict:
        with open(os.path.join(folder, "metrics.json")) as f:
            return json.load(f)

    def image_path(self, filename: str) -> str:
        """Where to save a picture of this experiment (recorded for the JSON)."""
        os.makedirs(self.out_dir, exist_ok=True)
        self.images.append(filename)
        return os.path.join(self.out_dir, filename)

    def write(self) -> str:
        os.makedirs(self.out_dir, exist_ok=True)
        path = os.path.join(self.out_dir, f"{self.name}.json")
        payload = {"experiment": self.name, "quick": self.quick, "seed": self.seed,
                   "rows": [asdict(r) for r in self.rows], "images": self.images, "figures": self.figures}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, default=float)
        os.replace(tmp, path)
        return path

    def markdown(self) -> str:
        head = "| network | task | metric | lecture's baseline | baseline figure | our figure | training time | speed vs torch twin |"
        lines = [head, "|" + "---|" * 8]
        for r in self.rows:
            lines.append("| " + " | ".join((r.network, r.task, r.metric, r.baseline, r.baseline_figure, r.figure,
                                            r.training_time, r.speed_ratio)) + " |")
        return "\n".join(lines)
