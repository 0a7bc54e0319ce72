"""cfqa_metric.baselines against direct, uncached implementations of the spec's formulas."""

import numpy as np
import pytest

from cfqa_metric import baselines, cka, cka_debiased, cka_upstream, cosine, mse

# Small stand-ins for the three task layouts (N, C, T, D): cls 1x1, seg 2x1, dpt 2x4 slices; T/D ratios
# on both sides of the form switch.
SHAPES = [(1, 1, 9, 40), (2, 1, 30, 16), (2, 4, 12, 10)]


def _pair(shape, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 5 + rng.normal(size=shape[-1])).astype(np.float32)
    y = (x + noise * rng.normal(size=shape)).astype(np.float32)
    return x, y


def _slices(a):
    n, c, t, d = a.shape
    return a.reshape(n * c, t, d).astype(np.float64)


def _naive_cka_per_slice(x, y):
    out = []
    for a, b in zip(_slices(x), _slices(y), strict=True):
        a = a - a.mean(axis=0)
        b = b - b.mean(axis=0)
        out.append(np.linalg.norm(a @ b.T) ** 2 / (np.linalg.norm(a @ a.T) * np.linalg.norm(b @ b.T) + 1e-8))
    return np.array(out)


def _unbiased_centre(gram):
    """Unbiased HSIC centring of a Gram matrix (Song et al. 2012), as in the CKA literature."""
    n = gram.shape[0]
    g = gram.copy()
    np.fill_diagonal(g, 0.0)
    means = g.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    g -= means[:, None] + means[None, :]
    np.fill_diagonal(g, 0.0)
    return g


@pytest.mark.parametrize("shape", SHAPES)
def test_mse_and_cosine(shape):
    x, y = _pair(shape)
    assert mse(x, y) == pytest.approx(np.mean((x.astype(np.float64) - y) ** 2), rel=1e-12)
    sims = []
    for a, b in zip(_slices(x), _slices(y), strict=True):
        for ta, tb in zip(a, b, strict=True):
            sims.append(ta @ tb / (max(np.linalg.norm(ta), 1e-8) * max(np.linalg.norm(tb), 1e-8)))
    assert cosine(x, y) == pytest.approx(np.mean(sims), rel=1e-12)
    assert cosine(x, x) == pytest.approx(1.0) and mse(x, x) == 0.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("form", [None, "tokens", "features"])
def test_cka_equals_naive_formula_in_both_forms(shape, form):
    x, y = _pair(shape, seed=1)
    naive = _naive_cka_per_slice(x, y)
    assert cka(x, y, form=form) == pytest.approx(naive.mean(), rel=1e-12)
    n, c = shape[:2]
    assert cka_upstream(x, y, form=form) == pytest.approx(naive[-1] / (n * c), rel=1e-12)
    assert cka(x, x, form=form) == pytest.approx(1.0)


def test_cka_upstream_equals_cka_for_one_slice_and_differs_otherwise():
    x, y = _pair((1, 1, 20, 8))
    assert cka_upstream(x, y) == pytest.approx(cka(x, y))
    x, y = _pair((2, 4, 20, 8))
    assert cka_upstream(x, y) < cka(x, y) / 4


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("form", [None, "tokens", "features"])
def test_debiased_cka_equals_unbiased_hsic_on_gram_matrices(shape, form):
    x, y = _pair(shape, seed=2, noise=2.0)
    want = []
    for a, b in zip(_slices(x), _slices(y), strict=True):
        k = _unbiased_centre(a @ a.T)
        lm = _unbiased_centre(b @ b.T)
        want.append(np.sum(k * lm) / np.sqrt(np.sum(k * k) * np.sum(lm * lm)))
    assert cka_debiased(x, y, form=form) == pytest.approx(np.mean(want), rel=1e-9)


def test_cache_reuses_the_original_and_notices_in_place_changes():
    x, y = _pair((2, 1, 30, 16), seed=3)
    first = [cka(x, y), cosine(x, y), cka_debiased(x, y)]
    # Repeated calls with the same original object hit the cache and must agree with fresh copies.
    assert [cka(x, y), cosine(x, y), cka_debiased(x, y)] == first
    assert cka(x.copy(), y) == pytest.approx(first[0], rel=1e-13)
    x2, _ = _pair((2, 1, 30, 16), seed=4)
    x[...] = x2  # same buffer, new content: the checksum must invalidate the cached state
    assert cka(x, y) == pytest.approx(_naive_cka_per_slice(x, y).mean(), rel=1e-12)
    assert cosine(x, y) == pytest.approx(cosine(x.copy(), y), rel=1e-13)
    baselines.clear_caches()
    assert cka(x, y) == pytest.approx(_naive_cka_per_slice(x, y).mean(), rel=1e-12)


def test_precision_at_tiny_distortions_keeps_the_ordering():
    # HM at high rate barely changes a feature: the metric must still order rate points correctly.
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(1, 1, 64, 96)) * 50).astype(np.float32)
    values = []
    for scale in (1e-3, 1e-2, 1e-1):
        y = (x + scale * rng.standard_normal(x.shape)).astype(np.float32)
        values.append((cka(x, y), cosine(x, y), mse(x, y)))
    ckas, coss, mses = zip(*values, strict=True)
    assert ckas[0] > ckas[1] > ckas[2] and coss[0] > coss[1] > coss[2] and mses[0] < mses[1] < mses[2]


@pytest.mark.parametrize("fn", [mse, cosine, cka, cka_upstream, cka_debiased])
def test_bad_shapes_and_values(fn):
    x, y = _pair((1, 1, 9, 8))
    with pytest.raises(
        ValueError, match=r"shape mismatch: original \(1, 1, 9, 8\) vs compressed \(1, 1, 8, 8\)"
    ):
        fn(x, y[:, :, :8])
    with pytest.raises(ValueError, match="4-D"):
        fn(x[0], y[0])
    with pytest.raises(ValueError, match="numpy arrays"):
        fn(x.tolist(), y)
    bad = y.copy()
    bad[0, 0, 3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(x, bad)


def test_debiased_needs_four_tokens_and_forms_are_validated():
    x, y = _pair((1, 1, 3, 8))
    with pytest.raises(ValueError, match="at least 4 tokens"):
        cka_debiased(x, y)
    with pytest.raises(ValueError, match="unknown form"):
        cka(x, y, form="diagonal")
