"""Correlation statistics: scalar helpers, grouped (segment) correlations, logistic fits, Williams' test.

The grouped functions work on rows already sorted by group (``starts``/``sizes`` describe contiguous
segments) and compute every group at once, so the per-reference protocol costs a few array passes
instead of one scipy call per original. They return exactly what scipy returns per group (up to float
rounding), including NaN for constant groups and groups of fewer than two rows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = [
    "FITS",
    "WilliamsResult",
    "fit_logistic",
    "krocc",
    "plcc",
    "rmse",
    "segment_kendall",
    "segment_pearson",
    "segment_ranks",
    "segment_spearman",
    "srocc",
    "williams_test",
]

FITS = ("logistic4", "logistic5")

# Groups up to this size use the O(n^2) pairwise block (cheapest for per-reference groups of ~10-40 rows);
# larger ones (pooled cells) use the O(n log^2 n) merge-level inversion count.
_KENDALL_BLOCK_MAX = 128
# Upper bound on the pairwise elements materialised at once for the vectorised Kendall tau.
_KENDALL_CHUNK_ELEMENTS = 8_000_000


def _as_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    return x, y


def _degenerate(x: np.ndarray, y: np.ndarray) -> bool:
    return x.size < 2 or bool(np.all(x == x[0])) or bool(np.all(y == y[0]))


def plcc(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson linear correlation (signed); NaN for fewer than two rows or a constant input."""
    x, y = _as_pair(x, y)
    if _degenerate(x, y):
        return math.nan
    return float(stats.pearsonr(x, y).statistic)


