"""Datasets that ship inside Python packages (nothing is downloaded), as torch Datasets.

    from fastcnn import data
    train, val, test = data.digits(size=28, seed=0)        # sklearn digits, upsampled, [N, 1, 28, 28] in [0, 1]
    faces = data.lfw_faces(size=32, seed=0)                # skimage lfw_subset: face (1) / non-face (0)
    patches = data.ImagePatches(data.sample_images(), 17, count=5000, seed=0)
    pairs = data.LowLightPairs(patches, seed=0)            # LLNet: (darkened noisy patch, clean patch)

    shapes = data.SyntheticShapes("train", 1000, size=(64, 64), seed=0)  # segmentation: image, labels(, boundary)
    pairs = data.HomographyPairs("train", 1000, seed=0)   # local features; data.heldout_pairs(), data.stereo_pair()
    crops = data.SuperResCrops(1000, hr_size=96, seed=0)   # x4 super-resolution; data.heldout_pair() -> (lr, hr)

Each loader returns deterministic train / validation / test splits from `seed`.
"""
from .splits import Splits, split_indices
from .digits import digits, digits_binary
from .images import EXTRA_IMAGES, TRAIN_IMAGES, ImagePatches, sample_images, random_crops, shrink
from .lfw import lfw_faces
from .lowlight import LowLightPairs, darken
from .segmentation import CLASSES, NUM_CLASSES, SyntheticShapes, label_boundaries, make_sample
from .features import (HomographyPairs, PatchPairDataset, heldout_pairs, keypoint_patches, make_patch_pairs,
                       sift_keypoints, stereo_pair)
from .superres import SuperResCrops, bicubic_resize, downscale, heldout_pair, upscale_bicubic

__all__ = ["Splits", "split_indices", "digits", "digits_binary", "ImagePatches", "sample_images", "random_crops", "shrink",
           "TRAIN_IMAGES", "EXTRA_IMAGES",
           "lfw_faces", "LowLightPairs", "darken",
           "CLASSES", "NUM_CLASSES", "SyntheticShapes", "label_boundaries", "make_sample",
           "HomographyPairs", "PatchPairDataset", "heldout_pairs", "keypoint_patches", "make_patch_pairs",
           "sift_keypoints", "stereo_pair",
           "SuperResCrops", "bicubic_resize", "downscale", "heldout_pair", "upscale_bicubic"]
