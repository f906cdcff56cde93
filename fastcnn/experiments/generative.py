"""VAE vs DCGAN vs StyleGAN-XL on digits (the lecture's generative models): every model's samples judged
the same way, by the project's trained LeNet (Frechet distance in its 50-d features to the test digits,
its confidence, and for the class-conditional StyleGAN-XL the share it puts in the class asked for),
their sample grids side by side and an interpolation strip between two latents of each."""
from __future__ import annotations

import os

import torch

from . import Row, experiment

MODELS = ("vae", "dcgan", "stylegan_xl")
TITLES = {"vae": "VAE", "dcgan": "DCGAN", "stylegan_xl": "StyleGAN-XL (G-EMA)"}
SAMPLES = 1000          # per model, for the figures (the recipes' own evaluation uses as many)
QUICK_SAMPLES = 100


def load(name: str, folder: str, ctx):
    """The recipe's Task for `name` with the weights of the run in `folder` (any step count)."""
    from ..train import checkpoint, loop
    from ..train.recipes import RECIPES
    from ..train.task import Settings

    m = ctx.metrics(folder)
    path = loop.checkpoint_path(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        task = RECIPES[name](Settings(seed=ctx.seed, batch_size=m["batch_size"], steps=m["steps"],
                                      reference_dir=ctx.runs_dir))
    checkpoint.restore(task, checkpoint.load(path, {"network": name}), path)
    task.train_mode(False)
    return task, m


def samples(task, name: str, n: int, seed: int):
    """[n, C, H, W] samples in [0, 1] and the classes asked for (None: unconditional)."""
    out = task.sample(n, seed=seed)
    return out if isinstance(out, tuple) else (out, None)


def interpolation_row(task, name: str, steps: int = 10) -> torch.Tensor:
    """`steps` images along a straight line between two latents (StyleGAN-XL: class 3 fixed)."""
    g = torch.Generator().manual_seed(3)
    t = torch.linspace(0, 1, steps).view(-1, 1)
    if name == "vae":
        k = task.latent_size()
        z0, z1 = torch.randn(1, k, generator=g), torch.randn(1, k, generator=g)
        out = task.nets["model"].decode(z0.lerp(z1, t))
        side = int(round(out[0].numel() ** 0.5))
        return out.reshape(steps, 1, side, side)
    if name == "dcgan":
        z0, z1 = task.z(1, g), task.z(1, g)
        zs = z0.lerp(z1, t.view(-1, 1, 1, 1))
        G = task.nets["G"]
        saved = {k: v.clone() for k, v in G.state_dict().items()}
        G.train(True)               # batch statistics, as its samples (DCGANTask.sample)
        try:
            out = G(zs)
        finally:
            G.load_state_dict(saved)
            G.train(False)
        return ((out + 1) / 2).clamp(0, 1)
    return task.interpolation(steps)[steps:2 * steps]    # its class-3 row


def to_gray(x: torch.Tensor, side: int) -> torch.Tensor:
    from ..train.recipes.generative import to_lenet
    from ..data._resize import resize_stack

    g = to_lenet(x)[:, 0].numpy()
    return torch.from_numpy(resize_stack(g, side))[:, None]


@experiment("generative", "VAE vs DCGAN vs StyleGAN-XL: LeNet Frechet distance and class accuracy of samples",
            networks=("lenet", "vae", "dcgan", "stylegan_xl"))
def generative(ctx):
    from ..train.plots import image_grid

    n = QUICK_SAMPLES if ctx.quick else SAMPLES
    ctx.trained("lenet")
    tasks, runs, figures = {}, {}, {}
    for name in MODELS:
        # a quick run of StyleGAN-XL at its batch of 64 costs most of the smoke test: 16 there
        extra = ("--batch-size", "16") if ctx.quick and name == "stylegan_xl" else ()
        tasks[name], runs[name] = load(name, ctx.trained(name, *extra), ctx)
    judge = tasks["stylegan_xl"]         # one judge (the same trained LeNet) for every model's samples
    with torch.no_grad():
        grids, strips = [], []
        for name in MODELS:
            images, labels = samples(tasks[name], name, n, seed=1)
            judge.details.clear()
            fd = judge.judge(images, "s", labels)
            figures[name] = {"frechet_distance_lenet": fd, "samples": n,
                             "lenet_confident_share": judge.details["s_lenet_confident_share"],
                             "lenet_mean_confidence": judge.details["s_lenet_mean_confidence"],
                             "lenet_class_counts": judge.details["s_lenet_class_counts"],
                             "lenet_class_accuracy": judge.details.get("s_lenet_class_accuracy"),
                             "training_seconds": runs[name]["seconds"], "steps": runs[name]["steps"]}
            grids.append(to_gray(samples(tasks[name], name, 32, seed=2)[0], 16))
            strips.append(to_gray(interpolation_row(tasks[name], name), 16))
    ctx.figures.update(figures)
    out = ctx.image_path("generative_samples.png")
    image_grid(torch.cat(grids), os.path.dirname(out), os.path.basename(out),
               "samples (2 rows each, top to bottom): " + ", ".join(TITLES[k] for k in MODELS), columns=16)
    out = ctx.image_path("generative_interpolation.png")
    image_grid(torch.cat(strips), os.path.dirname(out), os.path.basename(out),
               "interpolation between two latents (rows: " + ", ".join(TITLES[k] for k in MODELS) + ")", columns=10)

    def fmt(name):
        f = figures[name]
        acc = "" if f["lenet_class_accuracy"] is None else f"; class accuracy {f['lenet_class_accuracy']:.3f}"
        return (f"FD {f['frechet_distance_lenet']:.1f}; LeNet confident (>0.9) {f['lenet_confident_share']:.3f}"
                f"{acc} ({f['samples']} samples)")

    def seconds(name):
        return f"{runs[name]['seconds']:.0f} s, {runs[name]['steps']} steps ({runs[name]['threads']} threads)"

    metric = "Frechet distance in LeNet features (lower is better); LeNet confidence / class accuracy"
    ctx.rows += [
        Row("vae", "generated digits", metric, "— (the lecture's blurry baseline)", "—", fmt("vae"), seconds("vae")),
        Row("dcgan", "generated digits", metric, "VAE", fmt("vae"), fmt("dcgan"), seconds("dcgan")),
        Row("stylegan_xl", "generated digits (class-conditional)", metric, "DCGAN", fmt("dcgan"), fmt("stylegan_xl"),
            seconds("stylegan_xl"), "not measured"),
    ]
