"""builders.transforms: uniform quantisation, packing, ranges and the k-means codebook."""

from __future__ import annotations

import numpy as np
import pytest

from builders import transforms


def _feature(shape, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def test_quantize_uses_paper_ranges_and_truncates():
    lo, hi = transforms.PAPER_RANGES["cls"]
    step = (hi - lo) / 1023
    # Exactly on a level, just below it, and the two ends of the range.
    x = np.array([lo, lo + 5 * step, lo + 5 * step - 1e-3 * step, hi], dtype=np.float64)
    q = transforms.quantize_uniform(x.astype(np.float32).reshape(1, 1, 1, 4), "cls")
    assert q.dtype == np.uint16
    assert q.ravel()[0] == 0 and q.ravel()[-1] == 1023
    assert q.ravel()[2] == 4  # floor, never rounding up
    assert q.ravel()[1] in (4, 5)  # float32 representation may land a hair below the level


def test_quantize_round_trip_error_below_one_step():
    x = _feature((2, 1, 65, 48), scale=20.0)  # inside the seg range, nothing clipped
    q = transforms.quantize_uniform(x, "seg")
    y = transforms.dequantize_uniform(q, "seg")
    lo, hi = transforms.PAPER_RANGES["seg"]
    step = (hi - lo) / 1023
    err = x - y
    assert y.dtype == np.float32 and y.shape == x.shape
    # Truncation: the reconstruction is the level at or below x, so the error is in [0, step).
    assert err.min() >= -1e-3 and err.max() < step + 1e-3


def test_quantize_clips_out_of_range_values():
    x = np.array([-1e4, 1e4], dtype=np.float32).reshape(1, 1, 1, 2)
    assert transforms.quantize_uniform(x, "cls").ravel().tolist() == [0, 1023]


def test_dpt_ranges_are_per_layer():
    x = np.zeros((2, 4, 3, 5), dtype=np.float32)
    q = transforms.quantize_uniform(x, "dpt")
    lo = np.array(transforms.PAPER_RANGES["dpt"][0])
    hi = np.array(transforms.PAPER_RANGES["dpt"][1])
    expected = np.floor((0 - lo) * 1023 / (hi - lo)).astype(int)
    assert [int(q[0, c, 0, 0]) for c in range(4)] == expected.tolist()
    with pytest.raises(ValueError, match="4 layers but the feature has C=3"):
        transforms.quantize_uniform(np.zeros((2, 3, 3, 5), np.float32), "dpt")


def test_fit_ranges_and_explicit_ranges():
    cls = [_feature((1, 1, 65, 8), seed=s) for s in range(3)]
    dpt = [_feature((2, 4, 9, 8), seed=s) * np.arange(1, 5).reshape(1, 4, 1, 1) for s in range(3)]
    ranges = transforms.fit_ranges({"cls": cls, "dpt": dpt})
    assert ranges["cls"] == (min(float(f.min()) for f in cls), max(float(f.max()) for f in cls))
    assert len(ranges["dpt"][0]) == 4 and ranges["dpt"][1][3] > ranges["dpt"][1][0]
    q = transforms.quantize_uniform(dpt[0], "dpt", ranges=ranges)
    assert q.min() >= 0 and q.max() <= 1023 and q.max() > 900
    back = transforms.dequantize_uniform(q, "dpt", ranges=ranges)
    assert np.abs(back - dpt[0]).max() < 2 * 4 * 3.0 * 10 / 1023
    with pytest.raises(ValueError, match="no range for task 'seg'"):
        transforms.quantize_uniform(_feature((2, 1, 4, 4)), "seg", ranges=ranges)


@pytest.mark.parametrize(
    ("shape", "frame"),
    [
        ((1, 1, 257, 1536), (257, 1536)),
        ((2, 1, 1370, 1536), (2740, 1536)),
        ((2, 4, 1611, 1536), (3222, 6144)),
    ],
)
def test_pack_paper_shapes(shape, frame):
    x = np.zeros(shape, dtype=np.uint8)
    assert transforms.pack(x).shape == frame


def test_pack_layout_and_exact_inverse():
    x = np.arange(2 * 4 * 3 * 5, dtype=np.float32).reshape(2, 4, 3, 5)
    frame = transforms.pack(x)
    # Row n*T + t holds the C layers' D values side by side.
    np.testing.assert_array_equal(frame[1 * 3 + 2], np.concatenate([x[1, c, 2] for c in range(4)]))
    np.testing.assert_array_equal(transforms.unpack(frame, x.shape), x)


def test_pack_and_unpack_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"4-D"):
        transforms.pack(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"does not hold \(2, 4, 3, 5\)"):
        transforms.unpack(np.zeros((6, 19)), (2, 4, 3, 5))


def test_nan_is_reported():
    x = _feature((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="1 non-finite value"):
        transforms.quantize_uniform(x, "cls")


def _inertia(values, centres):
    idx = np.abs(values[:, None] - centres[None]).argmin(axis=1)
    return float(((values - centres[idx]) ** 2).sum())


def test_codebook_fit_is_seeded_sorted_and_near_sklearn():
    from sklearn.cluster import KMeans

    feats = [_feature((1, 1, 20, 40), seed=s) for s in range(12)]
    cb = transforms.fit_codebook(feats, "cls", levels=16)
    assert cb.shape == (1, 16) and np.all(np.diff(cb[0]) > 0)
    np.testing.assert_array_equal(cb, transforms.fit_codebook(feats, "cls", levels=16))
    # The 10 originals the codebook saw (seeded choice) give the values k-means ran on.
    chosen = np.random.default_rng(42).choice(12, size=10, replace=False)
    values = np.concatenate([feats[i].ravel() for i in sorted(chosen)]).astype(np.float64)
    ref = KMeans(16, random_state=0, n_init=3).fit(values.reshape(-1, 1)).cluster_centers_.ravel()
    assert _inertia(values, cb[0]) <= 1.05 * _inertia(values, ref)


def test_codebook_per_layer_for_dpt():
    scale = np.array([1, 10, 100, 1000], dtype=np.float32).reshape(1, 4, 1, 1)
    feats = [_feature((2, 4, 6, 8), seed=s) * scale for s in range(3)]
    cb = transforms.fit_codebook(feats, "dpt", levels=8)
    assert cb.shape == (4, 8)
    assert cb[3].max() > 100 * cb[0].max()


def test_codebook_maps_to_the_lower_centre():
    centres = np.array([[0.0, 1.0, 2.0, 4.0]], dtype=np.float32)
    x = np.array([-5.0, 0.0, 0.99, 1.0, 3.99, 4.0, 9.0], dtype=np.float32).reshape(1, 1, 1, 7)
    idx = transforms.codebook_index(x, centres)
    assert idx.ravel().tolist() == [0, 0, 0, 1, 2, 3, 3]
    np.testing.assert_array_equal(transforms.codebook_lookup(idx, centres).ravel(), [0, 0, 0, 1, 2, 4, 4])
    with pytest.raises(ValueError, match="indices outside"):
        transforms.codebook_lookup(np.full((1, 1, 1, 1), 9), centres)