def srocc(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank-order correlation (signed, average ranks for ties); NaN when degenerate."""
    x, y = _as_pair(x, y)
    if _degenerate(x, y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def krocc(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall rank-order correlation, tau-b (signed); NaN when degenerate."""
    x, y = _as_pair(x, y)
    if _degenerate(x, y):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    """Root mean squared error between two equally long vectors."""
    x, y = _as_pair(x, y)
    if x.size == 0:
        raise ValueError("rmse of empty input")
    return float(np.sqrt(np.mean((x - y) ** 2)))


# --------------------------------------------------------------------------- grouped correlations


def _segment_ids(sizes: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(sizes.size), sizes)


def _constant_segments(v: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """True for segments whose values are all equal (empty segments count as constant)."""
    out = np.ones(sizes.size, dtype=bool)
    nonempty = sizes > 0
    if v.size:
        hi = np.maximum.reduceat(v, starts[nonempty])
        lo = np.minimum.reduceat(v, starts[nonempty])
        out[nonempty] = hi == lo
    return out


def segment_pearson(x: np.ndarray, y: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Pearson r of every contiguous segment; NaN where the segment is constant or shorter than 2.

    Parameters
    ----------
    x, y : float64 arrays of equal length, rows sorted by segment.
    starts, sizes : int arrays, the first row and the length of each segment (segments tile the rows).
    """
    seg = _segment_ids(sizes)
    n = sizes.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(seg, x, minlength=sizes.size) / n
        my = np.bincount(seg, y, minlength=sizes.size) / n
        dx = x - mx[seg]
        dy = y - my[seg]
        sxy = np.bincount(seg, dx * dy, minlength=sizes.size)
        sxx = np.bincount(seg, dx * dx, minlength=sizes.size)
        syy = np.bincount(seg, dy * dy, minlength=sizes.size)
        r = sxy / np.sqrt(sxx * syy)
    r = np.clip(r, -1.0, 1.0)
    bad = (sizes < 2) | _constant_segments(x, starts, sizes) | _constant_segments(y, starts, sizes)
    r[bad] = np.nan
    return r


def segment_ranks(v: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) within each contiguous segment."""
    seg = _segment_ids(sizes)
    order = np.lexsort((v, seg))
    vs = v[order]
    ss = seg[order]
    n = v.size
    if n == 0:
        return np.empty(0)
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    new_run[1:] = (vs[1:] != vs[:-1]) | (ss[1:] != ss[:-1])
    run = np.cumsum(new_run) - 1
    seg_start = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    pos = np.arange(n) - seg_start[ss]
    run_first = pos[new_run]
    run_last = np.empty_like(run_first)
    run_last[:-1] = pos[np.flatnonzero(new_run)[1:] - 1]
    run_last[-1] = pos[-1]
    ranks = np.empty(n)
    ranks[order] = (run_first[run] + run_last[run]) / 2.0 + 1.0
    return ranks


def segment_spearman(x: np.ndarray, y: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Spearman rho of every segment: Pearson of the within-segment average ranks."""
    r = segment_pearson(segment_ranks(x, sizes), segment_ranks(y, sizes), starts, sizes)
    # A constant input has constant ranks, so degeneracy carries over; checked on raw values for clarity.
    return r


def segment_kendall(x: np.ndarray, y: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Kendall tau-b of every segment: padded pairwise blocks for small segments, a vectorised
    inversion count for large ones; all segments at once, no per-segment loop."""
    out = np.full(sizes.size, np.nan)
    small = np.flatnonzero((sizes >= 2) & (sizes <= _KENDALL_BLOCK_MAX))
    # Similar sizes side by side keep the padding small.
    small = small[np.argsort(sizes[small], kind="stable")]
    widths = sizes[small].astype(np.int64)
    i = 0
    while i < small.size:
        # Sizes ascend, so the cost of a chunk [i, j) is (j - i) * widths[j - 1]**2, increasing in j.
        window = widths[i : i + _KENDALL_CHUNK_ELEMENTS // 4]
        cost = np.arange(1, window.size + 1) * window**2
        j = i + max(1, int(np.searchsorted(cost, _KENDALL_CHUNK_ELEMENTS, side="right")))
        groups = small[i:j]
        out[groups] = _kendall_block(x, y, starts[groups], sizes[groups], int(widths[j - 1]))
        i = j
    large = np.flatnonzero(sizes > _KENDALL_BLOCK_MAX)
    if large.size:
        out[large] = _kendall_merge(x, y, starts[large], sizes[large])
    return out


def _tie_pairs(new_run: np.ndarray, seg: np.ndarray, n_seg: int) -> np.ndarray:
    """Per segment, the number of pairs inside runs of equal values (runs start where new_run is True)."""
    run = np.cumsum(new_run) - 1
    length = np.bincount(run)
    run_seg = seg[new_run]
    return np.bincount(run_seg, length * (length - 1) // 2, minlength=n_seg).astype(np.int64)


def _kendall_merge(x: np.ndarray, y: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Kendall tau-b via discordant-pair counting, as scipy does, vectorised over segments.

    Rows are sorted by (segment, x, y); a discordant pair is then an inversion of y. Inversions are
    counted bottom-up as in merge sort: at level k every right half-block counts the larger elements of
    its left half-block with one global ``searchsorted`` over composite (block, rank) keys.
    """
    n_seg = sizes.size
    lengths = sizes.astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    rows = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())
    seg = np.repeat(np.arange(n_seg), lengths)
    xs, ys = x[rows], y[rows]
    order = np.lexsort((ys, xs, seg))
    xs, ys, seg = xs[order], ys[order], seg[order]
    n = xs.size
    first = np.ones(n, dtype=bool)
    first[1:] = seg[1:] != seg[:-1]
    new_x = first.copy()
    new_x[1:] |= xs[1:] != xs[:-1]
    new_xy = new_x.copy()
    new_xy[1:] |= ys[1:] != ys[:-1]
    x_ties = _tie_pairs(new_x, seg, n_seg)
    xy_ties = _tie_pairs(new_xy, seg, n_seg)
    y_order = np.lexsort((ys, seg))
    ys_sorted, seg_y = ys[y_order], seg[y_order]
    new_y = np.ones(n, dtype=bool)
    new_y[1:] = (ys_sorted[1:] != ys_sorted[:-1]) | (seg_y[1:] != seg_y[:-1])
    y_ties = _tie_pairs(new_y, seg_y, n_seg)

    # A global dense rank of y keeps the order inside every block and makes small integer keys.
    _, rank = np.unique(ys, return_inverse=True)
    n_ranks = int(rank.max()) + 1
    pos = np.arange(n) - offsets[seg]
    discordant = np.zeros(n_seg, dtype=np.int64)
    level = 0
    while (1 << level) < int(lengths.max()):
        block = (seg * (int(lengths.max()) >> (level + 1)) + seg + (pos >> (level + 1))).astype(np.int64)
        left = ((pos >> level) & 1) == 0
        keys = np.sort(block[left] * n_ranks + rank[left])
        right = ~left
        base = block[right] * n_ranks
        larger = np.searchsorted(keys, base + n_ranks - 1, side="right") - np.searchsorted(
            keys, base + rank[right], side="right"
        )
        discordant += np.bincount(seg[right], larger, minlength=n_seg).astype(np.int64)
        level += 1

    total = lengths * (lengths - 1) // 2
    con_minus_dis = total - x_ties - y_ties + xy_ties - 2 * discordant
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (
            con_minus_dis
            / np.sqrt((total - x_ties).astype(np.float64))
            / np.sqrt((total - y_ties).astype(np.float64))
        )
    tau[(total - x_ties == 0) | (total - y_ties == 0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


def _kendall_block(
    x: np.ndarray, y: np.ndarray, starts: np.ndarray, sizes: np.ndarray, width: int
) -> np.ndarray:
    cols = np.arange(width)
    valid = cols[None, :] < sizes[:, None]
    idx = np.where(valid, starts[:, None] + cols[None, :], 0)
    px = x[idx]
    py = y[idx]
    pair = valid[:, :, None] & valid[:, None, :]
    sx = np.sign(px[:, :, None] - px[:, None, :]).astype(np.int8) * pair
    sy = np.sign(py[:, :, None] - py[:, None, :]).astype(np.int8) * pair
    # Sums over ordered pairs count every unordered pair twice; the factor cancels in tau-b.
    s = np.einsum("gij,gij->g", sx, sy, dtype=np.int64).astype(np.float64)
    tx = np.abs(sx).sum(axis=(1, 2), dtype=np.int64).astype(np.float64)
    ty = np.abs(sy).sum(axis=(1, 2), dtype=np.int64).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = s / np.sqrt(tx) / np.sqrt(ty)
    tau[(tx == 0) | (ty == 0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


# --------------------------------------------------------------------------- logistic mapping


def _logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    return (b1 - b2) / (1.0 + np.exp(-(x - b3) / b4)) + b2


def _logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def fit_logistic(predictions: np.ndarray, references: np.ndarray, kind: str = "logistic4") -> np.ndarray:
    """Map predictions onto the reference scale with a VQEG monotonic logistic.

    ``logistic4``: ``(b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2`` (monotonic, either direction through
    the sign of ``b1 - b2``); ``logistic5``: ``b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5``. The
    initial point is a deterministic function of the data and the parameters are bounded. When the fit fails a
    ``RuntimeWarning`` is issued and an all-NaN array is returned.

    Returns
    -------
    The fitted predictions (same length as the inputs).
    """
    if kind not in FITS:
        raise ValueError(f"unknown fit {kind!r}; expected one of {FITS} or None")
    x, y = _as_pair(predictions, references)
    nan = np.full(x.size, np.nan)
    n_params = 4 if kind == "logistic4" else 5
    if x.size <= n_params or np.all(x == x[0]) or np.all(y == y[0]):
        warnings.warn(
            f"{kind} fit needs more than {n_params} rows and non-constant inputs (got {x.size} rows); "
            "fitted PLCC/RMSE are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
        return nan
    # Fit in standardised units: the bounds and the initial point are then scale-free and the
    # optimiser is well conditioned whatever the metric's range (MSE ~1e3, cosine ~1 - 1e-6).
    x_mean, x_std = float(np.mean(x)), float(np.std(x))
    y_mean, y_std = float(np.mean(y)), float(np.std(y))
    u = (x - x_mean) / x_std
    v = (y - y_mean) / y_std
    slope_sign = 1.0 if plcc(u, v) >= 0 else -1.0
    u_lo, u_hi = float(np.min(u)), float(np.max(u))
    if kind == "logistic4":
        func = _logistic4
        p0 = [slope_sign * float(np.max(np.abs(v))), -slope_sign * float(np.max(np.abs(v))), 0.0, 1.0]
        bounds = ([-1e3, -1e3, 2 * u_lo, 1e-3], [1e3, 1e3, 2 * u_hi, 1e3])
    else:
        func = _logistic5
        p0 = [slope_sign * float(np.ptp(v)), 1.0, 0.0, 0.0, 0.0]
        bounds = ([-1e3, 1e-3, 2 * u_lo, -1e3, -1e3], [1e3, 1e3, 2 * u_hi, 1e3, 1e3])
    try:
        with warnings.catch_warnings():
            # An undeterminable covariance (a parameter at its bound) still leaves a valid mapping.
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            with np.errstate(over="ignore"):
                params, _ = optimize.curve_fit(func, u, v, p0=p0, bounds=bounds, maxfev=5_000)
                fitted = func(u, *params) * y_std + y_mean
    except (RuntimeError, ValueError) as exc:
        warnings.warn(f"{kind} fit failed ({exc}); fitted PLCC/RMSE are NaN", RuntimeWarning, stacklevel=2)
        return nan
    if not np.all(np.isfinite(fitted)):
        warnings.warn(
            f"{kind} fit produced non-finite values; fitted PLCC/RMSE are NaN", RuntimeWarning, stacklevel=2
        )
        return nan
    return fitted


# --------------------------------------------------------------------------- Williams' test


@dataclass(frozen=True)
class WilliamsResult:
    """Williams' t for two dependent correlations sharing one variable (Steiger 1980, eq. 7)."""

    statistic: float
    pvalue: float
    df: int


def williams_test(r12: float, r13: float, r23: float, n: int) -> WilliamsResult:
    """Test H0: r12 == r13, where variable 1 is shared (e.g. the labels) and r23 links the two candidates.

    Two-sided p-value from Student's t with ``n - 3`` degrees of freedom.

    Examples
    --------
    >>> res = williams_test(0.80, 0.72, 0.89, 26)
    >>> round(res.statistic, 3), round(res.pvalue, 3)
    (1.361, 0.187)
    """
    for name, r in (("r12", r12), ("r13", r13), ("r23", r23)):
        if not (math.isfinite(r) and -1.0 <= r <= 1.0):
            raise ValueError(f"{name} must be a finite correlation in [-1, 1], got {r!r}")
    if n <= 3:
        raise ValueError(f"Williams' test needs n > 3 observations, got {n}")
    det = 1.0 - r12**2 - r13**2 - r23**2 + 2.0 * r12 * r13 * r23
    rbar = (r12 + r13) / 2.0
    denom = 2.0 * (n - 1) / (n - 3) * det + rbar**2 * (1.0 - r23) ** 3
    if denom <= 0:
        raise ValueError(
            "correlations are inconsistent (the 3x3 correlation matrix is not positive definite)"
        )
    t = (r12 - r13) * math.sqrt((n - 1) * (1.0 + r23) / denom)
    df = n - 3
    p = float(2.0 * stats.t.sf(abs(t), df))
    return WilliamsResult(statistic=float(t), pvalue=p, df=df)
