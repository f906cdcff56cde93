"""Summarise `fastcnn train` segmentation runs over seeds: per network the test mIoU of each seed, mean,
sample standard deviation and range; per pair of networks the paired difference seed by seed (each seed
draws its own training images, test images and initialisation, so the pairs share data).

    PYTHONPATH=$PWD python scripts/segmentation_seeds.py runs/seg/fcn32s runs/seg3/fcn32s_s1 ... \\
        --compare fcn8s fcn32s --json docs/results/segmentation_fcn_seeds.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics


def load(folders):
    runs = {}
    for folder in folders:
        with open(os.path.join(folder, "metrics.json")) as f:
            m = json.load(f)
        runs.setdefault(m["network"], {})[m["seed"]] = {
            "mIoU": m["metric"], "steps": m["steps"], "majority_class_mIoU": m["details"]["majority_class_mIoU"],
            "evaluations": [e[2] for e in m["evaluations"]], "folder": folder}
    return runs


def spread(values):
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--compare", nargs=2, action="append", default=[], metavar=("A", "B"), help="paired A - B by seed")
    p.add_argument("--json")
    args = p.parse_args(argv)
    runs = load(args.folders)
    out = {"networks": {}, "paired": {}}
    for net, by_seed in sorted(runs.items()):
        s = spread([r["mIoU"] for r in by_seed.values()])
        out["networks"][net] = {"seeds": by_seed, **s}
        print(f"{net}: " + ", ".join(f"seed {k} {r['mIoU']:.3f}" for k, r in sorted(by_seed.items()))
              + f"; mean {s['mean']:.3f} +- {s['sd']:.3f} (sd), range {s['min']:.3f}-{s['max']:.3f}")
    for a, b in args.compare:
        seeds = sorted(set(runs[a]) & set(runs[b]))
        diffs = [runs[a][k]["mIoU"] - runs[b][k]["mIoU"] for k in seeds]
        s = spread(diffs)
        out["paired"][f"{a} - {b}"] = {"seeds": seeds, "differences": diffs, **s}
        print(f"{a} - {b} by seed {seeds}: " + ", ".join(f"{d:+.3f}" for d in diffs)
              + f"; mean {s['mean']:+.3f} +- {s['sd']:.3f}, {sum(d > 0 for d in diffs)} of {len(diffs)} positive")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
