"""fastcnn.eval.filters: Gaussian derivatives, explained energy, patch PCA, the plot."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn.eval import filters


def test_gaussian_derivatives_are_what_they_say():
    g0 = filters.gaussian_derivative(9, 1.5, 0, 0)
    gx = filters.gaussian_derivative(9, 1.5, 0, 1)
    gyy = filters.gaussian_derivative(9, 1.5, 2, 0)
    assert np.linalg.norm(gx) == pytest.approx(1.0)
    np.testing.assert_allclose(gx, -gx[:, ::-1], atol=1e-15)      # odd in x
    np.testing.assert_allclose(gx, gx[::-1], atol=1e-15)          # even in y
    np.testing.assert_allclose(gyy, gyy[::-1], atol=1e-15)
    assert np.all(g0 > 0) and abs(gx.sum()) < 1e-12
    assert filters.gaussian_derivative_bank(7, sigmas=(1, 2)).shape == (12, 7, 7)
    assert filters.gaussian_derivative_bank(7, sigmas=(1, 2), max_order=1).shape == (6, 7, 7)


def test_energy_is_one_in_the_span_and_less_outside():
    rng = np.random.default_rng(0)
    basis = filters.gaussian_derivative_basis(5, 1.0, k=6)
    inside = np.tensordot(rng.normal(size=(8, 6)), basis, axes=1)
    assert filters.gaussian_derivative_energy(inside, 1.0, k=6) == pytest.approx(1.0)
    random_bank = rng.normal(size=(32, 3, 5, 5))
    fraction = filters.gaussian_derivative_energy(random_bank, 1.0, k=6)
    assert fraction < 0.5
    # the same number by an explicit least-squares projection
    flat, b = random_bank.reshape(-1, 25), basis.reshape(6, 25)
    coef, *_ = np.linalg.lstsq(b.T, flat.T, rcond=None)
    assert fraction == pytest.approx(((b.T @ coef) ** 2).sum() / (flat ** 2).sum())
    # a filter orthogonal to the span explains nothing
    q, _ = np.linalg.qr(np.concatenate([b.T, rng.normal(size=(25, 1))], axis=1))
    assert filters.explained_energy(q[:, 6].reshape(1, 5, 5), basis) == pytest.approx(0.0, abs=1e-12)
    sigma, best = filters.best_sigma_energy(inside, k=6, sigmas=[0.7, 1.0, 1.4])
    assert best == pytest.approx(1.0) and sigma == 1.0


def test_patch_pca_is_orthonormal_and_sorted():
    patches = filters.natural_image_patches(7, count=2000, seed=0)
    assert patches.shape == (2000, 7, 7)
    np.testing.assert_allclose(patches.mean(axis=(1, 2)), 0, atol=1e-12)
    comps, variance = filters.patch_pca(patches, 6)
    flat = comps.reshape(6, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(6), atol=1e-10)
    assert np.all(np.diff(variance) <= 0) and variance.sum() < 1


def test_plot_writes_a_png(tmp_path):
    bank = filters.gaussian_derivative_basis(5, 1.2, k=6)[:, None] + 0.01
    out = filters.plot_filter_comparison(bank, tmp_path / "filters.png", pca_count=500)
    assert (tmp_path / "filters.png").read_bytes()[:4] == b"\x89PNG"
    assert 0.9 < out["energy_gaussian"] <= 1.0 + 1e-9
