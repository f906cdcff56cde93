"""The handcrafted baselines on shipped images: SIFT runs, is timed and matches a held-out homography
pair; bicubic beats nearest-neighbour upsampling on the held-out SR image."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn.data import features, superres
from fastcnn.eval import baselines
from fastcnn.eval.superres import psnr_y

# Measured 2026-12-04 (skimage 0.26) on heldout_pairs(3, (256, 256), seed=0, gray=True): SIFT MMA@3 of
# the first coffee pair 0.78 and the first coins pair 0.89 (all six pairs 0.84). The floor leaves room
# for other skimage versions; a broken ground truth or matcher gives about 0.
MMA3_FLOOR = 0.6


def test_sift_on_a_shipped_image():
    image = features.load_image("camera")[128:384, 128:384]
    f = baselines.sift_features(image)
    assert len(f.xy) > 50 and f.descriptors.shape == (len(f.xy), 128)
    assert f.seconds > 0
    assert np.all((f.xy >= 0) & (f.xy <= 255))


def test_sift_matches_heldout_homography_pairs():
    pairs = features.heldout_pairs(pairs_per_image=1, size=(256, 256), seed=0, gray=True)
    assert [p.name for p in pairs] == ["coffee", "coins"]
    results = [baselines.sift_pair_accuracy(p.source, p.target, p.correspond) for p in pairs]
    for r in results:
        assert r["matches"] >= 30
        assert r["mma@3"] >= MMA3_FLOOR, r
        assert r["mma@1"] <= r["mma@3"] <= r["mma@5"]
    mean = baselines.average_accuracies(results)
    assert mean["pairs"] == 2 and mean["seconds_per_image"] > 0
    # against a wrong ground truth (the identity) the same matches score far lower
    wrong = baselines.sift_pair_accuracy(pairs[0].source, pairs[0].target,
                                         lambda xy: (np.asarray(xy, float), np.ones(len(xy), bool)))
    assert wrong["mma@3"] < 0.2


def test_bicubic_baseline_beats_nearest_neighbour():
    out = baselines.bicubic_baseline()
    assert out["sr"].shape == out["hr"].shape == (300, 448, 3)
    nearest = np.repeat(np.repeat(out["lr"], 4, axis=0), 4, axis=1)
    assert out["psnr_y"] > psnr_y(nearest, out["hr"]) + 0.5
    assert 0 < out["ssim_y"] < 1
    assert superres.HELDOUT_IMAGE == "chelsea"


def test_sift_and_a_patch_descriptor_on_the_same_keypoints():
    pair = features.heldout_pairs(pairs_per_image=1, size=(256, 256), seed=0, gray=True)[0]

    def raw_pixels(patches):
        assert patches.shape[1:] == (1, 32, 32)
        return patches.reshape(len(patches), -1)

    sift1, raw1 = baselines.sift_and_patch_features(pair.source, raw_pixels)
    sift2, raw2 = baselines.sift_and_patch_features(pair.target, raw_pixels)
    assert np.array_equal(sift1.xy, raw1.xy) and np.array_equal(sift2.xy, raw2.xy)
    assert raw1.descriptors.shape == (len(raw1.xy), 1024) and sift1.descriptors.shape[1] == 128
    assert baselines.match_features(sift1, sift2, pair.correspond)["mma@3"] >= MMA3_FLOOR
    # raw pixels in SIFT's frames match some points (measured 0.56 at 3 px; SIFT 0.81 on this subset)
    assert 0.2 < baselines.match_features(raw1, raw2, pair.correspond)["mma@3"] < 1
    with pytest.raises(ValueError, match="one row per patch"):
        baselines.sift_and_patch_features(pair.source, lambda p: p[:1].reshape(1, -1))


@pytest.mark.slow
def test_docs_baseline_figures_reproduce():
    """docs/results.md's baseline rows come from scripts/vision_baselines.py; rerun the deterministic
    parts (not the timings) and compare with the stored docs/results/baselines.json."""
    import json
    import pathlib
    import runpy

    root = pathlib.Path(__file__).resolve().parents[2]
    stored = json.loads((root / "docs/results/baselines.json").read_text())
    script = runpy.run_path(str(root / "scripts/vision_baselines.py"))
    homographies = script["sift_homography"]()
    stereo = script["sift_stereo"]()
    for key in ("mma@1", "mma@3", "mma@5"):
        assert homographies[key] == pytest.approx(stored["sift_heldout_homographies"][key], abs=0.02)
        assert stereo[key] == pytest.approx(stored["sift_stereo_motorcycle"][key], abs=0.02)
    assert script["pixel_descriptor_fpr95"]()["fpr95"] == pytest.approx(
        stored["pixel_descriptor_heldout_patches"]["fpr95"], abs=0.02)
    bicubic = baselines.bicubic_baseline()
    assert bicubic["psnr_y"] == pytest.approx(stored["bicubic_x4_heldout"]["psnr_y"], abs=0.01)
    assert bicubic["ssim_y"] == pytest.approx(stored["bicubic_x4_heldout"]["ssim_y"], abs=1e-4)
