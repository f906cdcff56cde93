"""Super-resolution metrics as the SRGAN paper reports them: PSNR and SSIM on the Y channel of YCbCr
(ITU-R BT.601, Y in [16, 235] as MATLAB's rgb2ycbcr), with ``border`` = scale pixels cropped from each
side ("center-cropped, removal of a 4-pixel wide strip from each border")."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def rgb_to_y(rgb) -> np.ndarray:
    """Y of YCbCr (BT.601, studio range) in [16, 235] for RGB in [0, 1], shape (H, W, 3) -> (H, W)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3), got {rgb.shape}")
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def _y_pair(sr, hr, border: int):
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {sr.shape} and {hr.shape}")
    ys, yh = (rgb_to_y(a) if a.ndim == 3 else np.asarray(a, dtype=np.float64) * 255.0 for a in (sr, hr))
    if border:
        ys, yh = ys[border:-border, border:-border], yh[border:-border, border:-border]
    return ys, yh


def psnr_y(sr, hr, border: int = 4) -> float:
    """PSNR (dB) of Y with peak 255; images in [0, 1], RGB (H, W, 3) or grey (H, W) (taken as Y*255).
    Identical images give inf."""
    ys, yh = _y_pair(sr, hr, border)
    mse = np.mean((ys - yh) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_y(sr, hr, border: int = 4) -> float:
    """SSIM of Y with Wang et al.'s settings: 11x11 Gaussian window sigma 1.5, K1 0.01, K2 0.03, range 255."""
    ys, yh = _y_pair(sr, hr, border)
    return float(structural_similarity(ys, yh, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))
