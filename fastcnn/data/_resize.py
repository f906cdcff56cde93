"""Resizing a stack of images (data preparation on numpy, not network compute)."""
from __future__ import annotations

import numpy as np


def resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    """[N, H, W] float images -> [N, size, size], bilinear (skimage), values kept in their range."""
    from skimage.transform import resize

    if images.shape[1:] == (size, size):
        return images.astype(np.float32)
    return np.stack([resize(im, (size, size), order=1, mode="edge", anti_aliasing=False) for im in images]
                    ).astype(np.float32)
