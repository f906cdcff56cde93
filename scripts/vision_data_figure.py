"""Draws docs/results/vision_data.png: what the issue-13 data look like (synthetic-shapes samples with their
labels and boundaries, a held-out homography pair and the stereo pair with ground-truth correspondences
of SIFT keypoints, an x4 LR / bicubic / HR crop of the held-out SR image).

    cd <checkout> && PYTHONPATH=$PWD python scripts/vision_data_figure.py docs/results/vision_data.png
"""
from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fastcnn.data import features, segmentation, superres  # noqa: E402


def main(path):
    fig, axes = plt.subplots(3, 6, figsize=(15, 7.5))
    for ax in axes.ravel():
        ax.set_axis_off()
    shapes = segmentation.SyntheticShapes("test", 3, (96, 96), seed=0)
    for k in range(3):
        s = shapes.sample(k)
        axes[0, 2 * k].imshow(s.image)
        axes[0, 2 * k + 1].imshow(np.where(s.boundary, segmentation.NUM_CLASSES, s.labels), cmap="tab10",
                                  vmin=0, vmax=9, interpolation="nearest")
    axes[0, 0].set_title("synthetic shapes (test split)", loc="left", fontsize=9)
    axes[0, 1].set_title("labels + boundary", loc="left", fontsize=9)

    rng = np.random.default_rng(0)
    pair = features.heldout_pairs(1, size=(256, 256), gray=True)[0]
    xy, *_ = features.sift_keypoints(pair.source, 400)
    mapped, ok = pair.correspond(xy)
    pick = rng.choice(np.flatnonzero(ok), size=min(12, int(ok.sum())), replace=False)
    colours = plt.cm.hsv(np.linspace(0, 1, len(pick), endpoint=False))
    axes[1, 0].imshow(pair.source, cmap="gray")
    axes[1, 0].scatter(xy[pick, 0], xy[pick, 1], c=colours, s=18)
    axes[1, 1].imshow(pair.target, cmap="gray")
    axes[1, 1].scatter(mapped[pick, 0], mapped[pick, 1], c=colours, s=18)
    axes[1, 0].set_title(f"held-out homography pair ({pair.name})", loc="left", fontsize=9)

    st = features.stereo_pair(scale=0.5)
    xy, *_ = features.sift_keypoints(features.stereo_pair(scale=0.5, gray=True).left, 400)
    mapped, ok = st.correspond(xy)
    pick = rng.choice(np.flatnonzero(ok), size=12, replace=False)
    axes[1, 2].imshow(st.left)
    axes[1, 2].scatter(xy[pick, 0], xy[pick, 1], c=colours[:12], s=18)
    axes[1, 3].imshow(st.right)
    axes[1, 3].scatter(mapped[pick, 0], mapped[pick, 1], c=colours[:12], s=18)
    axes[1, 2].set_title("stereo pair: x_right = x_left - d", loc="left", fontsize=9)
    axes[1, 4].imshow(np.where(st.valid, st.disparity, np.nan), cmap="viridis")
    axes[1, 4].set_title("disparity (white: inf)", loc="left", fontsize=9)

    lr, hr = superres.heldout_pair()
    bicubic = superres.upscale_bicubic(lr)
    y, x = 60, 180
    axes[2, 0].imshow(np.repeat(np.repeat(lr, 4, 0), 4, 1)[y:y + 128, x:x + 128])
    axes[2, 1].imshow(bicubic[y:y + 128, x:x + 128])
    axes[2, 2].imshow(hr[y:y + 128, x:x + 128])
    for ax, name in zip(axes[2, :3], ("LR (x4 nearest)", "bicubic", "HR (chelsea, held out)")):
        ax.set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=64)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "vision_data.png")
