"""Frechet distance between two sets of feature vectors (the FID formula; the features come from a
network the caller trained, since no pretrained Inception exists offline).

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

tr((S1 S2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the symmetric
positive semi-definite S1^(1/2) S2 S1^(1/2), which S1 S2 is similar to: no complex parts and no
failure on singular covariances (fewer samples than dimensions), unlike a general sqrtm.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as the FID reference code) of (N, D) features, N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    w, v = linalg.eigh(matrix)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2, method: str = "eigh") -> float:
    """Frechet distance of the Gaussians N(mu1, sigma1) and N(mu2, sigma2). ``method`` 'eigh' (default,
    see module doc) or 'sqrtm' (scipy.linalg.sqrtm of S1 S2, the reference implementation's form)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes do not agree: mu {mu1.shape} {mu2.shape}, sigma {s1.shape} {s2.shape}")
    if method == "eigh":
        root1 = _psd_sqrt(s1)
        middle = root1 @ s2 @ root1
        tr_covmean = np.sqrt(np.clip(linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    elif method == "sqrtm":
        tr_covmean = np.trace(linalg.sqrtm(s1 @ s2)).real
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def frechet_distance_of_features(features1, features2) -> float:
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


@torch.no_grad()
def network_features(network, images, batch_size: int = 256) -> np.ndarray:
    """(N, D) float64 outputs of ``network`` (e.g. a trained classifier cut before its last layer) on
    ``images`` (N, C, H, W), in eval mode, batch by batch; the network's mode is restored after."""
    was_training = network.training
    network.eval()
    try:
        out = [network(images[k:k + batch_size]).reshape(min(batch_size, len(images) - k), -1)
               for k in range(0, len(images), batch_size)]
    finally:
        network.train(was_training)
    return torch.cat(out).double().cpu().numpy()
