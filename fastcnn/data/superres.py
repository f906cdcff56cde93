"""x4 super-resolution data (issue 13; NETWORKS.md row 12, SRResNet / SRGAN).

High-resolution (HR) crops of shipped colour images and their low-resolution (LR) versions.

Which bicubic: Pillow's ``Image.resize(..., Image.BICUBIC)`` on float32 ('F' mode) channels, i.e. Keys'
cubic convolution with a = -0.5 whose support is stretched by the scale factor when downsampling (an
anti-aliasing filter, no separate blur). That is the kernel of MATLAB's ``imresize(..., 'bicubic')`` used
to make the SRGAN paper's LR images; the only difference is MATLAB's symmetric padding at the border
(Pillow renormalises the clipped kernel instead). It equals torch's
``interpolate(mode="bicubic", antialias=True, align_corners=False)`` to float32 rounding. No rounding to 8 bits happens in between. The same
function upsamples for the bicubic baseline (``bicubic_resize(lr, hr_shape)``).

Split by image: ``TRAIN_IMAGES`` give random crops (with flips and 90-degree rotations), ``HELDOUT_IMAGE``
(chelsea, the cat) is only used whole for evaluation. HR and LR are float32 in [0, 1], (H, W, 3).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

TRAIN_IMAGES = ("astronaut", "coffee", "rocket", "hubble_deep_field")
HELDOUT_IMAGE = "chelsea"
SCALE = 4


@functools.lru_cache(maxsize=None)
def _colour(name: str) -> np.ndarray:
    image = getattr(skdata, name)()
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} is not an RGB image")
    return image.astype(np.float32) / 255.0


def bicubic_resize(image: np.ndarray, shape) -> np.ndarray:
    """Resize (H, W) or (H, W, C) float ``image`` to ``shape`` (h, w) with Pillow's bicubic (see module doc)."""
    image = np.asarray(image, dtype=np.float32)
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c]), mode="F")
                               .resize((w, h), Image.BICUBIC)) for c in range(planes.shape[2])], axis=-1)
    return out[..., 0] if image.ndim == 2 else out


def downscale(hr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """The LR image of ``hr``, whose height and width must be multiples of ``scale``. Bicubic overshoot is
    clipped to [0, 1], as saving an LR image would do."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"hr size {hr.shape[:2]} must be a multiple of scale {scale}")
    return np.clip(bicubic_resize(hr, (h // scale, w // scale)), 0.0, 1.0)


def upscale_bicubic(lr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """The bicubic baseline: ``lr`` enlarged ``scale`` times, clipped to [0, 1]."""
    return np.clip(bicubic_resize(lr, (lr.shape[0] * scale, lr.shape[1] * scale)), 0.0, 1.0)


def heldout_pair(scale: int = SCALE):
    """(lr, hr) of the held-out image, HR cropped at the bottom/right to a multiple of ``scale``
    (chelsea 300x451 -> 300x448, LR 75x112)."""
    hr = _colour(HELDOUT_IMAGE)
    hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale].copy()
    return downscale(hr, scale), hr


def random_crop_pair(rng: np.random.Generator, hr_size: int = 96, scale: int = SCALE):
    """(lr, hr): an ``hr_size`` square of a random training image, randomly flipped / rotated, and its LR."""
    if hr_size % scale:
        raise ValueError(f"hr_size {hr_size} must be a multiple of scale {scale}")
    image = _colour(TRAIN_IMAGES[rng.integers(len(TRAIN_IMAGES))])
    h, w = image.shape[:2]
    y, x = rng.integers(0, h - hr_size + 1), rng.integers(0, w - hr_size + 1)
    hr = image[y:y + hr_size, x:x + hr_size]
    hr = np.rot90(hr, k=int(rng.integers(4)))
    if rng.random() < 0.5:
        hr = hr[:, ::-1]
    hr = np.ascontiguousarray(hr)
    return downscale(hr, scale), hr


class SuperResCrops(torch.utils.data.Dataset):
    """Training crops. Item: ``(lr (3, hr/scale, hr/scale), hr (3, hr_size, hr_size))`` float32 in [0, 1]
    (SRGAN's generator ends in tanh: a recipe maps HR to [-1, 1] itself), plus ``upscale_bicubic(lr)``
    (3, hr_size, hr_size) as a third tensor when ``bicubic``. Item ``i`` depends only on (seed, i);
    ``cache`` keeps generated items in memory."""

    def __init__(self, length: int = 1000, hr_size: int = 96, scale: int = SCALE, seed: int = 0,
                 cache: bool = True, bicubic: bool = False):
        if length < 1:
            raise ValueError(f"length must be positive, got {length}")
        if hr_size % scale:
            raise ValueError(f"hr_size {hr_size} must be a multiple of scale {scale}")
        self.length, self.hr_size, self.scale, self.seed = length, hr_size, scale, seed
        self.bicubic = bicubic
        self._cache = {} if cache else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} crops")
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        lr, hr = random_crop_pair(np.random.default_rng((self.seed, index)), self.hr_size, self.scale)
        planes = [lr, hr] + ([upscale_bicubic(lr, self.scale)] if self.bicubic else [])
        item = tuple(torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1))) for p in planes)
        if self._cache is not None:
            self._cache[index] = item
        return item
