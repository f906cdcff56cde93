"""Image pairs with known correspondence, and HardNet patch pairs (issue 13; NETWORKS.md rows 5, 6).

* Homography pairs: a crop of a shipped image (the source) and its warp by a random homography (the
  target), with the 3x3 matrix mapping source (x, y) to target (x, y), the mask of target pixels that come
  from inside the source, and the dense flow source pixel -> target position (R2D2's "aflow").
  Homographies perturb the four corners of the crop, then rotate and scale about its centre; the target
  also gets a photometric change (gain, bias, gamma, noise) so that pairs are not pixel copies.
* The motorcycle stereo pair (skimage.data.stereo_motorcycle) as a real pair nobody trains on: a left
  pixel (x, y) is at (x - disparity[y, x], y) in the right image; inf disparities (7.3%) have no match.
* Patch pairs for HardNet: DoG / SIFT keypoints (skimage.feature.SIFT) of the source, a 32x32 patch around
  each keypoint (half-width ``magnification`` * keypoint sigma, rotated to the SIFT orientation) and the
  patch at the same points mapped through the homography (a slightly jittered frame, as detections are
  never exact). Every patch is standardised (zero mean, unit standard deviation), HardNet's input norm.

Coordinates are (x, y) = (column, row) throughout. Train and held-out sets are split by source image
(``SOURCE_IMAGES``). Everything is a function of the seed; nothing is downloaded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from skimage import color
from skimage import data as skdata
from skimage.feature import SIFT
from skimage.transform import ProjectiveTransform, resize, warp

SOURCE_IMAGES = {
    "train": ("astronaut", "camera", "chelsea", "rocket", "brick", "grass", "gravel", "page", "text",
              "hubble_deep_field"),
    "heldout": ("coffee", "coins"),
}
PATCH_SIZE = 32


@functools.lru_cache(maxsize=None)
def _shipped(name: str) -> np.ndarray:
    image = getattr(skdata, name)()
    return (image.astype(np.float32) / 255.0)


def load_image(name: str, gray: bool = True) -> np.ndarray:
    """A shipped image as float32 in [0, 1]: (H, W) when ``gray``, else (H, W, 3) (grey images repeated)."""
    image = _shipped(name)
    if gray:
        return color.rgb2gray(image).astype(np.float32) if image.ndim == 3 else image.copy()
    return image.copy() if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def random_homography(rng: np.random.Generator, shape, perturb: float = 0.15,
                      max_rotation: float = np.pi / 8, scale_range=(0.8, 1.2)) -> ProjectiveTransform:
    """A homography of an image of ``shape`` (H, W): each corner moved by up to ``perturb`` of the size,
    then a rotation by up to ``max_rotation`` and a scale in ``scale_range`` about the centre."""
    h, w = shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    moved = corners + rng.uniform(-perturb, perturb, size=(4, 2)) * [w, h]
    angle, scale = rng.uniform(-max_rotation, max_rotation), rng.uniform(*scale_range)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (moved - centre) @ rot.T + centre
    if hasattr(ProjectiveTransform, "from_estimate"):  # skimage >= 0.26
        transform = ProjectiveTransform.from_estimate(corners, moved)
    else:
        transform = ProjectiveTransform()
        transform = transform if transform.estimate(corners, moved) else None
    if not transform:
        raise RuntimeError("degenerate random homography")  # four corners in general position: never
    return transform


def apply_homography(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Map (N, 2) points (x, y) through a 3x3 homography."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    p = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ np.asarray(matrix, dtype=np.float64).T
    return p[:, :2] / p[:, 2:3]


def _inside(xy: np.ndarray, shape) -> np.ndarray:
    h, w = shape[:2]
    return (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)


def _photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    gamma = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    out = rng.uniform(0.8, 1.2) * np.clip(image, 0, 1) ** gamma + rng.uniform(-0.1, 0.1)
    out = out + rng.normal(0.0, 0.01, size=image.shape)
    return np.clip(out, 0, 1).astype(np.float32)


@dataclass
class HomographyPair:
    source: np.ndarray       # float32 (H, W) or (H, W, 3)
    target: np.ndarray       # same shape as source
    homography: np.ndarray   # float64 (3, 3): source (x, y) -> target (x, y)
    mask: np.ndarray         # bool (H, W): target pixels whose preimage is inside the source
    name: str                # the shipped image the source was cropped from

    def correspond(self, xy: np.ndarray):
        """Target positions of source points (x, y), and whether each lands inside the target."""
        mapped = apply_homography(self.homography, xy)
        return mapped, _inside(mapped, self.target.shape)

    def flow(self) -> np.ndarray:
        """float32 (H, W, 2): target (x, y) of every source pixel, NaN where it leaves the target."""
        h, w = self.source.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w]
        mapped, valid = self.correspond(np.stack([xs.ravel(), ys.ravel()], axis=1))
        mapped[~valid] = np.nan
        return mapped.reshape(h, w, 2).astype(np.float32)


def make_homography_pair(image: np.ndarray, rng: np.random.Generator, size=None, name: str = "",
                         perturb: float = 0.15, photometric: bool = True) -> HomographyPair:
    """Crop ``size`` (H, W) at random from ``image`` (whole image when None) and warp it."""
    h, w = image.shape[:2]
    ch, cw = (h, w) if size is None else size
    if ch > h or cw > w:
        raise ValueError(f"size {size} is larger than the image {image.shape[:2]}")
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    source = np.ascontiguousarray(image[y:y + ch, x:x + cw])
    transform = random_homography(rng, source.shape, perturb=perturb)
    # warp wants the map from output (target) coordinates to input (source) coordinates
    target = warp(source, transform.inverse, output_shape=source.shape[:2], order=1, cval=0.0,
                  preserve_range=True).astype(np.float32)
    ys, xs = np.mgrid[0:ch, 0:cw]
    back = apply_homography(np.linalg.inv(transform.params), np.stack([xs.ravel(), ys.ravel()], axis=1))
    mask = _inside(back, source.shape).reshape(ch, cw)
    if photometric:
        target = _photometric(rng, target)
    # zero outside the mask: no half-interpolated border pixels and no noise where nothing was seen
    target = np.where(mask[..., None] if target.ndim == 3 else mask, target, 0.0)
    return HomographyPair(source=source, target=target.astype(np.float32),
                          homography=transform.params.copy(), mask=mask, name=name)


def _split_index(split: str) -> int:
    if split not in SOURCE_IMAGES:
        raise ValueError(f"split must be one of {tuple(SOURCE_IMAGES)}, got {split!r}")
    return tuple(SOURCE_IMAGES).index(split)


def pair_for_index(seed: int, split: str, index: int, size=(192, 192), gray: bool = False,
                   perturb: float = 0.15, photometric: bool = True) -> HomographyPair:
    """Pair ``index`` of ``split``: the source image cycles through the split's images."""
    rng = np.random.default_rng((seed, _split_index(split), index))
    name = SOURCE_IMAGES[split][index % len(SOURCE_IMAGES[split])]
    image = load_image(name, gray)
    factor = max(size[0] / image.shape[0], size[1] / image.shape[1], 1.0)
    if factor > 1:  # text and page are smaller than the usual crops: enlarge them to fit
        shape = (int(np.ceil(image.shape[0] * factor)), int(np.ceil(image.shape[1] * factor)))
        image = resize(image, shape + image.shape[2:], order=1).astype(np.float32)
    return make_homography_pair(image, rng, size=size, name=name, perturb=perturb, photometric=photometric)


