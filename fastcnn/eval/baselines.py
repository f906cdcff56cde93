"""The lecture's handcrafted baselines, measured the same way as the networks: SIFT keypoints and
descriptors (skimage.feature.SIFT, with the time per image) matched by mutual nearest neighbours, and
bicubic upsampling for super-resolution."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fastcnn.data.features import keypoint_patches, sift_keypoints
from fastcnn.data.superres import SCALE, heldout_pair, upscale_bicubic
from fastcnn.eval.matching import matching_accuracy, mutual_nearest_neighbours
from fastcnn.eval.superres import psnr_y, ssim_y


@dataclass
class LocalFeatures:
    xy: np.ndarray            # (N, 2) keypoints (x, y)
    descriptors: np.ndarray   # (N, D)
    seconds: float            # wall time to detect and describe


def _grey(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray
    return rgb2gray(image) if image.ndim == 3 else image


def sift_features(image: np.ndarray, max_keypoints: int | None = None) -> LocalFeatures:
    """SIFT keypoints and 128-d descriptors of an image (colour is converted to grey, inside the timing)."""
    start = time.perf_counter()
    xy, _, _, descriptors = sift_keypoints(_grey(image), max_keypoints)
    seconds = time.perf_counter() - start
    return LocalFeatures(xy=xy, descriptors=descriptors.astype(np.float32), seconds=seconds)


def sift_and_patch_features(image: np.ndarray, describe, max_keypoints: int | None = None):
    """SIFT and a patch descriptor on the same keypoints (HardNet against SIFT): detect SIFT keypoints,
    keep those whose 32x32 patch lies inside the image, and describe them twice, by SIFT and by
    ``describe(patches (N, 1, 32, 32) float32) -> (N, D)`` (e.g. a trained HardNet). Returns
    (sift LocalFeatures, patch LocalFeatures); the patch timing covers extraction and ``describe``, the
    SIFT timing detection and description."""
    grey = _grey(image)
    start = time.perf_counter()
    xy, sigmas, orientations, descriptors = sift_keypoints(grey, max_keypoints)
    sift_seconds = time.perf_counter() - start
    start = time.perf_counter()
    patches, inside = keypoint_patches(grey, xy, sigmas, orientations)
    described = np.asarray(describe(patches[inside][:, None]), dtype=np.float32)
    patch_seconds = time.perf_counter() - start
    if described.ndim != 2 or len(described) != int(inside.sum()):
        raise ValueError(f"describe must return one row per patch, got shape {described.shape}")
    return (LocalFeatures(xy=xy[inside], descriptors=descriptors[inside].astype(np.float32), seconds=sift_seconds),
            LocalFeatures(xy=xy[inside], descriptors=described, seconds=patch_seconds))


def match_features(f1: LocalFeatures, f2: LocalFeatures, correspond, thresholds=(1, 3, 5)) -> dict:
    """Mutual-nearest-neighbour matches of two feature sets scored by mean matching accuracy."""
    matches = mutual_nearest_neighbours(f1.descriptors, f2.descriptors)
    out = matching_accuracy(f1.xy, f2.xy, matches, correspond, thresholds)
    out["keypoints"] = (len(f1.xy), len(f2.xy))
    out["seconds_per_image"] = (f1.seconds + f2.seconds) / 2
    return out


def sift_pair_accuracy(image1, image2, correspond, thresholds=(1, 3, 5), max_keypoints=None) -> dict:
    """SIFT on both images of a pair, then ``match_features``."""
    return match_features(sift_features(image1, max_keypoints), sift_features(image2, max_keypoints),
                          correspond, thresholds)


def average_accuracies(results) -> dict:
    """Mean of each MMA and of the time per image over pairs (each pair weighs the same, as in HPatches);
    total match counts."""
    results = list(results)
    keys = [k for k in results[0] if k.startswith("mma@")] + ["seconds_per_image"]
    out = {k: float(np.mean([r[k] for r in results])) for k in keys}
    out["matches"] = int(sum(r["matches"] for r in results))
    out["pairs"] = len(results)
    return out


def bicubic_baseline(scale: int = SCALE) -> dict:
    """PSNR / SSIM (Y, border = scale) of bicubic upsampling of the held-out LR image, and the images."""
    lr, hr = heldout_pair(scale)
    start = time.perf_counter()
    sr = upscale_bicubic(lr, scale)
    seconds = time.perf_counter() - start
    return {"psnr_y": psnr_y(sr, hr, border=scale), "ssim_y": ssim_y(sr, hr, border=scale),
            "seconds": seconds, "lr": lr, "sr": sr, "hr": hr}
