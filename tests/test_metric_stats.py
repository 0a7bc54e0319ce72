"""cfqa_metric.stats: scalar correlations, grouped correlations vs scipy, logistic fits, Williams' test."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as ss

from cfqa_metric import stats


def _segments(sizes):
    sizes = np.asarray(sizes, dtype=np.int64)
    return np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes


def _scipy_per_group(fn, x, y, starts, sizes):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s, m in zip(starts, sizes, strict=True):
            out.append(np.nan if m < 2 else fn(x[s : s + m], y[s : s + m]).statistic)
    return np.array(out)


@pytest.fixture
def tied_groups():
    """Integer-valued data (many ties), empty/1/2-row groups, constant groups in x and in y."""
    rng = np.random.default_rng(1)
    sizes = rng.integers(0, 14, size=400)
    sizes[:6] = [0, 1, 2, 3, 40, 2]
    starts, sizes = _segments(sizes)
    n = int(sizes.sum())
    x = rng.integers(0, 5, n).astype(float)
    y = rng.integers(0, 4, n).astype(float) + 0.5 * x
    x[starts[3] : starts[3] + sizes[3]] = 7.0
    y[starts[4] : starts[4] + sizes[4]] = -1.0
    return x, y, starts, sizes


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (stats.segment_pearson, ss.pearsonr),
        (stats.segment_spearman, ss.spearmanr),
        (stats.segment_kendall, ss.kendalltau),
    ],
)
def test_segment_correlations_equal_scipy_per_group(tied_groups, ours, theirs):
    x, y, starts, sizes = tied_groups
    got = ours(x, y, starts, sizes)
    want = _scipy_per_group(theirs, x, y, starts, sizes)
    assert np.isnan(want).sum() > 5  # the fixture really has degenerate groups
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("block_max", [1, 9])
def test_segment_kendall_chunking_and_large_group_path(tied_groups, monkeypatch, block_max):
    x, y, starts, sizes = tied_groups
    want = _scipy_per_group(ss.kendalltau, x, y, starts, sizes)
    # Tiny budgets force many chunks and send the larger (or all) groups through the inversion count.
    monkeypatch.setattr(stats, "_KENDALL_CHUNK_ELEMENTS", 300)
    monkeypatch.setattr(stats, "_KENDALL_BLOCK_MAX", block_max)
    np.testing.assert_allclose(stats.segment_kendall(x, y, starts, sizes), want, rtol=1e-12, equal_nan=True)


def test_kendall_on_large_pooled_segments_equals_scipy():
    rng = np.random.default_rng(12)
    starts, sizes = _segments([3000, 700, 2, 1500])
    n = int(sizes.sum())
    x = rng.integers(0, 50, n).astype(float)
    y = np.round(x * rng.uniform(0.5, 1.5, n) + rng.normal(0, 5, n))
    want = _scipy_per_group(ss.kendalltau, x, y, starts, sizes)
    np.testing.assert_allclose(stats.segment_kendall(x, y, starts, sizes), want, rtol=1e-12)


def test_segment_ranks_match_rankdata():
    rng = np.random.default_rng(2)
    starts, sizes = _segments([5, 0, 9, 1, 12])
    v = rng.integers(0, 4, int(sizes.sum())).astype(float)
    got = stats.segment_ranks(v, sizes)
    for s, m in zip(starts, sizes, strict=True):
        np.testing.assert_array_equal(got[s : s + m], ss.rankdata(v[s : s + m]))


def test_scalar_correlations_and_degenerate_inputs():
    x = np.array([1.0, 2, 3, 5, 4])
    y = np.array([2.0, 1, 4, 6, 5])
    assert stats.plcc(x, y) == pytest.approx(ss.pearsonr(x, y).statistic)
    assert stats.srocc(x, y) == pytest.approx(ss.spearmanr(x, y).statistic)
    assert stats.krocc(x, y) == pytest.approx(ss.kendalltau(x, y).statistic)
    assert math.isnan(stats.plcc([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(stats.srocc([1.0], [2.0]))
    assert math.isnan(stats.krocc([1.0, 2.0], [3.0, 3.0]))
    assert stats.rmse([1.0, 2.0], [1.0, 4.0]) == pytest.approx(math.sqrt(2.0))
    with pytest.raises(ValueError, match="same length"):
        stats.plcc([1.0, 2.0], [1.0])


def test_williams_published_example():
    res = stats.williams_test(0.80, 0.72, 0.89, 26)
    assert round(res.statistic, 3) == 1.361
    assert round(res.pvalue, 3) == 0.187
    assert res.df == 23
    swapped = stats.williams_test(0.72, 0.80, 0.89, 26)
    assert swapped.statistic == pytest.approx(-res.statistic)
    assert swapped.pvalue == pytest.approx(res.pvalue)


@pytest.mark.parametrize(("args", "match"), [((0.8, 0.7, 0.9, 3), "n > 3"), ((1.2, 0.7, 0.9, 30), "r12")])
def test_williams_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        stats.williams_test(*args)


@pytest.mark.parametrize("kind", ["logistic4", "logistic5"])
@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_logistic_fit_linearises_a_saturating_relation(kind, direction):
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(-4, 4, 300))
    y = 10.0 / (1.0 + np.exp(-direction * 2.0 * x)) + rng.normal(0, 0.05, x.size)
    fitted = stats.fit_logistic(x, y, kind)
    assert stats.plcc(fitted, y) > 0.995 > abs(stats.plcc(x, y))
    assert stats.rmse(fitted, y) < 0.1
    # Monotone mapping: ranks are untouched.
    assert stats.srocc(fitted, x) == pytest.approx(direction)


def test_logistic_fit_failure_is_nan_with_warning(monkeypatch):
    def no_convergence(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found: maxfev reached")

    monkeypatch.setattr(stats.optimize, "curve_fit", no_convergence)
    with pytest.warns(RuntimeWarning, match="logistic5 fit failed .*maxfev"):
        out = stats.fit_logistic(np.arange(30.0), np.arange(30.0) ** 2, "logistic5")
    assert np.isnan(out).all()
    monkeypatch.undo()
    with pytest.warns(RuntimeWarning, match="logistic4"):
        out = stats.fit_logistic(np.ones(20), np.arange(20.0), "logistic4")
    assert np.isnan(out).all() and out.shape == (20,)
    with pytest.raises(ValueError, match="unknown fit"):
        stats.fit_logistic(np.arange(10.0), np.arange(10.0), "cubic")


def test_docstring_examples_of_the_plain_functions():
    import doctest

    from cfqa_metric import protocol

    for module in (stats, protocol):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted >= 1 and result.failed == 0, module.__name__
