"""x4 super-resolution on the held-out image (chelsea): bicubic against SRResNet (MSE) and SRGAN
(content + adversarial loss), PSNR / SSIM on Y, and the lecture's side-by-side picture."""
from __future__ import annotations

import numpy as np

from . import Row, experiment

# The zoomed region of the HR image (rows, columns): the cat's eye and fur, where the methods differ.
ZOOM = (slice(80, 160), slice(110, 230))


def trained_task(ctx, name: str):
    """The recipe's Task holding the weights of the finished run ctx.runs_dir/<name>."""
    from ..train.reference import trained
    from ..train.task import Settings

    return trained(name, Settings(seed=ctx.seed, reference_dir=ctx.runs_dir), any_steps=True)


def training_time(m: dict) -> str:
    """Training time of a run at its measured step rate (a resumed run's metrics time only its last part)."""
    rate = m.get("steps_per_s")
    if not rate:
        return "—"
    return f"{m['steps'] / rate:.0f} s ({m['steps']} steps x batch {m['batch_size']}, {m['threads']} threads)"


def side_by_side_with_zoom(images, titles, path, zoom=ZOOM) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(2, len(images), figsize=(3.4 * len(images), 4.6), squeeze=False,
                             gridspec_kw={"height_ratios": [300 / 448, (zoom[0].stop - zoom[0].start)
                                                            / (zoom[1].stop - zoom[1].start)]})
    for c, (im, title) in enumerate(zip(images, titles)):
        top, bottom = axes[0, c], axes[1, c]
        top.imshow(np.clip(im, 0, 1))
        top.add_patch(Rectangle((zoom[1].start, zoom[0].start), zoom[1].stop - zoom[1].start,
                                zoom[0].stop - zoom[0].start, fill=False, edgecolor="yellow", lw=1))
        top.set_title(title, fontsize=8)
        bottom.imshow(np.clip(im[zoom], 0, 1), interpolation="nearest")
        for ax in (top, bottom):
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@experiment("superres", "x4 super-resolution: SRResNet (MSE) against bicubic in PSNR / SSIM on Y; SRGAN trades "
                        "PSNR for texture (the lecture's side-by-side slide)",
            networks=("srresnet", "alexnet_patches", "srgan"))
def superres(ctx):
    import torch

    from ..eval.baselines import bicubic_baseline
    from ..eval.superres import psnr_y, ssim_y

    runs = {name: ctx.trained(name) for name in ("srresnet", "alexnet_patches", "srgan")}
    bic = bicubic_baseline()
    lr, hr = bic["lr"], bic["hr"]
    baseline = f"{bic['psnr_y']:.2f} dB / {bic['ssim_y']:.4f}"
    ctx.figures["bicubic"] = {"psnr_y_db": bic["psnr_y"], "ssim_y": bic["ssim_y"]}
    outputs = {}
    for name, label in (("srresnet", "SRResNet (MSE)"), ("srgan", "SRGAN (content + adversarial)")):
        task = trained_task(ctx, name)
        with torch.no_grad():
            out = task.super_resolve(lr)
        outputs[label] = out
        p, s = psnr_y(out, hr), ssim_y(out, hr)
        m = ctx.metrics(runs[name])
        ctx.figures[name] = {"psnr_y_db": p, "ssim_y": s, "steps": m["steps"], "above_bicubic_psnr": p > bic["psnr_y"]}
        ctx.rows.append(Row(network=name, task="x4 SR, chelsea (held out)", metric="PSNR / SSIM on Y (border 4)",
                            baseline="bicubic" if name == "srresnet" else "bicubic, SRResNet",
                            baseline_figure=baseline if name == "srresnet" else
                            f"{baseline}; SRResNet {ctx.figures['srresnet']['psnr_y_db']:.2f} dB / "
                            f"{ctx.figures['srresnet']['ssim_y']:.4f}",
                            figure=f"{p:.2f} dB / {s:.4f}", training_time=training_time(m)))
    features = ctx.metrics(runs["alexnet_patches"])
    ctx.figures["alexnet_patches"] = {"test_accuracy": features["metric"], "steps": features["steps"],
                                      "role": "content-loss features of srgan (no pretrained VGG offline)"}
    side_by_side_with_zoom([bic["sr"], *outputs.values(), hr], ["bicubic", *outputs, "original (HR)"],
                           ctx.image_path("superres.png"))