def heldout_pairs(pairs_per_image: int = 3, size=(256, 256), seed: int = 0, gray: bool = False):
    """The fixed held-out homography pairs (coffee, coins) every matcher is evaluated on."""
    n = pairs_per_image * len(SOURCE_IMAGES["heldout"])
    return [pair_for_index(seed, "heldout", i, size=size, gray=gray) for i in range(n)]


class HomographyPairs(torch.utils.data.Dataset):
    """Training pairs for R2D2. Item: dict of tensors ``source``/``target`` (C, H, W) float32 in [0, 1],
    ``homography`` (3, 3) float64, ``mask`` (H, W) bool (target pixels with a preimage) and ``flow``
    (2, H, W) float32 (target x, y of each source pixel; NaN outside)."""

    def __init__(self, split: str = "train", length: int = 1000, size=(192, 192), seed: int = 0,
                 gray: bool = False, perturb: float = 0.15, photometric: bool = True):
        _split_index(split)
        if length < 1:
            raise ValueError(f"length must be positive, got {length}")
        self.split, self.length, self.size, self.seed, self.gray = split, length, tuple(size), seed, gray
        self.perturb, self.photometric = perturb, photometric

    def __len__(self) -> int:
        return self.length

    def pair(self, index: int) -> HomographyPair:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        return pair_for_index(self.seed, self.split, index, self.size, self.gray, self.perturb, self.photometric)

    def __getitem__(self, index: int):
        p = self.pair(index)

        def chw(a):
            return torch.from_numpy(np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1)))

        return {"source": chw(p.source), "target": chw(p.target), "homography": torch.from_numpy(p.homography),
                "mask": torch.from_numpy(p.mask), "flow": chw(p.flow())}


