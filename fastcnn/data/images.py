"""scikit-image's sample images (shipped with skimage, no download) and patch / crop samplers."""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

# Images that load offline (NETWORKS.md); 'camera' is kept out of the training default so it can be
# the held-out test image.
TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "brick", "grass", "gravel", "coins", "moon", "text", "page",
                "rocket")
# The other photographs and micrographs that ship (skimage.data and scikit-learn's two sample photos,
# loaded by the functions in _LOADERS), beside TRAIN_IMAGES for recipes that want every shipped image
# outside their held-out set. Not listed: the held-out ones (camera, hubble_deep_field, retina; the
# motorcycle stereo pair, R2D2's real test pair) and the synthetic drawings (chessboard, logo, phantom).
EXTRA_IMAGES = ("cell", "clock", "immunohistochemistry", "china", "flower")
OFFLINE_IMAGES = TRAIN_IMAGES + EXTRA_IMAGES + ("camera", "hubble_deep_field", "retina")


def _sklearn_photo(filename: str):
    from sklearn.datasets import load_sample_image
    return lambda: load_sample_image(filename)


_LOADERS = {"china": _sklearn_photo("china.jpg"), "flower": _sklearn_photo("flower.jpg")}


@functools.lru_cache(maxsize=32)
def _load(name: str, gray: bool) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray, gray2rgb

    if name not in OFFLINE_IMAGES:
        raise ValueError(f"names: {name!r} is not a shipped image; choose from {', '.join(OFFLINE_IMAGES)}")
    im = _LOADERS[name]() if name in _LOADERS else getattr(skimage.data, name)()
    if im.ndim == 3 and im.shape[2] == 4:
        im = im[..., :3]
    im = im.astype(np.float32) / (255.0 if im.dtype == np.uint8 else 1.0) if im.dtype != np.float32 else im
    if gray and im.ndim == 3:
        im = rgb2gray(im).astype(np.float32)
    if not gray and im.ndim == 2:
        im = gray2rgb(im).astype(np.float32)
    im = np.asarray(im, dtype=np.float32)
    im.setflags(write=False)
    return im


def sample_images(names: Sequence[str] = TRAIN_IMAGES, gray: bool = True):
    """The named skimage.data images as float32 arrays in [0, 1]: [H, W] gray or [H, W, 3] colour."""
    return [_load(n, gray) for n in names]


def shrink(image: np.ndarray, factor: float) -> np.ndarray:
    """`image` made `factor` times smaller (bilinear with anti-aliasing), float32 in [0, 1]."""
    if factor == 1:
        return image
    from skimage.transform import resize

    h, w = image.shape[:2]
    size = (max(1, round(h / factor)), max(1, round(w / factor))) + image.shape[2:]
    return resize(image, size, order=1, anti_aliasing=True).astype(np.float32)


def _as_chw(im: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.array(im, dtype=np.float32))  # a writable copy
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1)


class ImagePatches(Dataset):
    """`count` patch x patch crops drawn uniformly (image chosen in proportion to its area) from `images`;
    the positions are fixed by `seed`, so item i is the same patch every time. Items: [C, patch, patch]."""

    def __init__(self, images, patch: int, count: int, seed: int = 0):
        if not isinstance(patch, int) or patch < 1:
            raise ValueError(f"patch: expected a positive int, got {patch!r}")
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count: expected a positive int, got {count!r}")
        self.images = [_as_chw(im) for im in images]
        small = [i for i, im in enumerate(self.images) if min(im.shape[1:]) < patch]
        if small:
            raise ValueError(f"patch: {patch} is larger than image(s) {small}")
        rng = np.random.default_rng(seed)
        area = np.array([(im.shape[1] - patch + 1) * (im.shape[2] - patch + 1) for im in self.images], float)
        which = rng.choice(len(self.images), size=count, p=area / area.sum())
        self.where = [(int(k), int(rng.integers(self.images[k].shape[1] - patch + 1)),
                       int(rng.integers(self.images[k].shape[2] - patch + 1))) for k in which]
        self.patch = patch

    def __len__(self):
        return len(self.where)

    def __getitem__(self, i):
        k, r, c = self.where[i]
        return self.images[k][:, r:r + self.patch, c:c + self.patch].clone()


def random_crops(image: np.ndarray, size: int, count: int, seed: int = 0) -> torch.Tensor:
    """`count` random size x size crops of one image as a [count, C, size, size] tensor."""
    ds = ImagePatches([image], size, count, seed)
    return torch.stack([ds[i] for i in range(len(ds))])
