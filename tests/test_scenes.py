"""Procedural scenes (builders.scenes)."""

import numpy as np

from builders import scenes


def test_seeded_and_streams_differ():
    a = scenes.generate_scenes(4, seed=3)
    b = scenes.generate_scenes(4, seed=3)
    c = scenes.generate_scenes(4, seed=3, stream=1)
    for x, y in zip(a, b, strict=True):
        assert x.image.tobytes() == y.image.tobytes() and x.label == y.label
        assert np.array_equal(x.seg, y.seg) and np.array_equal(x.depth, y.depth)
    assert any(x.image.tobytes() != z.image.tobytes() for x, z in zip(a, c, strict=True))


def test_scene_contents():
    data = scenes.stack_scenes(scenes.generate_scenes(200, seed=0, height=112, width=160))
    assert data["image"].shape == (200, 112, 160, 3) and data["image"].dtype == np.uint8
    assert data["seg"].dtype == np.uint8 and data["seg"].max() < scenes.SEG_CLASSES
    assert data["depth"].dtype == np.float32
    assert data["depth"].min() >= scenes.MIN_DEPTH - 0.5 and data["depth"].max() <= 10.0
    # Every class occurs, and the label is the class with the most visible pixels.
    assert set(np.unique(data["label"])) == set(range(scenes.NUM_CLASSES))
    for seg, label in zip(data["seg"][:20], data["label"][:20], strict=True):
        counts = np.bincount(seg.ravel(), minlength=scenes.SEG_CLASSES)[1:]
        assert counts[label] == counts.max() > 0
    # Object pixels carry their plane depth: one depth per object region in most scenes.
    assert (data["seg"] > 0).mean() > 0.05


def test_depth_cues_near_objects_are_lower():
    data = scenes.stack_scenes(scenes.generate_scenes(100, seed=1))
    rows = data["depth"].mean(axis=(0, 2))
    # Floor depth decreases towards the bottom of the image (perspective).
    assert rows[-1] < rows[len(rows) // 2] < rows[0] + 1e-6


def test_negative_n():
    import pytest

    with pytest.raises(ValueError):
        scenes.generate_scenes(-1, seed=0)
