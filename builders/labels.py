"""Task values of one prediction and the labels (drops) derived from them.

Task value (``raw``) in the paper's words: cls = 1-based rank of the true class among the logits
(1 = correct), seg = per-image mIoU x 100, dpt = per-image RMSE. ``raw_ce`` is the continuous companion
of the cls rank: the cross-entropy of the true class. A label is the drop relative to the original,
positive = worse.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

TASKS = ("cls", "seg", "dpt")


def _logits_1d(logits: np.ndarray, true_class: int) -> np.ndarray:
    arr = np.asarray(logits, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("logits contain NaN or infinite values")
    if not 0 <= int(true_class) < arr.size:
        raise ValueError(f"true_class {true_class} outside [0, {arr.size}) for {arr.size} logits")
    return arr


def cls_rank(logits: np.ndarray, true_class: int) -> int:
    """1-based rank of ``true_class`` among ``logits`` (1 = correctly classified).

    Ties count in favour of the true class (only strictly larger logits push it down), so the rank
    is deterministic.

    Examples
    --------
    >>> cls_rank(np.array([0.1, 2.0, 0.5]), 1)
    1
    >>> cls_rank(np.array([0.1, 2.0, 0.5]), 0)
    3
    """
    arr = _logits_1d(logits, true_class)
    return int(np.count_nonzero(arr > arr[int(true_class)])) + 1


def cls_ce(logits: np.ndarray, true_class: int) -> float:
    """Cross-entropy (nats) of ``true_class`` under the softmax of ``logits``.

    Examples
    --------
    >>> round(cls_ce(np.zeros(4), 2), 6) == round(math.log(4), 6)
    True
    """
    arr = _logits_1d(logits, true_class)
    return float(logsumexp(arr) - arr[int(true_class)])


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """``num_classes`` x ``num_classes`` confusion matrix (rows = target, columns = prediction).

    Target pixels equal to ``ignore_index`` or outside ``[0, num_classes)`` do not count (VOC's 255
    border), like the reference evaluation.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must be 2-D arrays of one shape")
    t = target.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    keep = (t != ignore_index) & (t >= 0) & (t < num_classes)
    t, p = t[keep], p[keep]
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"prediction holds class ids outside [0, {num_classes}): {p.min()}..{p.max()}")
    return np.bincount(num_classes * t + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def seg_miou(pred: np.ndarray, target: np.ndarray, num_classes: int = 21, ignore_index: int = 255) -> float:
    """Per-image mean IoU x 100 over the classes present in the prediction or the target.

    Classes absent from both have a 0/0 IoU and drop out (``nanmean`` over one image's confusion
    matrix, as the reference does). An image whose pixels are all ignored gives NaN.

    Examples
    --------
    >>> t = np.array([[0, 0], [1, 1]])
    >>> seg_miou(t, t, num_classes=3)
    100.0
    >>> seg_miou(np.zeros((2, 2), int), t, num_classes=3)
    25.0
    """
    hist = confusion_matrix(pred, target, num_classes, ignore_index).astype(np.float64)
    inter = np.diag(hist)
    union = hist.sum(0) + hist.sum(1) - inter
    present = union > 0
    if not present.any():
        return math.nan
    return float(np.mean(inter[present] / union[present]) * 100.0)


def depth_rmse(pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Root mean squared error of ``pred`` against ``target`` over the valid pixels.

    ``valid`` defaults to the pixels with a finite, positive ground-truth depth (NYUv2 marks holes
    with 0).

    Examples
    --------
    >>> round(depth_rmse(np.full((2, 2), 2.0), np.array([[1.0, 3.0], [0.0, 2.0]])), 6)
    0.816497
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    mask = np.isfinite(target) & (target > 0) if valid is None else np.asarray(valid, dtype=bool)
    if mask.shape != target.shape:
        raise ValueError(f"valid mask {mask.shape} does not match target {target.shape}")
    if not mask.any():
        raise ValueError("no valid ground-truth pixel for the depth RMSE")
    err = pred[mask] - target[mask]
    return float(np.sqrt(np.mean(err * err)))


def drop(task: str, raw: float, raw_original: float) -> float:
    """The label: the drop of ``raw`` relative to the original's value, positive = worse.

    cls ``rank - rank_orig``, seg ``miou_orig - miou``, dpt ``rmse - rmse_orig``; for ``raw_ce`` use
    ``task="cls"`` (an increase of the cross-entropy is worse, like the rank).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if task == "seg":
        return float(raw_original) - float(raw)
    return float(raw) - float(raw_original)