# ----------------------------------------------------------------------------------------- stereo pair

@dataclass
class StereoPair:
    left: np.ndarray        # float32 (H, W) or (H, W, 3)
    right: np.ndarray
    disparity: np.ndarray   # float32 (H, W) for left pixels, inf where unknown
    valid: np.ndarray       # bool (H, W): finite disparity

    def correspond(self, xy: np.ndarray):
        """Right-image positions of left points (x, y): (x - d, y) with d at the nearest left pixel;
        invalid where d is inf or either point leaves the image."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        h, w = self.disparity.shape
        inside = _inside(xy, (h, w))
        cols = np.clip(np.rint(xy[:, 0]), 0, w - 1).astype(int)
        rows = np.clip(np.rint(xy[:, 1]), 0, h - 1).astype(int)
        d = self.disparity[rows, cols].astype(np.float64)
        finite = np.isfinite(d)
        mapped = np.stack([xy[:, 0] - np.where(finite, d, 0.0), xy[:, 1]], axis=1)
        return mapped, inside & finite & _inside(mapped, (h, w))


def stereo_pair(scale: float = 1.0, gray: bool = False) -> StereoPair:
    """The motorcycle pair, optionally resized by ``scale`` (images anti-aliased; disparities sampled at
    the nearest pixel and multiplied by ``scale``, so inf stays inf)."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    left, right, disparity = skdata.stereo_motorcycle()
    left, right = left.astype(np.float32) / 255.0, right.astype(np.float32) / 255.0
    if gray:
        left, right = color.rgb2gray(left).astype(np.float32), color.rgb2gray(right).astype(np.float32)
    if scale != 1:
        h, w = disparity.shape
        nh, nw = int(round(h * scale)), int(round(w * scale))
        left = resize(left, (nh, nw), order=1, anti_aliasing=True).astype(np.float32)
        right = resize(right, (nh, nw), order=1, anti_aliasing=True).astype(np.float32)
        rows = np.minimum(((np.arange(nh) + 0.5) / scale).astype(int), h - 1)
        cols = np.minimum(((np.arange(nw) + 0.5) / scale).astype(int), w - 1)
        disparity = disparity[np.ix_(rows, cols)] * scale
    disparity = disparity.astype(np.float32)
    return StereoPair(left=left, right=right, disparity=disparity, valid=np.isfinite(disparity))


# ----------------------------------------------------------------------------------------- patches

