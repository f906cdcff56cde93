"""The vision datasets of issue 13 (fastcnn.data.segmentation / features / superres): determinism from the
seed, shapes and label ranges, and that the ground truth is true (homography maps a point where the
warp put it, stereo correspondences agree with the pixels, bicubic x4 matches its definition)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastcnn.data import features, segmentation, superres


# ------------------------------------------------------------------------------------- segmentation

def test_shapes_deterministic_and_independent_of_length():
    a = segmentation.SyntheticShapes("train", 5, (64, 80), seed=3, with_boundary=True)
    b = segmentation.SyntheticShapes("train", 50, (64, 80), seed=3, with_boundary=True, cache=False)
    for i in range(5):
        for x, y in zip(a[i], b[i]):
            assert torch.equal(x, y)
    other_seed = segmentation.SyntheticShapes("train", 5, (64, 80), seed=4)
    test_split = segmentation.SyntheticShapes("test", 5, (64, 80), seed=3)
    assert not torch.equal(a[0][0], other_seed[0][0])
    assert not torch.equal(a[0][0], test_split[0][0])


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_types_ranges_and_boundaries(channels):
    ds = segmentation.SyntheticShapes("test", 12, (96, 96), seed=0, channels=channels, with_boundary=True)
    seen = set()
    for i in range(len(ds)):
        image, labels, boundary = ds[i]
        assert image.shape == (channels, 96, 96) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        assert labels.shape == (96, 96) and labels.dtype == torch.int64
        assert 0 <= labels.min() and labels.max() < segmentation.NUM_CLASSES
        seen |= set(labels.unique().tolist())
        # boundary pixels are exactly those with a 4-neighbour of another label
        lab = labels.numpy()
        changes = np.zeros_like(lab, dtype=bool)
        for axis in (0, 1):
            diff = np.diff(lab, axis=axis) != 0
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            changes[tuple(lo)] |= diff
            changes[tuple(hi)] |= diff
        assert np.array_equal(boundary.numpy().astype(bool), changes)
    assert 0 in seen and len(seen) >= 4  # background and most shape classes occur in a dozen samples


def test_shapes_rejects_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        segmentation.SyntheticShapes("test", 2, (200, 64))   # the test rows are only 160 high
    with pytest.raises(ValueError, match="split"):
        segmentation.SyntheticShapes("val", 2)
    with pytest.raises(ValueError, match="channels"):
        segmentation.SyntheticShapes("train", 2, channels=2)


# ------------------------------------------------------------------------------------- homographies

def _blob(shape, x0, y0, sigma=2.0):
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    return np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def test_homography_maps_a_point_where_the_warp_puts_it():
    rng = np.random.default_rng(0)
    for trial in range(5):
        x0, y0 = rng.uniform(50, 78, size=2)
        pair = features.make_homography_pair(_blob((128, 128), x0, y0), rng, photometric=False)
        (mapped,), (inside,) = pair.correspond(np.array([[x0, y0]]))
        assert inside
        t = pair.target
        near = np.zeros_like(t, dtype=bool)
        cx, cy = np.rint(mapped).astype(int)
        near[max(cy - 8, 0):cy + 9, max(cx - 8, 0):cx + 9] = True
        ys, xs = np.mgrid[0:t.shape[0], 0:t.shape[1]]
        w = np.where(near, t, 0)
        centroid = np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])
        # the brightest target pixel is next to the mapped point, and the blob's centroid is on it
        peak = np.unravel_index(np.argmax(t), t.shape)
        assert np.hypot(peak[1] - mapped[0], peak[0] - mapped[1]) <= 1.5
        assert np.linalg.norm(centroid - mapped) < 0.5, (trial, centroid, mapped)


def test_homography_pair_mask_and_flow_agree_with_the_matrix():
    pair = features.pair_for_index(0, "train", 1, size=(96, 112), gray=True, photometric=False)
    h_inv = np.linalg.inv(pair.homography)
    ys, xs = np.mgrid[0:96, 0:112]
    back = features.apply_homography(h_inv, np.stack([xs.ravel(), ys.ravel()], 1)).reshape(96, 112, 2)
    inside = (back[..., 0] >= 0) & (back[..., 0] <= 111) & (back[..., 1] >= 0) & (back[..., 1] <= 95)
    assert np.array_equal(pair.mask, inside)
    assert 0.3 < pair.mask.mean() < 1.0
    assert np.all(pair.target[~pair.mask] == 0)
    flow = pair.flow()
    assert flow.shape == (96, 112, 2)
    valid = ~np.isnan(flow[..., 0])
    points = np.array([[10, 20], [60, 50], [100, 90]])
    for x, y in points:
        if valid[y, x]:
            expected = features.apply_homography(pair.homography, [[x, y]])[0]
            np.testing.assert_allclose(flow[y, x], expected, rtol=1e-5)
    # round trip: source -> target -> source
    np.testing.assert_allclose(features.apply_homography(h_inv, features.apply_homography(pair.homography, points)),
                               points, atol=1e-9)


def test_homography_pairs_dataset_is_deterministic_and_split_by_image():
    a = features.HomographyPairs("train", 3, size=(64, 64), seed=7)
    b = features.HomographyPairs("train", 3, size=(64, 64), seed=7)
    item = a[2]
    assert item["source"].shape == (3, 64, 64) and item["target"].shape == (3, 64, 64)
    assert item["homography"].shape == (3, 3) and item["mask"].dtype == torch.bool
    assert item["flow"].shape == (2, 64, 64)
    for k in item:
        assert torch.equal(torch.nan_to_num(item[k].double()), torch.nan_to_num(b[2][k].double()))
    assert not torch.equal(a[0]["homography"], features.HomographyPairs("train", 3, (64, 64), seed=8)[0]["homography"])
    assert not set(features.SOURCE_IMAGES["train"]) & set(features.SOURCE_IMAGES["heldout"])
    assert {p.name for p in features.heldout_pairs(1, size=(64, 64))} == set(features.SOURCE_IMAGES["heldout"])


# ------------------------------------------------------------------------------------- stereo

def test_stereo_correspondences_follow_the_disparity_and_mask_inf():
    st = features.stereo_pair(scale=0.5, gray=True)
    h, w = st.disparity.shape
    assert st.left.shape == st.right.shape == (h, w)
    assert np.array_equal(st.valid, np.isfinite(st.disparity))
    assert 0.03 < 1 - st.valid.mean() < 0.12   # about 7% of the disparities are inf
    ys, xs = np.mgrid[0:h, 0:w]
    xy = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    mapped, ok = st.correspond(xy)
    assert not ok[~st.valid.ravel()].any()
    d = st.disparity.ravel()
    np.testing.assert_allclose(mapped[ok, 0], xy[ok, 0] - d[ok], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(mapped[:, 1], xy[:, 1])
    # the pixels agree: x_right = x_left - d explains the pair far better than no shift or x + d
    def mismatch(shift_sign):
        xr = np.rint(xy[ok, 0] + shift_sign * d[ok]).astype(int)
        keep = (xr >= 0) & (xr < w)
        yy = xy[ok, 1].astype(int)[keep]
        return np.abs(st.left[yy, xy[ok, 0].astype(int)[keep]] - st.right[yy, xr[keep]]).mean()
    assert mismatch(-1) < 0.5 * mismatch(0) and mismatch(-1) < 0.5 * mismatch(+1)


def test_stereo_scale_keeps_inf_and_scales_disparity():
    full, half = features.stereo_pair(1.0), features.stereo_pair(0.5)
    assert half.disparity.shape == (250, 370) or half.disparity.shape == (250, 371)
    assert np.isinf(half.disparity).any()
    np.testing.assert_allclose(half.disparity[10, 20], full.disparity[21, 41] * 0.5)


# ------------------------------------------------------------------------------------- patches

@pytest.fixture(scope="module")
def patch_pairs():
    return features.make_patch_pairs("train", num_pairs=2, size=(128, 128), seed=0, max_keypoints=40)


def test_patch_pairs_shapes_standardised_and_deterministic(patch_pairs):
    pp = patch_pairs
    n = len(pp)
    assert n >= 20
    assert pp.anchors.shape == pp.positives.shape == (n, 1, 32, 32) and pp.anchors.dtype == np.float32
    np.testing.assert_allclose(pp.anchors.mean(axis=(2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(pp.positives.std(axis=(2, 3)), 1, atol=1e-3)
    again = features.make_patch_pairs("train", num_pairs=2, size=(128, 128), seed=0, max_keypoints=40)
    assert np.array_equal(again.anchors, pp.anchors) and np.array_equal(again.positives, pp.positives)
    anchor, positive = features.PatchPairDataset(pp)[0]
    assert anchor.shape == (1, 32, 32) and torch.equal(positive, torch.from_numpy(pp.positives[0]))


def test_patch_pairs_positives_are_closer_than_negatives(patch_pairs):
    pp = patch_pairs
    a, b, labels = pp.labelled_pairs(seed=0)
    assert labels.sum() == len(pp) == (labels == 0).sum()
    assert np.all(a[labels == 0] != b[labels == 0])
    far = np.linalg.norm(pp.source_xy[a[labels == 0]] - pp.source_xy[b[labels == 0]], axis=1) > 16
    assert np.all(far | (pp.pair_index[a[labels == 0]] != pp.pair_index[b[labels == 0]]))
    dist = np.linalg.norm((pp.anchors[a] - pp.positives[b]).reshape(len(a), -1), axis=1)
    assert np.median(dist[labels == 1]) < 0.7 * np.median(dist[labels == 0])


# ------------------------------------------------------------------------------------- super-resolution

def test_superres_heldout_and_crop_shapes():
    lr, hr = superres.heldout_pair()
    assert hr.shape == (300, 448, 3) and lr.shape == (75, 112, 3)
    assert superres.upscale_bicubic(lr).shape == hr.shape
    ds = superres.SuperResCrops(4, hr_size=96, seed=1)
    lr_t, hr_t = ds[2]
    assert lr_t.shape == (3, 24, 24) and hr_t.shape == (3, 96, 96)
    assert torch.equal(hr_t, superres.SuperResCrops(4, hr_size=96, seed=1, cache=False)[2][1])
    assert not torch.equal(hr_t, superres.SuperResCrops(4, hr_size=96, seed=2)[2][1])
    # the LR crop is the bicubic x4 of the HR crop
    np.testing.assert_allclose(lr_t.numpy().transpose(1, 2, 0), superres.downscale(hr_t.numpy().transpose(1, 2, 0)),
                               atol=1e-6)
    # bicubic=True adds the bicubic x4 of the LR crop (what the recipes learn the residual over)
    lr_b, hr_b, bic = superres.SuperResCrops(4, hr_size=96, seed=1, bicubic=True)[2]
    assert torch.equal(lr_b, lr_t) and torch.equal(hr_b, hr_t)
    np.testing.assert_array_equal(bic.numpy().transpose(1, 2, 0), superres.upscale_bicubic(lr_t.numpy().transpose(1, 2, 0)))
    with pytest.raises(ValueError, match="multiple"):
        superres.downscale(np.zeros((30, 32, 3), np.float32))


def test_bicubic_is_keys_antialiased_as_documented():
    x = np.random.default_rng(0).random((40, 52, 3)).astype(np.float32)
    ours = superres.bicubic_resize(x, (10, 13))
    ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(2, 0, 1)[None], size=(10, 13),
                                          mode="bicubic", antialias=True, align_corners=False)[0].permute(1, 2, 0)
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(superres.bicubic_resize(np.full((16, 16), 0.25, np.float32), (4, 4)), 0.25, atol=1e-6)
