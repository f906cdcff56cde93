"""Semantic segmentation on synthetic shapes: FCN-32s/16s/8s (combining layers), SegNet / SegNet-Basic
(index unpooling), PSPNet (pyramid context) and PIDNet-S (boundary branch), small sizes, the same
training data and batch (steps: 400 for each FCN, 800 for the others), measured on the same 256 held-out images."""
from __future__ import annotations

import torch

from . import Row, experiment
from ._speed import step_speedup

NETWORKS = ("fcn32s", "fcn16s", "fcn8s", "segnet", "segnet_basic", "pspnet", "pidnet_s")
# steps: each recipe's default (the FCN trio 400 each, the others 800; batch 16 over 2,048 images)
EVAL_EVERY = 100
OVERLAY_IMAGES = 4


def load_trained(name: str, folder: str, seed: int):
    """The recipe's task with the run's final weights (fastcnn layers), in eval mode."""
    from ..train import checkpoint, loop
    from ..train.recipes import RECIPES
    from ..train.task import Settings

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        task = RECIPES[name](Settings(seed=seed))
    payload = checkpoint.load(loop.checkpoint_path(folder), {"network": name})
    for key, net in task.nets.items():
        net.load_state_dict(payload["nets"][key])
    task.train_mode(False)
    return task


BASELINES = {"fcn16s": ("FCN-32s", ("fcn32s",)), "fcn8s": ("FCN-32s / FCN-16s (combining layers)", ("fcn32s", "fcn16s")),
             "segnet": ("FCN-8s", ("fcn8s",)), "segnet_basic": ("SegNet", ("segnet",)),
             "pspnet": ("FCN-32s / 16s / 8s (context)", ("fcn32s", "fcn16s", "fcn8s")),
             "pidnet_s": ("PSPNet / FCN-8s", ("pspnet", "fcn8s"))}


def row(name: str, metrics: dict, speedup=None) -> Row:
    m, d = metrics[name], metrics[name]["details"]
    figure = f"{m['metric']:.3f}"
    if name == "pidnet_s":
        figure += (f"; boundary F1 {d['boundary_head_f1_2px']:.3f} (D head), "
                   f"{d['label_boundary_f1_2px']:.3f} (edges of its labels)")
    baseline, others = BASELINES.get(name, ("majority class (all background)", ()))
    base_fig = (" / ".join(f"{metrics[k]['metric']:.3f}" for k in others) if others
                else f"{d['majority_class_mIoU']:.3f}")
    return Row(network=name, task="synthetic shapes 64x64, 256 held-out images",
               metric="mIoU" + (", boundary F1 (2 px)" if name == "pidnet_s" else ""),
               baseline=baseline, baseline_figure=base_fig, figure=figure,
               training_time=f"{m['seconds']:.0f} s ({m['steps']} steps x {m['batch_size']}, {m['threads']} threads)",
               speed_ratio="—" if speedup is None else f"{speedup:.2f}x (step time, eager twin)")


def verdicts(mi: dict) -> dict:
    """The lecture's two claims, stated with the numbers whichever way they come out."""
    best_fcn = max(("fcn32s", "fcn16s", "fcn8s"), key=mi.get)
    return {"combining_layers": (f"FCN-8s {mi['fcn8s']:.3f} vs FCN-32s {mi['fcn32s']:.3f} (FCN-16s {mi['fcn16s']:.3f}): "
                                 + ("8s beats 32s" if mi["fcn8s"] > mi["fcn32s"] else "8s does NOT beat 32s")),
            "context": (f"PSPNet {mi['pspnet']:.3f} vs the best FCN ({best_fcn}) {mi[best_fcn]:.3f}: "
                        + ("PSPNet beats FCN" if mi["pspnet"] > mi[best_fcn] else "PSPNet does NOT beat FCN"))}


@experiment("segmentation", "combining layers (FCN-8s vs 32s) and context (PSPNet vs FCN) improve segmentation",
            networks=NETWORKS)
def segmentation(ctx):
    from ..train.recipes.segmentation import overlay_figure, test_set

    extra = () if ctx.quick else ("--eval-every", str(EVAL_EVERY))
    if ctx.threads:
        torch.set_num_threads(ctx.threads)   # the step-time comparison runs here, not in `fastcnn train`
    test = test_set(ctx.seed, OVERLAY_IMAGES)
    x, labels, _ = (torch.stack(t) for t in zip(*[test[i] for i in range(OVERLAY_IMAGES)]))
    metrics, predictions = {}, {}
    for name in NETWORKS:
        folder = ctx.trained(name, *extra, steps=None)
        metrics[name] = ctx.metrics(folder)
        with torch.no_grad():
            predictions[name] = load_trained(name, folder, ctx.seed).predict(x)
    # step times need the CPU to themselves: measured in real runs only (quick runs leave "—")
    speedups = {} if ctx.quick else {name: step_speedup(name, ctx.seed) for name in NETWORKS}
    ctx.rows.extend(row(name, metrics, speedups.get(name)) for name in NETWORKS)
    ctx.figures["step_speedup_vs_eager_twin"] = speedups
    for name, m in metrics.items():
        d = m["details"]
        ctx.figures[name] = {"mIoU": m["metric"], "pixel_accuracy": d["pixel_accuracy"],
                             "label_boundary_f1_2px": d["label_boundary_f1_2px"], "iou_per_class": d["iou_per_class"],
                             "seconds": m["seconds"], "steps": m["steps"], "evaluations": m["evaluations"]}
    ctx.figures["pidnet_s"]["boundary_head_f1_2px"] = metrics["pidnet_s"]["details"]["boundary_head_f1_2px"]
    ctx.figures["majority_class_mIoU"] = metrics["fcn8s"]["details"]["majority_class_mIoU"]
    ctx.figures.update(verdicts({k: m["metric"] for k, m in metrics.items()}))
    overlay_figure(x, labels, predictions, ctx.image_path("segmentation_overlays.png"),
                   "held-out synthetic shapes: image | ground truth | each network's prediction")
    print(ctx.figures["combining_layers"])
    print(ctx.figures["context"])
