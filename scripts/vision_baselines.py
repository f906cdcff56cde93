"""Measures the lecture's handcrafted baselines of issue 13 on the held-out data, for docs/results.md:

* SIFT (skimage.feature.SIFT, mutual nearest neighbours) mean matching accuracy at 1/3/5 px on the
  held-out homography pairs (fastcnn.data.features.heldout_pairs: coffee, coins; 256x256, seed 0) and on
  the motorcycle stereo pair at full size (500x741), with the time per image (detect + describe);
* raw standardised pixels as a patch descriptor: FPR95 on held-out patch pairs (no learning at all, the
  floor a learned descriptor must clear);
* bicubic x4 upsampling of the held-out image (chelsea): PSNR / SSIM on Y, border 4;
* the first-layer-filter reference: how much of the energy of the principal components of natural 5x5
  and 11x11 patches the first six Gaussian derivatives explain, and of a random filter bank.

    cd /work/wt/<checkout> && PYTHONPATH=$PWD flock /tmp/fastcnn-cpu.lock python scripts/vision_baselines.py out.json
"""
from __future__ import annotations

import json
import platform
import sys

import numpy as np
import skimage
import torch

from fastcnn.data import features
from fastcnn.eval import baselines, filters, matching


def sift_homography(pairs_per_image=3, size=(256, 256), seed=0):
    pairs = features.heldout_pairs(pairs_per_image, size=size, seed=seed, gray=True)
    per_pair = [baselines.sift_pair_accuracy(p.source, p.target, p.correspond) for p in pairs]
    out = baselines.average_accuracies(per_pair)
    out["per_pair"] = [{"image": p.name, **{k: r[k] for k in ("mma@1", "mma@3", "mma@5", "matches")}}
                       for p, r in zip(pairs, per_pair)]
    return out


def sift_stereo():
    st = features.stereo_pair(scale=1.0, gray=True)
    r = baselines.sift_pair_accuracy(st.left, st.right, st.correspond)
    r["image_size"] = list(st.disparity.shape)
    return r


def pixel_descriptor_fpr95(num_pairs=6, seed=0):
    pp = features.make_patch_pairs("heldout", num_pairs=num_pairs, size=(256, 256), seed=seed)
    a, b, labels = pp.labelled_pairs(seed=seed)
    dist = matching.descriptor_distances(pp.anchors[a].reshape(len(a), -1), pp.positives[b].reshape(len(b), -1))
    return {"fpr95": matching.fpr_at_95_recall(dist, labels), "pairs": int(len(a))}


def filter_reference(k=6):
    out = {}
    for size in (5, 11):
        pca, _ = filters.patch_pca(filters.natural_image_patches(size, count=20000, seed=0), k)
        sigma, energy = filters.best_sigma_energy(pca, k)
        rnd_sigma, rnd = filters.best_sigma_energy(np.random.default_rng(0).normal(size=(64, size, size)), k)
        out[f"{size}x{size}"] = {"pca_components": k, "sigma": sigma, "energy_of_pca": energy,
                                 "energy_of_random_bank": rnd, "random_sigma": rnd_sigma}
    return out


def main(path=None):
    torch.set_num_threads(1)
    result = {
        "environment": {"python": platform.python_version(), "skimage": skimage.__version__,
                        "machine": platform.machine(), "threads": 1},
        "sift_heldout_homographies": sift_homography(),
        "sift_stereo_motorcycle": sift_stereo(),
        "pixel_descriptor_heldout_patches": pixel_descriptor_fpr95(),
        "bicubic_x4_heldout": {k: v for k, v in baselines.bicubic_baseline().items()
                               if k in ("psnr_y", "ssim_y", "seconds")},
        "gaussian_derivative_reference": filter_reference(),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
