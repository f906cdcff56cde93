"""fastcnn.eval.fid: Frechet distance of feature sets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastcnn.eval import fid


def test_identical_sets_give_zero():
    x = np.random.default_rng(0).normal(size=(400, 6))
    assert fid.frechet_distance_of_features(x, x) == pytest.approx(0.0, abs=1e-9)


def test_shifted_gaussians_give_the_squared_mean_difference():
    rng = np.random.default_rng(1)
    shift = np.array([1.0, -2.0, 0.5, 3.0])
    x = rng.normal(size=(5000, 4))
    # the same samples shifted: identical covariances, distance |shift|^2 exactly
    assert fid.frechet_distance_of_features(x, x + shift) == pytest.approx(shift @ shift, rel=1e-9)
    # independent samples: |shift|^2 up to sampling error
    y = rng.normal(size=(5000, 4)) + shift
    assert fid.frechet_distance_of_features(x, y) == pytest.approx(shift @ shift, abs=0.1)


def test_closed_forms_and_sqrtm_agreement():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert fid.frechet_distance([0.0], [[4.0]], [1.0], [[9.0]]) == pytest.approx(1 + 1)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        fid.frechet_distance(mu1, s1, mu2, s2, method="sqrtm"), rel=1e-8)
    # fewer samples than dimensions: singular covariances, still finite and >= 0
    small = fid.frechet_distance_of_features(rng.normal(size=(5, 20)), rng.normal(size=(6, 20)))
    assert np.isfinite(small) and small >= 0
    with pytest.raises(ValueError, match="shapes"):
        fid.frechet_distance(mu1, s1, mu2[:4], s2[:4, :4])


def test_network_features_batches_and_restores_mode():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3), torch.nn.Dropout(0.5))
    net.train()
    images = torch.randn(10, 3, 2, 2)
    out = fid.network_features(net, images, batch_size=4)
    assert out.shape == (10, 3) and net.training
    net.eval()
    np.testing.assert_allclose(out, net(images).detach().double().numpy(), rtol=1e-6)
