"""Learned local features at test time, beside SIFT: HardNet descriptors of keypoint patches, R2D2 keypoints
(local maxima of repeatability x reliability) with their dense descriptors, and the SIFT descriptor of an
already-normalised patch (the handcrafted descriptor on exactly the patches HardNet sees)."""
from __future__ import annotations

import time

import numpy as np
import torch

from .baselines import LocalFeatures

# R2D2 normalises its RGB input with ImageNet's statistics (naver/r2d2 tools/dataloader.py)
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


def patch_sift(patches: np.ndarray, n_hist: int = 4, n_ori: int = 8) -> np.ndarray:
    """SIFT descriptors (Lowe 2004) of patches (N, P, P) or (N, 1, P, P) that are already centred, scaled
    and rotated to the keypoint frame (as fastcnn.data.features.keypoint_patches samples them: half-width
    6 sigma, SIFT's lambda_descr): gradient orientation histograms on n_hist x n_hist cells with trilinear
    spreading and a Gaussian window of half the patch width, then normalise, clip at 0.2, normalise.
    Returns float32 (N, n_hist^2 n_ori)."""
    p = np.asarray(patches, dtype=np.float64)
    if p.ndim == 4:
        p = p[:, 0]
    if p.ndim != 3 or p.shape[1] != p.shape[2]:
        raise ValueError(f"patches: expected (N, P, P) or (N, 1, P, P), got shape {np.shape(patches)}")
    n, size = p.shape[0], p.shape[1]
    gy, gx = np.gradient(p, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    theta = np.mod(np.arctan2(gy, gx), 2 * np.pi)
    c = (np.arange(size) - (size - 1) / 2) / (size / 2)          # [-1, 1) across the patch
    window = np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * 0.5 ** 2))
    weight = (magnitude * window).reshape(n, -1)
    # continuous cell coordinates (cell centres at integers 0..n_hist-1) and orientation bin
    cell = (c + 1) * n_hist / 2 - 0.5
    rows = np.repeat(cell, size)
    cols = np.tile(cell, size)
    obin = theta.reshape(n, -1) * n_ori / (2 * np.pi)
    hist = np.zeros((n, n_hist, n_hist, n_ori))
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    o0 = np.floor(obin).astype(int)
    fr, fc, fo = rows - r0, cols - c0, obin - o0
    idx = np.arange(n)[:, None]
    for dr in (0, 1):
        wr = fr if dr else 1 - fr
        rr = r0 + dr
        for dc in (0, 1):
            wc = fc if dc else 1 - fc
            cc = c0 + dc
            inside = (rr >= 0) & (rr < n_hist) & (cc >= 0) & (cc < n_hist)
            for do in (0, 1):
                wo = fo if do else 1 - fo
                oo = (o0 + do) % n_ori
                w = weight * (wr * wc * inside)[None] * wo
                np.add.at(hist, (idx, np.clip(rr, 0, n_hist - 1)[None], np.clip(cc, 0, n_hist - 1)[None], oo), w)
    d = hist.reshape(n, -1)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
    d = np.minimum(d, 0.2)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
    return d.astype(np.float32)


def hardnet_describe(net, batch: int = 1024):
    """describe(patches (N, 1, 32, 32) float32) -> (N, D) descriptors of a trained HardNet (eval mode)."""
    def describe(patches):
        net.eval()
        x = torch.as_tensor(np.ascontiguousarray(patches), dtype=torch.float32)
        with torch.no_grad():
            out = [net(x[i:i + batch]) for i in range(0, len(x), batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, net.output_shape[0]), np.float32)
    return describe


def r2d2_input(image: np.ndarray) -> torch.Tensor:
    """An image (H, W) grey or (H, W, 3) in [0, 1] -> [1, 3, H, W] normalised as R2D2 trains on it."""
    im = np.asarray(image, dtype=np.float32)
    if im.ndim == 2:
        im = np.repeat(im[..., None], 3, axis=2)
    x = torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None]
    mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(RGB_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def r2d2_keypoints(out: dict, top_k: int, border: int = 4):
    """R2D2's extraction at one scale: pixels that are the maximum of the repeatability in their 3x3
    neighbourhood, ranked by repeatability x reliability, the ``top_k`` best (the reference thresholds both
    maps at 0.7 and keeps the top-k; a short training run does not reach those values everywhere, so
    ranking alone decides here). Returns (xy (K, 2) float64, descriptors (K, D) float32, scores (K,))."""
    rep, rel, desc = out["repeatability"][0, 0], out["reliability"][0, 0], out["descriptors"][0]
    h, w = rep.shape
    from .. import ops

    peak = ops.max_pool2d(rep[None, None].contiguous(), 3, stride=1, padding=1)[0, 0]
    maxima = rep == peak
    maxima[:border] = False
    maxima[-border:] = False
    maxima[:, :border] = False
    maxima[:, -border:] = False
    ys, xs = torch.nonzero(maxima, as_tuple=True)
    score = (rep * rel)[ys, xs]
    order = torch.argsort(score, descending=True)[:top_k]
    ys, xs = ys[order], xs[order]
    xy = torch.stack([xs, ys], dim=1).double().numpy()
    return xy, desc[:, ys, xs].t().contiguous().numpy(), score[order].numpy()


def r2d2_features(net, image: np.ndarray, top_k: int = 1000) -> LocalFeatures:
    """R2D2 keypoints and descriptors of an image, timed (normalisation, forward pass and selection)."""
    net.eval()
    start = time.perf_counter()
    with torch.no_grad():
        out = net(r2d2_input(image))
    xy, desc, _ = r2d2_keypoints(out, top_k)
    return LocalFeatures(xy=xy, descriptors=desc.astype(np.float32), seconds=time.perf_counter() - start)
