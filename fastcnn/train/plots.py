"""PNG figures for the report (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import math
import os

import numpy as np
import torch


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def loss_curve(history, out_dir: str, title: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    h = np.asarray(history, dtype=float)
    ax.plot(np.arange(1, len(h) + 1), h, lw=0.6, alpha=0.5, label="per step")
    if len(h) >= 20:
        k = max(5, len(h) // 50)
        smooth = np.convolve(h, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k, len(h) + 1), smooth, lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "loss.png"), dpi=100)
    plt.close(fig)
    return "loss.png"


def image_grid(images: torch.Tensor, out_dir: str, filename: str, title: str, signed: bool = False,
               columns: int = 0, row_titles=None) -> str:
    """[N, C, H, W] images in a grid (C = 1 gray or 3 colour); `signed` centres a diverging colour map on 0."""
    plt = _plt()
    images = images.detach().float().cpu()
    n = images.shape[0]
    cols = columns or min(n, 16)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        im = images[i]
        if im.shape[0] == 3:
            lo, hi = im.min(), im.max()
            ax.imshow(((im - lo) / (hi - lo + 1e-12)).permute(1, 2, 0).numpy())
        elif signed:
            m = im.abs().max().item() or 1.0
            ax.imshow(im[0].numpy(), cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            ax.imshow(im[0].numpy(), cmap="gray")
    if row_titles:
        for r, t in enumerate(row_titles):
            axes[r, 0].set_title(t, fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, filename), dpi=100)
    plt.close(fig)
    return filename


def first_layer_filters(net, out_dir: str):
    """The first convolution's filters (per input channel 0), or the first linear layer's rows as images."""
    for m in net.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() == 4:
            return [image_grid(w[:, :1], out_dir, "filters.png", f"first-layer filters {tuple(w.shape)}", signed=True)]
        if isinstance(w, torch.Tensor) and w.dim() == 2:
            side = int(round(w.shape[1] ** 0.5))
            if side * side == w.shape[1]:
                return [image_grid(w[:32].reshape(-1, 1, side, side), out_dir, "filters.png",
                                   f"first-layer weights {tuple(w.shape)}", signed=True)]
            return []
    return []


def side_by_side(columns, names, out_dir: str, filename: str, title: str) -> str:
    """Equal-sized [H, W] arrays in one row, each titled."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(columns), figsize=(3 * len(columns), 3.4))
    for ax, im, name in zip(np.atleast_1d(axes), columns, names):
        ax.imshow(np.asarray(im), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, filename), dpi=100)
    plt.close(fig)
    return filename
