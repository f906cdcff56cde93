"""fastcnn.eval.segmentation against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn.eval import segmentation as seg


def test_confusion_matrix_counts_and_ignore_index():
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    cm = seg.confusion_matrix(pred, target, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="pred"):
        seg.confusion_matrix(np.array([3]), np.array([0]), 3)


def test_miou_and_pixel_accuracy_of_a_known_confusion_matrix():
    cm = np.array([[50, 10, 0], [5, 20, 5], [0, 0, 10]])
    # IoU: 50/(60+55-50) = 50/65, 20/(30+30-20) = 20/40, 10/(10+15-10) = 10/15
    expected = [50 / 65, 20 / 40, 10 / 15]
    np.testing.assert_allclose(seg.iou_per_class(cm), expected)
    assert seg.mean_iou(cm) == pytest.approx(np.mean(expected))
    assert seg.pixel_accuracy(cm) == pytest.approx(80 / 100)
    # a class that occurs nowhere is left out of the mean, not counted as 0
    cm4 = np.zeros((4, 4), dtype=int)
    cm4[:3, :3] = cm
    assert seg.mean_iou(cm4) == pytest.approx(np.mean(expected))


def _square_boundary(shift=0):
    b = np.zeros((40, 40), dtype=bool)
    b[10 + shift, 10:30] = b[29 + shift, 10:30] = True
    b[10 + shift:30 + shift, 10] = b[10 + shift:30 + shift, 29] = True
    return b


def test_boundary_f1_perfect_shifted_and_empty():
    gt = _square_boundary()
    assert seg.boundary_f1(gt, gt, tolerance=0)["f1"] == 1.0
    shifted = _square_boundary(shift=3)
    within = seg.boundary_f1(shifted, gt, tolerance=3)
    beyond = seg.boundary_f1(shifted, gt, tolerance=2)
    assert within["f1"] == 1.0
    assert beyond["f1"] < 1.0
    # the two horizontal edges (20 px each of 78) are 3 px off; vertical edges overlap except 3 px
    assert beyond["precision"] == pytest.approx(np.mean(seg.ndimage.distance_transform_edt(~gt)[shifted] <= 2))
    assert seg.boundary_f1(np.zeros_like(gt), gt)["f1"] == 0.0
    assert seg.boundary_f1(np.zeros_like(gt), np.zeros_like(gt))["f1"] == 1.0


def test_segmentation_score_accumulates_batches():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, size=(4, 16, 16))
    pred = np.where(rng.random((4, 16, 16)) < 0.8, target, rng.integers(0, 3, size=(4, 16, 16)))
    score = seg.SegmentationScore(3)
    score.update(pred[:2], target[:2], gt_boundary=np.stack([seg_boundary(t) for t in target[:2]]))
    score.update(pred[2:], target[2:], gt_boundary=np.stack([seg_boundary(t) for t in target[2:]]))
    result = score.result()
    assert result["mIoU"] == pytest.approx(seg.mean_iou(seg.confusion_matrix(pred, target, 3)))
    f1 = [seg.boundary_f1(seg_boundary(p), seg_boundary(t), 2.0)["f1"] for p, t in zip(pred, target)]
    assert result["boundary_f1"] == pytest.approx(np.mean(f1))
    perfect = seg.SegmentationScore(3)
    perfect.update(target, target, gt_boundary=np.stack([seg_boundary(t) for t in target]))
    assert perfect.result()["mIoU"] == 1.0 and perfect.result()["boundary_f1"] == 1.0


def seg_boundary(labels):
    from fastcnn.data.segmentation import label_boundaries
    return label_boundaries(labels)
