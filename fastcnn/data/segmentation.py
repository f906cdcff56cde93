"""Synthetic-shapes semantic segmentation (issue 13; NETWORKS.md rows 13-16).

Each sample is a textured background (a crop of skimage.data brick, grass or gravel) with a few shapes
drawn over it by skimage.draw, each shape filled with a crop of another texture. The class of a pixel is
the kind of shape covering it, so a network must use shape (context), not texture, to label it:

    0 background, 1 ellipse, 2 rectangle, 3 triangle, 4 star            (NUM_CLASSES = 5)

Shapes drawn later occlude earlier ones; the labels follow what is visible. The boundary map marks the
pixels on either side of a change of label (``label_boundaries``, skimage's 'thick' mode), the target of
PIDNet's boundary head and of the boundary F1 in fastcnn.eval.segmentation.

Determinism: sample ``i`` of a split is generated from ``numpy.random.default_rng((seed, split, i))``
alone, so it does not depend on the dataset's length or on the order samples are read.
Train/test split: train crops come from rows [0, 352) of each texture image, test crops from rows
[352, 512) (160 rows, so the height is at most 160), and the two splits draw from different seed
streams; no test pixel of texture was seen in training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from skimage import data as skdata
from skimage import draw
from skimage.segmentation import find_boundaries

CLASSES = ("background", "ellipse", "rectangle", "triangle", "star")
NUM_CLASSES = len(CLASSES)
TEXTURES = ("brick", "grass", "gravel")
SPLITS = ("train", "test")
# rows of each 512x512 texture image reserved to each split
_SPLIT_ROWS = {"train": (0, 352), "test": (352, 512)}


@functools.lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    return getattr(skdata, name)().astype(np.float32) / 255.0


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """Boolean map of the pixels on either side of a change of label (4-connectivity)."""
    return find_boundaries(np.asarray(labels), connectivity=1, mode="thick")


@dataclass
class ShapesSample:
    image: np.ndarray       # float32 (H, W, C) in [0, 1]
    labels: np.ndarray      # int64 (H, W) in [0, NUM_CLASSES)
    boundary: np.ndarray    # bool (H, W)


def _texture_crop(rng: np.random.Generator, split: str, h: int, w: int, channels: int) -> np.ndarray:
    name = TEXTURES[rng.integers(len(TEXTURES))]
    tex = _texture(name)
    r0, r1 = _SPLIT_ROWS[split]
    y = rng.integers(r0, r1 - h + 1)
    x = rng.integers(0, tex.shape[1] - w + 1)
    crop = tex[y:y + h, x:x + w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    # contrast and brightness per region so that intensity alone does not give the class away
    crop = (crop - crop.mean()) * rng.uniform(0.6, 1.4) + rng.uniform(0.25, 0.75)
    if channels == 3:
        crop = crop[..., None] * rng.uniform(0.6, 1.4, size=3)[None, None, :]
    else:
        crop = crop[..., None]
    return np.clip(crop, 0.0, 1.0).astype(np.float32)


def _star_vertices(cy, cx, r, rotation, points=5):
    angles = rotation + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, r, 0.45 * r)
    return cy + radii * np.sin(angles), cx + radii * np.cos(angles)


def _shape_mask(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Pixel mask of one shape of class ``cls`` with a random size, position and rotation."""
    size = min(h, w)
    r = rng.uniform(0.12, 0.28) * size
    cy, cx = rng.uniform(0.1 * h, 0.9 * h), rng.uniform(0.1 * w, 0.9 * w)
    rotation = rng.uniform(0, np.pi)
    if cls == 1:
        rr, cc = draw.ellipse(cy, cx, r, r * rng.uniform(0.5, 1.0), shape=(h, w), rotation=rotation)
    elif cls == 2:
        a, b = r, r * rng.uniform(0.5, 1.0)
        corners = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
        rot = np.array([[np.cos(rotation), -np.sin(rotation)], [np.sin(rotation), np.cos(rotation)]])
        pts = corners @ rot.T
        rr, cc = draw.polygon(cy + pts[:, 0], cx + pts[:, 1], shape=(h, w))
    elif cls == 3:
        angles = rotation + np.array([0.0, 2.0, 4.0]) * np.pi / 3
        rr, cc = draw.polygon(cy + r * np.sin(angles), cx + r * np.cos(angles), shape=(h, w))
    elif cls == 4:
        rr, cc = draw.polygon(*_star_vertices(cy, cx, r, rotation), shape=(h, w))
    else:
        raise ValueError(f"cls must be a shape class in 1..{NUM_CLASSES - 1}, got {cls}")
    mask = np.zeros((h, w), dtype=bool)
    mask[rr, cc] = True
    return mask


def make_sample(seed: int, split: str, index: int, size=(64, 64), channels: int = 3,
                max_shapes: int = 4) -> ShapesSample:
    """Sample ``index`` of ``split``: a function of its arguments only."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    h, w = size
    r0, r1 = _SPLIT_ROWS[split]
    if not (16 <= h <= r1 - r0 and 16 <= w <= 512):
        raise ValueError(f"size must be within 16..{r1 - r0} x 16..512 for split {split!r}, got {size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    rng = np.random.default_rng((seed, SPLITS.index(split), index))
    image = _texture_crop(rng, split, h, w, channels)
    labels = np.zeros((h, w), dtype=np.int64)
    for _ in range(rng.integers(1, max_shapes + 1)):
        cls = int(rng.integers(1, NUM_CLASSES))
        mask = _shape_mask(rng, cls, h, w)
        image[mask] = _texture_crop(rng, split, h, w, channels)[mask]
        labels[mask] = cls
    return ShapesSample(image=image, labels=labels, boundary=label_boundaries(labels))


class SyntheticShapes(torch.utils.data.Dataset):
    """``length`` samples of one split as tensors.

    Item: ``(image float32 (C, H, W) in [0, 1], labels int64 (H, W))``, plus ``boundary float32 (H, W)``
    in {0, 1} when ``with_boundary`` (PIDNet). ``cache`` keeps generated samples in memory.
    """

    def __init__(self, split: str = "train", length: int = 1000, size=(64, 64), seed: int = 0,
                 channels: int = 3, max_shapes: int = 4, with_boundary: bool = False, cache: bool = True):
        if length < 1:
            raise ValueError(f"length must be positive, got {length}")
        if isinstance(size, int):
            size = (size, size)
        make_sample(seed, split, 0, size, channels, max_shapes)  # validates the arguments early
        self.split, self.length, self.size, self.seed = split, length, tuple(size), seed
        self.channels, self.max_shapes, self.with_boundary = channels, max_shapes, with_boundary
        self._cache = {} if cache else None

    num_classes = NUM_CLASSES
    classes = CLASSES

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int) -> ShapesSample:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        s = make_sample(self.seed, self.split, index, self.size, self.channels, self.max_shapes)
        if self._cache is not None:
            self._cache[index] = s
        return s

    def __getitem__(self, index: int):
        s = self.sample(index)
        image = torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1)))
        labels = torch.from_numpy(s.labels)
        if self.with_boundary:
            return image, labels, torch.from_numpy(s.boundary.astype(np.float32))
        return image, labels