def standardise(patches: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation per patch (over its last two axes)."""
    mean = patches.mean(axis=(-2, -1), keepdims=True)
    std = patches.std(axis=(-2, -1), keepdims=True)
    return ((patches - mean) / (std + 1e-7)).astype(np.float32)


def patch_grid(centres_xy, sigmas, orientations, magnification: float = 6.0,
               patch_size: int = PATCH_SIZE) -> np.ndarray:
    """(N, P, P, 2) source positions (x, y) of each patch pixel: a square of half-width
    ``magnification`` * sigma centred on the keypoint, its x axis along the orientation."""
    centres = np.asarray(centres_xy, dtype=np.float64).reshape(-1, 2)
    half = magnification * np.asarray(sigmas, dtype=np.float64).reshape(-1)
    theta = np.asarray(orientations, dtype=np.float64).reshape(-1)
    u = (np.arange(patch_size) - (patch_size - 1) / 2) / ((patch_size - 1) / 2)   # [-1, 1]
    gx, gy = np.meshgrid(u, u)                                                  # (P, P) each
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    x = centres[:, 0, None, None] + half[:, None, None] * (c * gx - s * gy)
    y = centres[:, 1, None, None] + half[:, None, None] * (s * gx + c * gy)
    return np.stack([x, y], axis=-1)


def sample_patches(image: np.ndarray, grid_xy: np.ndarray) -> np.ndarray:
    """Bilinear samples of a grey ``image`` at ``grid_xy`` (..., 2); NaN outside the image."""
    if image.ndim != 2:
        raise ValueError(f"image must be grey (H, W), got shape {image.shape}")
    coords = np.stack([grid_xy[..., 1].ravel(), grid_xy[..., 0].ravel()])
    values = ndimage.map_coordinates(image.astype(np.float64), coords, order=1, mode="constant", cval=np.nan)
    out = values.reshape(grid_xy.shape[:-1])
    out[~_inside(grid_xy.reshape(-1, 2), image.shape).reshape(out.shape)] = np.nan
    return out


def sift_keypoints(image: np.ndarray, max_keypoints: int | None = None):
    """DoG keypoints of a grey image by skimage.feature.SIFT: (xy (N, 2), sigmas (N,), orientations (N,),
    descriptors (N, 128) uint8). Strongest-first truncation is not available in skimage, so
    ``max_keypoints`` keeps the largest-scale ones (the most stable under resampling)."""
    sift = SIFT()
    sift.detect_and_extract(image)
    xy = sift.positions[:, ::-1].astype(np.float64)
    sigmas, orientations, descriptors = sift.sigmas.astype(np.float64), sift.orientations, sift.descriptors
    if max_keypoints is not None and len(xy) > max_keypoints:
        keep = np.sort(np.argsort(-sigmas, kind="stable")[:max_keypoints])
        xy, sigmas, orientations, descriptors = xy[keep], sigmas[keep], orientations[keep], descriptors[keep]
    return xy, sigmas, orientations, descriptors


def keypoint_patches(image: np.ndarray, xy, sigmas, orientations, magnification: float = 6.0):
    """Standardised 32x32 patches of a grey image at keypoints, and the mask of those fully inside."""
    patches = sample_patches(image, patch_grid(xy, sigmas, orientations, magnification))
    inside = ~np.isnan(patches).any(axis=(1, 2))
    return standardise(np.nan_to_num(patches)), inside


@dataclass
class PatchPairs:
    anchors: np.ndarray      # float32 (N, 1, 32, 32), source patches
    positives: np.ndarray    # float32 (N, 1, 32, 32), target patches of the same points
    source_xy: np.ndarray    # (N, 2) keypoint in its source
    target_xy: np.ndarray    # (N, 2) the keypoint mapped through the homography
    pair_index: np.ndarray   # (N,) which homography pair each patch came from

    def __len__(self) -> int:
        return len(self.anchors)

    def labelled_pairs(self, seed: int = 0, min_distance: float = 16.0):
        """Equal numbers of matching (label 1) and non-matching (label 0) (anchor, positive) index pairs
        for FPR95: negative j of anchor i is a random other patch from another pair or one whose
        keypoint is more than ``min_distance`` px away."""
        rng = np.random.default_rng(seed)
        n = len(self)
        if n < 2:
            raise ValueError("need at least two patch pairs to draw negatives")
        negatives = np.empty(n, dtype=np.int64)
        for i in range(n):
            far = (self.pair_index != self.pair_index[i]) | (
                np.linalg.norm(self.source_xy - self.source_xy[i], axis=1) > min_distance)
            candidates = np.flatnonzero(far)
            if len(candidates) == 0:
                raise ValueError(f"no negative for patch {i}: all keypoints within {min_distance} px")
            negatives[i] = rng.choice(candidates)
        idx = np.arange(n)
        a = np.concatenate([idx, idx])
        b = np.concatenate([idx, negatives])
        labels = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)])
        return a, b, labels


def make_patch_pairs(split: str = "train", num_pairs: int = 20, size=(256, 256), seed: int = 0,
                     max_keypoints: int = 200, magnification: float = 6.0, jitter: float = 0.2) -> PatchPairs:
    """Patch pairs from ``num_pairs`` grey homography pairs of ``split``. The target patch is sampled at
    the homography image of the source frame after a random similarity of the frame (rotation up to
    ``jitter`` rad x 3, scale up to 1 +- ``jitter``, shift up to ``jitter`` x half-width), as a detector
    never finds the exact same point, scale and orientation. The default 0.2 (up to 34 degrees, 20% scale,
    20% of the half-width) makes raw standardised pixels a weak descriptor (FPR95 about 0.27 on the held-out
    pairs, docs/results.md); with 0.05 raw pixels already reach FPR95 below 0.01, too easy to compare."""
    anchors, positives, src_xy, tgt_xy, pair_idx = [], [], [], [], []
    for k in range(num_pairs):
        pair = pair_for_index(seed, split, k, size=size, gray=True)
        rng = np.random.default_rng((seed, _split_index(split), k, 1))
        xy, sigmas, ori, _ = sift_keypoints(pair.source, max_keypoints)
        if len(xy) == 0:
            continue
        n = len(xy)
        src_grid = patch_grid(xy, sigmas, ori, magnification)
        shift = rng.uniform(-jitter, jitter, size=(n, 2)) * (magnification * sigmas)[:, None]
        jit_grid = patch_grid(xy + shift, sigmas * rng.uniform(1 - jitter, 1 + jitter, n),
                              ori + rng.uniform(-3 * jitter, 3 * jitter, n), magnification)
        tgt_grid = apply_homography(pair.homography, jit_grid.reshape(-1, 2)).reshape(jit_grid.shape)
        a = sample_patches(pair.source, src_grid)
        p = sample_patches(pair.target, tgt_grid)
        # keep points whose both patches are inside and whose target patch is all warped content
        ok = ~(np.isnan(a).any(axis=(1, 2)) | np.isnan(p).any(axis=(1, 2)))
        tgt_px = np.rint(tgt_grid).astype(int)
        h, w = pair.mask.shape
        tx, ty = np.clip(tgt_px[..., 0], 0, w - 1), np.clip(tgt_px[..., 1], 0, h - 1)
        ok &= pair.mask[ty, tx].all(axis=(1, 2))
        if not ok.any():
            continue
        anchors.append(standardise(a[ok]))
        positives.append(standardise(p[ok]))
        src_xy.append(xy[ok])
        tgt_xy.append(apply_homography(pair.homography, xy[ok]))
        pair_idx.append(np.full(int(ok.sum()), k))
    if not anchors:
        raise RuntimeError("no keypoint produced a patch pair")
    return PatchPairs(anchors=np.concatenate(anchors)[:, None], positives=np.concatenate(positives)[:, None],
                      source_xy=np.concatenate(src_xy), target_xy=np.concatenate(tgt_xy),
                      pair_index=np.concatenate(pair_idx))


class PatchPairDataset(torch.utils.data.Dataset):
    """(anchor, positive) float32 (1, 32, 32) tensors, for HardNet's hardest-in-batch triplet loss."""

    def __init__(self, pairs: PatchPairs):
        self.pairs = pairs
        self.anchors = torch.from_numpy(pairs.anchors)
        self.positives = torch.from_numpy(pairs.positives)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        return self.anchors[index], self.positives[index]
