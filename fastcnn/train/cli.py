"""`fastcnn train NAME ...` and `python -m fastcnn.train NAME ...` (the form torchrun launches)."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

CPU_CANONICAL_LIMIT = 2_500_000   # parameters a canonical network may have to train on this machine's CPUs


class UsageError(ValueError):
    """Bad command-line input, found before any work starts."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="network to train (a zoo name, or dcgan / srgan / stylegan_xl)")
    p.add_argument("--size", choices=("small", "canonical"), default="small")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="optimizer steps (default: the recipe's)")
    g.add_argument("--epochs", type=int, help="passes over the training split")
    p.add_argument("--batch-size", type=int, help="global batch size (default: the recipe's)")
    p.add_argument("--backend", choices=("cpu", "triton", "cuda", "reference"), default="cpu")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default: runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--compare", action="store_true",
                   help="also train the torch twin (eager, and torch.compile) on the same recipe: time to target")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (default: 10 per run)")
    p.add_argument("--activation", default="all", help="mlp: one activation, or 'all' (six runs)")
    p.add_argument("--gan-loss", choices=("nonsaturating", "minimax"), help="dcgan (default nonsaturating)")
    p.add_argument("--noise", choices=("gaussian", "poisson"), help="llnet's synthetic noise (default gaussian)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting the recipe declares (repeatable); an unknown name lists the recipe's options")
    p.add_argument("--dropout", type=float, help="set every dropout probability (0: deterministic comparisons)")
    p.add_argument("--shift", type=int, help="random-shift augmentation of the digit classifiers, in pixels "
                                             "(0: none, for exact comparisons; default: the recipe's)")
    p.add_argument("--reference-dir", help="where the lenet / vae runs that vae and dcgan need live "
                                           "(default: OUT's parent folder; trained there if missing)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)  # tests: leave after k steps, as if killed


def _known_names():
    from ..models import list_models
    from .recipes import PAIRS, RECIPES

    return sorted(set(list_models()) | set(RECIPES) | set(PAIRS))


def validate(args) -> None:
    """Every check that can fail before work starts, each with a message that says what to change."""
    from ..models import list_models, model_spec
    from .recipes import PAIRS, RECIPES

    names = _known_names()
    if args.name not in names:
        raise UsageError(f"unknown network {args.name!r}; known names: {', '.join(names)}")
    if args.name not in RECIPES:
        pair = next((k for k, v in PAIRS.items() if args.name in v), None)
        hint = f"; train the pair with `fastcnn train {pair}`" if pair else ""
        trainable = ", ".join(sorted(RECIPES))
        raise UsageError(f"{args.name}: no training recipe yet{hint} (recipes: {trainable})")
    from .task import parse_options
    try:
        args.recipe_options = parse_options(RECIPES[args.name], args.option)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for key in ("noise", "gan_loss"):   # the older dedicated flags: the same setting twice must agree
        given = getattr(args, key)
        if given is not None and key in args.recipe_options and args.recipe_options[key] != given:
            raise UsageError(f"--{key.replace('_', '-')} {given} and --option {key}={args.recipe_options[key]} disagree")
    if args.batch_size is not None and args.batch_size <= 0:
        raise UsageError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.steps is not None and args.steps <= 0:
        raise UsageError(f"--steps must be a positive integer, got {args.steps}")
    if args.epochs is not None and args.epochs <= 0:
        raise UsageError(f"--epochs must be a positive integer, got {args.epochs}")
    if args.threads is not None and args.threads <= 0:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    if args.checkpoint_every <= 0:
        raise UsageError(f"--checkpoint-every must be a positive integer, got {args.checkpoint_every}")
    if args.eval_every < 0:
        raise UsageError(f"--eval-every must be >= 0, got {args.eval_every}")
    if args.shift is not None and args.shift < 0:
        raise UsageError(f"--shift must be >= 0, got {args.shift}")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        raise UsageError(f"--dropout must lie in [0, 1), got {args.dropout}")
    from .recipes.classify import ACTIVATIONS
    if args.activation != "all" and args.activation not in ACTIVATIONS:
        raise UsageError(f"--activation must be 'all' or one of {', '.join(ACTIVATIONS)}, got {args.activation!r}")
    if args.size == "canonical":
        import torch

        zoo = PAIRS.get(args.name, (args.name,))
        known = set(list_models())
        params = sum(model_spec(n).canonical_params for n in zoo if n in known)
        if params > CPU_CANONICAL_LIMIT and not torch.cuda.is_available():
            raise UsageError(f"{args.name} --size canonical has {params:,} parameters: too large to train on this "
                             f"machine's CPUs (limit {CPU_CANONICAL_LIMIT:,}); use --size small")
    from .. import available_backends

    info = available_backends()[args.backend]
    if not info["available"]:
        raise UsageError(f"--backend {args.backend} is not available here: {info['reason']}")
    out = args.out or os.path.join("runs", args.name)
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"--out {out} is not a writable folder ({e.strerror or e})") from None
    args.out = out


