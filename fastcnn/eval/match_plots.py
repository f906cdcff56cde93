"""Pictures of local features: matches between two images (correct ones green, wrong ones red), dense maps,
descriptor distance histograms."""
from __future__ import annotations

import os

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _show(ax, image):
    im = np.asarray(image)
    ax.imshow(im, cmap=None if im.ndim == 3 else "gray", vmin=0, vmax=1)
    ax.axis("off")


def draw_matches(ax, image1, image2, xy1, xy2, matches, correspond, threshold: float = 3.0, title: str = "",
                 most: int = 300, seed: int = 0):
    """The two images side by side with a line per match (at most ``most``, drawn at random): green when
    the second point lies within ``threshold`` px of the true position, red otherwise, grey when unknown."""
    i, j = (np.asarray(m, dtype=np.int64) for m in matches)
    w = np.asarray(image1).shape[1]
    _show(ax, np.concatenate([np.asarray(image1), np.asarray(image2)], axis=1))
    if len(i):
        truth, valid = correspond(np.asarray(xy1)[i])
        ok = valid & (np.linalg.norm(truth - np.asarray(xy2)[j], axis=1) <= threshold)
        pick = np.random.default_rng(seed).permutation(len(i))[:most]
        for k in pick:
            colour = "lime" if ok[k] else ("red" if valid[k] else "0.6")
            (x1, y1), (x2, y2) = xy1[i[k]], xy2[j[k]]
            ax.plot([x1, x2 + w], [y1, y2], color=colour, lw=0.5, alpha=0.8)
    ax.set_title(title, fontsize=8)


def save_matches_figure(panels, path: str, suptitle: str) -> str:
    """One row per panel; panel = dict(image1, image2, xy1, xy2, matches, correspond, title)."""
    plt = _plt()
    h, w = np.asarray(panels[0]["image1"]).shape[:2]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 10 * h / (2 * w) * len(panels) + 0.6), squeeze=False)
    for ax, p in zip(axes[:, 0], panels):
        draw_matches(ax, **p)
    fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def save_maps_figure(images, titles, path: str, suptitle: str) -> str:
    """Equal-sized images / maps in one row (maps with a colour bar)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.4), squeeze=False)
    for ax, im, t in zip(axes[0], images, titles):
        im = np.asarray(im)
        if im.ndim == 3 or t.startswith("image"):
            _show(ax, im)
        else:
            shown = ax.imshow(im, cmap="viridis")   # own range: a short run's maps span little of [0, 1]
            fig.colorbar(shown, ax=ax, fraction=0.046)
            ax.axis("off")
        ax.set_title(t, fontsize=8)
    fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.path.basename(path)


def save_distance_histograms(named, path: str, suptitle: str) -> str:
    """named: list of (title, matching distances, non-matching distances, FPR95)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(named), figsize=(3.6 * len(named), 3.2), squeeze=False)
    for ax, (title, pos, neg, fpr) in zip(axes[0], named):
        bins = np.linspace(0, max(np.max(pos), np.max(neg)) * 1.02, 50)
        ax.hist(neg, bins=bins, alpha=0.6, color="tab:red", label="non-matching")
        ax.hist(pos, bins=bins, alpha=0.6, color="tab:green", label="matching")
        ax.axvline(np.sort(pos)[int(np.ceil(0.95 * len(pos))) - 1], color="k", lw=0.8, ls="--")
        ax.set_title(f"{title}: FPR95 {fpr:.3f}", fontsize=8)
        ax.set_xlabel("L2 distance of unit descriptors", fontsize=7)
        ax.legend(fontsize=7)
    fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.path.basename(path)
