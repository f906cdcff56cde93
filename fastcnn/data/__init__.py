"""Datasets that ship inside Python packages (nothing is downloaded), as torch Datasets.

    from fastcnn import data
    train, val, test = data.digits(size=28, seed=0)        # sklearn digits, upsampled, [N, 1, 28, 28] in [0, 1]
    faces = data.lfw_faces(size=32, seed=0)                # skimage lfw_subset: face (1) / non-face (0)
    patches = data.ImagePatches(data.sample_images(), 17, count=5000, seed=0)
    pairs = data.LowLightPairs(patches, seed=0)            # LLNet: (darkened noisy patch, clean patch)

Each loader returns deterministic train / validation / test splits from `seed`.
"""
from .splits import Splits, split_indices
from .digits import digits, digits_binary
from .images import ImagePatches, sample_images, random_crops
from .lfw import lfw_faces
from .lowlight import LowLightPairs, darken

__all__ = ["Splits", "split_indices", "digits", "digits_binary", "ImagePatches", "sample_images", "random_crops",
           "lfw_faces", "LowLightPairs", "darken"]