def run_one(args, options: dict, out_dir: str, command: str) -> dict:
    import torch

    from ..models import FAST
    from . import distributed, loop, plots, report
    from .recipes import RECIPES
    from .task import Settings

    device = "cuda" if args.backend == "cuda" or (args.backend == "triton" and torch.cuda.is_available()) else "cpu"
    world = distributed.init(device)
    t_wall = time.perf_counter()
    torch.manual_seed(args.seed)
    recipe = RECIPES[args.name]
    settings = Settings(size=args.size, seed=args.seed, batch_size=args.batch_size, lib=FAST, device=device,
                        dropout=args.dropout, shift=args.shift, options=options,
                        reference_dir=args.reference_dir or os.path.dirname(os.path.abspath(args.out)))
    steps = args.steps
    if args.epochs is not None:
        probe = recipe(settings)
        steps = args.epochs * (len(probe.train_set) // probe.batch_size)
        torch.manual_seed(args.seed)
    settings.steps = steps
    task = recipe(settings)
    steps = task.steps
    if world.size > 1:
        torch.manual_seed(args.seed + 1000 * world.rank)   # dropout / noise differ per process; weights came first
    distributed.wrap(task, world)
    run = {"network": task.name, "size": args.size, "seed": args.seed, "batch_size": task.batch_size,
           "shift": args.shift, "dropout": args.dropout,
           "world_size": world.size, "options": {k: str(v) for k, v in sorted(options.items())},
           "backend": args.backend, "threads": torch.get_num_threads()}
    expect = {k: run[k] for k in ("network", "size", "seed", "batch_size", "world_size", "options", "shift", "dropout")}
    cfg = loop.LoopConfig(steps=steps, out_dir=out_dir, checkpoint_every=args.checkpoint_every,
                          eval_every=args.eval_every, resume=args.resume, progress=not args.no_progress,
                          stop_after=args.stop_after)
    result = loop.run(task, cfg, expect, world)
    m = None
    if world.main:
        m = report.metrics(task, result, run, time.perf_counter() - t_wall)
        images = [plots.loss_curve(result.history, out_dir, f"{task.name} ({args.size}) training loss")]
        task.train_mode(False)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            images += task.plots(out_dir)
        compare = None
        if args.compare and not result.stopped_early:
            from .compare import compare_runs
            compare = compare_runs(recipe, settings, cfg, result, args.threads)
            m["compare"] = compare
        report.write_metrics(out_dir, m)
        report.write_report(out_dir, m, images, command, compare)
    distributed.finish(world)
    return m


def run(args) -> int:
    import torch

    try:
        validate(args)
    except UsageError as e:
        print(f"fastcnn train: error: {e}", file=sys.stderr)
        return 2
    os.environ["FASTCNN_BACKEND"] = args.backend
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "fastcnn train " + " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "train") \
        if sys.argv and sys.argv[0].endswith("fastcnn") else "python -m fastcnn.train " + shlex.join(sys.argv[1:])
    options = {"gan_loss": args.gan_loss or "nonsaturating", "noise": args.noise or "gaussian",
               **args.recipe_options}
    from .checkpoint import CheckpointError

    try:
        if args.name == "mlp":
            return _run_mlp(args, options, command)
        m = run_one(args, options, args.out, command)
    except CheckpointError as e:
        print(f"fastcnn train: error: {e}", file=sys.stderr)
        return 2
    if m is not None:
        _summary(m)
    return 0


def _run_mlp(args, options, command) -> int:
    """The MLP is trained once per activation (args.activation 'all': all six), each in OUT/<activation>."""
    from .recipes.classify import ACTIVATIONS

    acts = ACTIVATIONS if args.activation == "all" else (args.activation,)
    rows = {}
    for act in acts:
        sub = os.path.join(args.out, act)
        os.makedirs(sub, exist_ok=True)
        m = run_one(args, dict(options, activation=act), sub, command)
        if m is None:
            continue
        _summary(m)
        rows[act] = m
    if not rows:
        return 0
    worst = min(rows, key=lambda a: rows[a]["metric"])
    first = rows[acts[0]]
    summary = dict(first, metric=rows[worst]["metric"], reached=all(r["reached"] for r in rows.values()),
                   steps=sum(r["steps"] for r in rows.values()), seconds=round(sum(r["seconds"] for r in rows.values()), 3),
                   wall_seconds=round(sum(r["wall_seconds"] for r in rows.values()), 3),
                   details={"lowest": worst, **{f"{a}_test_accuracy": r["metric"] for a, r in rows.items()}},
                   steps_to_target=None, evaluations=[], compare=None)
    # the runs are sequential: the time to target of all of them is the sum of theirs
    times = [r["time_to_target"] for r in rows.values()]
    summary["time_to_target"] = round(sum(times), 3) if None not in times else None
    total_samples = sum(r["samples_per_s"] * r["seconds"] for r in rows.values() if r["samples_per_s"])
    summary["samples_per_s"] = round(total_samples / summary["seconds"], 2) if summary["seconds"] else None
    from . import report
    report.write_metrics(args.out, summary)
    report.write_report(args.out, summary, [f"{a}/loss.png" for a in rows], command)
    return 0


def _summary(m: dict) -> None:
    print(json.dumps({k: m[k] for k in ("network", "metric_name", "metric", "target", "reached", "steps", "seconds",
                                        "samples_per_s", "time_to_target")}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastcnn train", description="train a zoo network on shipped data")
    add_arguments(parser)
    return run(parser.parse_args(argv))
