"""Task values and drops (builders.labels)."""

import math

import numpy as np
import pytest

from builders import labels


def test_cls_rank_and_ties():
    logits = np.array([0.5, 3.0, 1.0, 3.0])
    assert labels.cls_rank(logits, 1) == 1  # a tie with class 3 does not push the true class down
    assert labels.cls_rank(logits, 2) == 3
    assert labels.cls_rank(logits, 0) == 4


def test_cls_ce_is_negative_log_softmax():
    logits = np.array([1.0, 2.0, -1.0])
    p = np.exp(logits) / np.exp(logits).sum()
    assert labels.cls_ce(logits, 0) == pytest.approx(-math.log(p[0]))
    # Large logits stay finite (log-sum-exp).
    assert math.isfinite(labels.cls_ce(np.array([1000.0, 0.0]), 1))


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.array([]), np.array([np.nan, 1.0])])
def test_cls_bad_logits(bad):
    with pytest.raises(ValueError):
        labels.cls_rank(bad, 0)


def test_cls_true_class_out_of_range():
    with pytest.raises(ValueError, match="true_class 5"):
        labels.cls_ce(np.zeros(3), 5)


def test_seg_miou_absent_classes_do_not_count():
    target = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 2]])
    # class 0: IoU 1; class 1: 1/2; class 2: 0/1; classes 3..20 absent from both.
    assert labels.seg_miou(pred, target) == pytest.approx(100 * (1 + 0.5 + 0) / 3)


def test_seg_miou_ignore_index():
    target = np.array([[255, 255, 1, 1]], dtype=np.uint8)
    pred = np.array([[3, 3, 1, 1]])
    assert labels.seg_miou(pred, target) == pytest.approx(100.0)
    assert math.isnan(labels.seg_miou(pred, np.full((1, 4), 255, np.uint8)))


def test_seg_miou_errors():
    with pytest.raises(ValueError, match="shape"):
        labels.seg_miou(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="outside"):
        labels.seg_miou(np.full((2, 2), 30), np.zeros((2, 2), int))


def test_depth_rmse_valid_pixels():
    target = np.array([[1.0, 2.0], [0.0, 4.0]])
    pred = np.array([[1.0, 3.0], [100.0, 4.0]])
    # The 0 (no measurement) pixel is skipped by default.
    assert labels.depth_rmse(pred, target) == pytest.approx(math.sqrt(1 / 3))
    valid = np.array([[True, False], [False, False]])
    assert labels.depth_rmse(pred, target, valid) == 0.0
    with pytest.raises(ValueError, match="no valid"):
        labels.depth_rmse(pred, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        labels.depth_rmse(pred, np.ones((3, 2)))


def test_drop_is_positive_when_worse():
    assert labels.drop("cls", 3, 1) == 2
    assert labels.drop("seg", 60.0, 75.0) == 15.0
    assert labels.drop("dpt", 1.5, 1.0) == 0.5
    with pytest.raises(ValueError):
        labels.drop("xyz", 1, 1)
