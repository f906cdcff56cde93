"""Segmentation metrics: confusion matrix, IoU per class, mIoU, pixel accuracy, boundary F1."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """int64 (num_classes, num_classes): entry [t, p] counts pixels of true class t predicted as p.
    Pixels whose target is ``ignore_index`` are left out; any other label outside the classes is an error."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same size, got {pred.size} and {target.size}")
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, a in (("pred", pred), ("target", target)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} has labels outside 0..{num_classes - 1}")
    return np.bincount(target.astype(np.int64) * num_classes + pred.astype(np.int64),
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """TP / (TP + FP + FN) per class; NaN for a class absent from both prediction and target."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    """Mean of the IoUs of the classes that occur (in prediction or target), as FCN / PSPNet report it."""
    return float(np.nanmean(iou_per_class(confusion)))


def pixel_accuracy(confusion: np.ndarray) -> float:
    confusion = np.asarray(confusion, dtype=np.float64)
    return float(np.trace(confusion) / confusion.sum())


def _match_fraction(a: np.ndarray, b: np.ndarray, tolerance: float) -> float:
    """Fraction of the True pixels of ``a`` within ``tolerance`` px (Euclidean) of a True pixel of ``b``."""
    if not a.any():
        return np.nan
    if not b.any():
        return 0.0
    distance_to_b = ndimage.distance_transform_edt(~b)
    return float((distance_to_b[a] <= tolerance).mean())


def boundary_f1(pred_boundary, gt_boundary, tolerance: float = 2.0) -> dict:
    """Boundary precision, recall and F1 with a pixel tolerance (the BF score of Csurka et al. 2013,
    the distance-transform form of the BSDS benchmark's boundary matching, without its one-to-one
    assignment). Precision: predicted boundary pixels within ``tolerance`` of a true one; recall the
    converse. Both maps empty: a perfect score; one empty: 0."""
    p, g = np.asarray(pred_boundary, dtype=bool), np.asarray(gt_boundary, dtype=bool)
    if p.shape != g.shape:
        raise ValueError(f"boundary maps must have the same shape, got {p.shape} and {g.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not p.any() and not g.any():
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    precision = _match_fraction(p, g, tolerance) if p.any() else 0.0
    recall = _match_fraction(g, p, tolerance) if g.any() else 0.0
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


class SegmentationScore:
    """Accumulates a confusion matrix over batches of label maps (N, H, W) or (H, W), and the boundary F1
    of each image (reported as the mean over images; predicted boundaries default to those of the
    predicted labels, as for a network without a boundary head)."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255, boundary_tolerance: float = 2.0):
        self.num_classes, self.ignore_index, self.tolerance = num_classes, ignore_index, boundary_tolerance
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._f1 = []

    def update(self, pred, target, pred_boundary=None, gt_boundary=None) -> None:
        pred, target = _numpy(pred), _numpy(target)
        self.confusion += confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        if gt_boundary is not None:
            from fastcnn.data.segmentation import label_boundaries
            gt_boundary = _numpy(gt_boundary).astype(bool)
            if pred_boundary is None:  # boundaries of the predicted label map
                pred_boundary = np.stack([label_boundaries(p) for p in pred.reshape((-1,) + pred.shape[-2:])])
            pb = _numpy(pred_boundary).astype(bool).reshape((-1,) + gt_boundary.shape[-2:])
            for p, g in zip(pb, gt_boundary.reshape((-1,) + gt_boundary.shape[-2:])):
                self._f1.append(boundary_f1(p, g, self.tolerance)["f1"])

    def result(self) -> dict:
        out = {"mIoU": mean_iou(self.confusion), "pixel_accuracy": pixel_accuracy(self.confusion),
               "iou_per_class": iou_per_class(self.confusion).tolist()}
        if self._f1:
            out["boundary_f1"] = float(np.mean(self._f1))
        return out


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
