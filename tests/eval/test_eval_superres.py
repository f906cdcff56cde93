"""fastcnn.eval.superres: Y of BT.601, PSNR of known noise, SSIM, border crop."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn.eval import superres as sr


def test_y_channel_range():
    assert sr.rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16.0)
    assert sr.rgb_to_y(np.ones((1, 1, 3)))[0, 0] == pytest.approx(235.0)


def test_psnr_of_known_noise():
    rng = np.random.default_rng(0)
    hr = np.full((40, 40, 3), 0.5)
    c = 0.01
    noisy = hr + c * rng.choice([-1.0, 1.0], size=(40, 40, 1))   # same sign on R, G, B: Y moves by 219 c
    assert sr.psnr_y(noisy, hr) == pytest.approx(20 * np.log10(255 / (219 * c)))
    assert sr.psnr_y(hr, hr) == float("inf")


def test_border_is_cropped():
    hr = np.random.default_rng(1).random((32, 32, 3))
    edited = hr.copy()
    edited[:4] = 0
    edited[:, -4:] = 1
    assert sr.psnr_y(edited, hr, border=4) == float("inf")
    assert sr.psnr_y(edited, hr, border=3) < 30


def test_ssim():
    rng = np.random.default_rng(2)
    hr = rng.random((48, 48, 3))
    assert sr.ssim_y(hr, hr) == pytest.approx(1.0)
    noise = rng.normal(size=hr.shape)
    scores = [sr.ssim_y(np.clip(hr + s * noise, 0, 1), hr) for s in (0.02, 0.1, 0.3)]
    assert 1 > scores[0] > scores[1] > scores[2]
    with pytest.raises(ValueError, match="same shape"):
        sr.ssim_y(hr[:40], hr)
