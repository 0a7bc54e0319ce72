"""Evaluation protocols: per-reference (the paper's) and pooled, per (task, codec) cell, with bootstrap CIs.

Every public function validates its inputs once (``check_inputs``); the grouped statistics in
:mod:`cfqa_metric.stats` then trust them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cfqa_metric import stats

__all__ = [
    "PROTOCOLS",
    "STATISTICS",
    "NaNGroupWarning",
    "check_inputs",
    "correlate",
    "group_correlations",
    "paired_bootstrap",
    "williams_pooled",
]

PROTOCOLS = ("per_reference", "pooled")
STATISTICS = ("srocc", "plcc", "krocc")
_ALL = "all"


class NaNGroupWarning(UserWarning):
    """Some per-reference groups were constant or shorter than two rows and left out of the mean."""


@dataclass(frozen=True)
class Inputs:
    """Validated inputs: float64 predictions/references and string-like labels of equal length."""

    predictions: np.ndarray
    references: np.ndarray
    reference_ids: np.ndarray
    tasks: np.ndarray
    codecs: np.ndarray


def _labels(values: Any, name: str, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, _ALL, dtype=object)
    if isinstance(values, str):
        return np.full(n, values, dtype=object)
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object).ravel()
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries but predictions has {n}")
    missing = pd.isna(arr)
    if missing.any():
        raise ValueError(f"{name}[{int(np.flatnonzero(missing)[0])}] is missing (None/NaN)")
    return arr


def _numbers(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] is {float(arr[i])}; {int(bad.sum())} non-finite value(s) in {name}")
    return arr


def check_inputs(
    predictions: Sequence[float] | np.ndarray,
    references: Sequence[float] | np.ndarray,
    reference_ids: Sequence[Any] | np.ndarray,
    tasks: Sequence[str] | str | None = None,
    codecs: Sequence[str] | str | None = None,
) -> Inputs:
    """Validate lengths, finiteness and missing labels once; raise ``ValueError`` naming the culprit."""
    x = _numbers(predictions, "predictions")
    y = _numbers(references, "references")
    if x.size == 0:
        raise ValueError("predictions is empty")
    if x.size != y.size:
        raise ValueError(f"predictions has {x.size} entries but references has {y.size}")
    if reference_ids is None:
        raise ValueError("reference_ids is required: it names the original feature of every row")
    ids = _labels(reference_ids, "reference_ids", x.size)
    return Inputs(x, y, ids, _labels(tasks, "tasks", x.size), _labels(codecs, "codecs", x.size))


@dataclass(frozen=True)
class _Groups:
    """Rows sorted by (cell, original): groups and cells are contiguous segments of ``order``."""

    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    group_cell: np.ndarray
    group_ids: np.ndarray
    cell_names: list[str]
    cell_starts: np.ndarray
    cell_sizes: np.ndarray


def _group(inputs: Inputs) -> _Groups:
    t_codes, t_names = pd.factorize(inputs.tasks, sort=True)
    c_codes, c_names = pd.factorize(inputs.codecs, sort=True)
    cell_key = t_codes.astype(np.int64) * len(c_names) + c_codes
    cell_uniques, cell = np.unique(cell_key, return_inverse=True)
    cell_names = [f"{t_names[k // len(c_names)]}/{c_names[k % len(c_names)]}" for k in cell_uniques]
    r_codes, r_names = pd.factorize(inputs.reference_ids)
    key = cell.astype(np.int64) * len(r_names) + r_codes
    group_keys, group = np.unique(key, return_inverse=True)
    order = np.argsort(group, kind="stable")
    sizes = np.bincount(group, minlength=group_keys.size)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    group_cell = group_keys // len(r_names)
    cell_sizes = np.bincount(cell, minlength=len(cell_names))
    return _Groups(
        order=order,
        starts=starts,
        sizes=sizes,
        group_cell=group_cell,
        group_ids=np.asarray(r_names, dtype=object)[group_keys % len(r_names)],
        cell_names=cell_names,
        cell_starts=np.concatenate(([0], np.cumsum(cell_sizes)[:-1])),
        cell_sizes=cell_sizes,
    )


def _segment_stats(
    x: np.ndarray, y: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "srocc": stats.segment_spearman(x, y, starts, sizes),
        "plcc": stats.segment_pearson(x, y, starts, sizes),
        "krocc": stats.segment_kendall(x, y, starts, sizes),
    }


def _cell_nanmean(values: np.ndarray, group_cell: np.ndarray, n_cells: int) -> np.ndarray:
    ok = ~np.isnan(values)
    total = np.bincount(group_cell[ok], values[ok], minlength=n_cells)
    count = np.bincount(group_cell[ok], minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _cell_values(
    g: _Groups, x: np.ndarray, y: np.ndarray, protocol: str
) -> tuple[dict[str, np.ndarray], ...]:
    """Per-cell statistics and, for per_reference, the per-group ones (x, y in sorted order)."""
    n_cells = len(g.cell_names)
    if protocol == "per_reference":
        per_group = _segment_stats(x, y, g.starts, g.sizes)
        return {k: _cell_nanmean(v, g.group_cell, n_cells) for k, v in per_group.items()}, per_group
    return _segment_stats(x, y, g.cell_starts, g.cell_sizes), {}


def _check_options(protocol: str, fit: str | None, bootstrap: int, confidence: float) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if fit is not None and fit not in stats.FITS:
        raise ValueError(f"unknown fit {fit!r}; expected one of {stats.FITS} or None")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative integer number of resamples, got {bootstrap!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _resample_groups(g: _Groups, rng: np.random.Generator) -> list[np.ndarray]:
    """One bootstrap draw: for every cell, its originals resampled with replacement (group indices)."""
    draws = []
    first = np.concatenate(([0], np.cumsum(np.bincount(g.group_cell, minlength=len(g.cell_names)))))
    for c in range(len(g.cell_names)):
        n = first[c + 1] - first[c]
        draws.append(first[c] + rng.integers(0, n, size=n))
    return draws


def _pooled_replicate(g: _Groups, xs: list[np.ndarray], y: np.ndarray, draws: list[np.ndarray]) -> list[dict]:
    """Pooled cell statistics of one resample (rows of the drawn originals, duplicates kept)."""
    chosen = np.concatenate(draws)
    lengths = g.sizes[chosen]
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    rows = np.repeat(g.starts[chosen] - offsets, lengths) + np.arange(lengths.sum())
    cell_sizes = np.array([g.sizes[d].sum() for d in draws])
    cell_starts = np.concatenate(([0], np.cumsum(cell_sizes)[:-1]))
    return [_segment_stats(x[rows], y[rows], cell_starts, cell_sizes) for x in xs]


def _bootstrap(
    g: _Groups, xs: list[np.ndarray], y: np.ndarray, per_group: list[dict], protocol: str, n: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Bootstrap replicates of the cell statistics, shape (n_cells, n) per statistic, one dict per x.

    Originals are resampled within each cell. Per-reference group values do not depend on which other
    groups are drawn, so their replicates are weighted means of the fixed group values.
    """
    rng = np.random.default_rng(seed)
    n_cells = len(g.cell_names)
    out = [{k: np.empty((n_cells, n)) for k in STATISTICS} for _ in xs]
    if protocol == "per_reference":
        first = np.concatenate(([0], np.cumsum(np.bincount(g.group_cell, minlength=n_cells))))
        for c in range(n_cells):
            size = first[c + 1] - first[c]
            draw = first[c] + rng.integers(0, size, size=(n, size))
            for res, pg in zip(out, per_group, strict=True):
                for k in STATISTICS:
                    res[k][c] = _nanmean(pg[k][draw], axis=1)
        return out
    for b in range(n):
        for res, rep in zip(out, _pooled_replicate(g, xs, y, _resample_groups(g, rng)), strict=True):
            for k in STATISTICS:
                res[k][:, b] = rep[k]
    return out


def correlate(
    predictions: Sequence[float] | np.ndarray,
    references: Sequence[float] | np.ndarray,
    reference_ids: Sequence[Any] | np.ndarray,
    tasks: Sequence[str] | str | None = None,
    codecs: Sequence[str] | str | None = None,
    *,
    protocol: str = "per_reference",
    fit: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    magnitude: bool = False,
    lower_better: bool | None = None,
) -> dict[str, Any]:
    """Correlate metric predictions with task-drop labels, per (task, codec) cell.

    Parameters
    ----------
    predictions : metric value per compressed feature.
    references : label per compressed feature (the task drop; positive = worse).
    reference_ids : the original each row was compressed from (groups of the per-reference protocol).
    tasks, codecs : cell of each row; ``None`` puts every row in the cell ``"all"``.
    protocol : ``"per_reference"`` (the paper's: correlation within each original, ``nanmean`` over
        originals) or ``"pooled"`` (all rows of a cell at once).
    fit : ``None``, ``"logistic4"`` or ``"logistic5"``: adds ``plcc_fitted`` (PLCC after a monotonic logistic
        fitted on the cell's rows, under the same protocol) and ``rmse`` (of the fitted values) per cell.
    bootstrap : number of resamples of ORIGINALS (within each cell) for percentile confidence intervals;
        adds ``<stat>_ci_low`` / ``<stat>_ci_high``. 0 disables.
    seed : seed of the bootstrap generator.
    confidence : level of the intervals.
    magnitude : if True, every correlation is multiplied by the sign a good metric has, so +1 is perfect
        agreement: +1 when ``lower_better`` (the metric rises with distortion, like MSE), -1 otherwise
        (the metric falls with distortion, like cosine). The factor is reported as ``sign``.
    lower_better : direction of the metric; required when ``magnitude`` is True.

    Returns
    -------
    ``{"srocc", "plcc", "krocc": mean over cells, "n_groups", "n_nan_groups": totals,
    "cells": {"<task>/<codec>": {"srocc", "plcc", "krocc", "n_groups", "n_nan_groups", "n_rows", ...}}}``:
    plain Python numbers.
    Per-reference groups that are constant or shorter than two rows are NaN, counted in ``n_nan_groups``
    and left out of the mean (a ``NaNGroupWarning`` says how many). The pooled protocol leaves no group
    out, so its ``n_nan_groups`` is 0; ``n_groups`` still counts the originals of the cell.

    Examples
    --------
    >>> res = correlate([0.1, 0.2, 0.4, 0.3, 0.9], [1, 2, 3, 1, 5], ["a", "a", "a", "b", "b"])
    >>> res["srocc"], res["cells"]["all/all"]["n_groups"]
    (1.0, 2)
    """
    _check_options(protocol, fit, bootstrap, confidence)
    if magnitude and lower_better is None:
        raise ValueError(
            "magnitude=True needs lower_better (True if the metric rises with distortion, e.g. MSE)"
        )
    inputs = check_inputs(predictions, references, reference_ids, tasks, codecs)
    g = _group(inputs)
    x = inputs.predictions[g.order]
    y = inputs.references[g.order]
    cell_stats, per_group = _cell_values(g, x, y, protocol)
    sign = (1.0 if lower_better else -1.0) if magnitude else 1.0
    n_cells = len(g.cell_names)
    n_groups = np.bincount(g.group_cell, minlength=n_cells)
    if per_group:
        nan_group = np.isnan(per_group["srocc"]) | np.isnan(per_group["plcc"]) | np.isnan(per_group["krocc"])
        n_nan = np.bincount(g.group_cell, nan_group.astype(np.int64), minlength=n_cells).astype(np.int64)
        if nan_group.any():
            warnings.warn(
                f"{int(nan_group.sum())} of {nan_group.size} per-reference groups are constant or shorter "
                "than two rows; they are NaN and left out of the mean",
                NaNGroupWarning,
                stacklevel=2,
            )
    else:
        n_nan = np.zeros(n_cells, dtype=np.int64)

    cells: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(g.cell_names):
        cells[name] = {k: float(sign * cell_stats[k][c]) for k in STATISTICS}
        cells[name].update(n_groups=int(n_groups[c]), n_nan_groups=int(n_nan[c]), n_rows=int(g.cell_sizes[c]))

    if fit is not None:
        for c, name in enumerate(g.cell_names):
            sl = slice(g.cell_starts[c], g.cell_starts[c] + g.cell_sizes[c])
            mapped = stats.fit_logistic(x[sl], y[sl], fit)
            if protocol == "per_reference":
                in_cell = g.group_cell == c
                starts = g.starts[in_cell] - g.cell_starts[c]
                r = _nanmean(stats.segment_pearson(mapped, y[sl], starts, g.sizes[in_cell]))
            else:
                r = stats.plcc(mapped, y[sl]) if np.all(np.isfinite(mapped)) else math.nan
            cells[name]["plcc_fitted"] = float(sign * r)
            cells[name]["rmse"] = stats.rmse(mapped, y[sl])

    result: dict[str, Any] = {
        k: float(_nanmean(np.array([cells[n][k] for n in g.cell_names]))) for k in STATISTICS
    }
    if fit is not None:
        for k in ("plcc_fitted", "rmse"):
            result[k] = float(_nanmean(np.array([cells[n][k] for n in g.cell_names])))
    result["n_groups"] = int(n_groups.sum())
    result["n_nan_groups"] = int(n_nan.sum())
    if magnitude:
        result["sign"] = sign

    if bootstrap:
        (boot,) = _bootstrap(g, [x], y, [per_group], protocol, int(bootstrap), seed)
        alpha = (1.0 - confidence) / 2.0
        q = [100 * alpha, 100 * (1 - alpha)]
        for k in STATISTICS:
            reps = sign * boot[k]
            for c, name in enumerate(g.cell_names):
                lo, hi = _percentiles(reps[c], q)
                cells[name][f"{k}_ci_low"], cells[name][f"{k}_ci_high"] = lo, hi
            lo, hi = _percentiles(_nanmean(reps, axis=0), q)
            result[f"{k}_ci_low"], result[f"{k}_ci_high"] = lo, hi
    result["cells"] = cells
    return result


def _percentiles(values: np.ndarray, q: list[float]) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(values, q)
    return float(lo), float(hi)


def group_correlations(
    predictions: Sequence[float] | np.ndarray,
    references: Sequence[float] | np.ndarray,
    reference_ids: Sequence[Any] | np.ndarray,
    tasks: Sequence[str] | str | None = None,
    codecs: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Per-original correlations (one row per (task, codec, original)): the terms the protocol averages."""
    inputs = check_inputs(predictions, references, reference_ids, tasks, codecs)
    g = _group(inputs)
    x = inputs.predictions[g.order]
    y = inputs.references[g.order]
    per_group = _segment_stats(x, y, g.starts, g.sizes)
    cell = np.asarray(g.cell_names, dtype=object)[g.group_cell]
    return pd.DataFrame({"cell": cell, "reference_id": g.group_ids, "n_rows": g.sizes, **per_group})


def paired_bootstrap(
    predictions_a: Sequence[float] | np.ndarray,
    predictions_b: Sequence[float] | np.ndarray,
    references: Sequence[float] | np.ndarray,
    reference_ids: Sequence[Any] | np.ndarray,
    tasks: Sequence[str] | str | None = None,
    codecs: Sequence[str] | str | None = None,
    *,
    statistic: str = "srocc",
    protocol: str = "per_reference",
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Compare two candidate metrics on the same rows: bootstrap of ``stat(a) - stat(b)`` over originals.

    Both metrics see the same resampled originals. The statistic is the mean over cells of ``statistic``
    (signed: negate a metric that falls with distortion before comparing it with one that rises).

    Returns
    -------
    ``{"a", "b", "difference", "ci_low", "ci_high", "p_value"}``; ``p_value`` is the two-sided bootstrap
    p-value of a zero difference, ``(1 + #{d* on the other side of 0}) / (1 + n)`` doubled, capped at 1.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; expected one of {STATISTICS}")
    _check_options(protocol, None, n_resamples, confidence)
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    a = check_inputs(predictions_a, references, reference_ids, tasks, codecs)
    b = _numbers(predictions_b, "predictions_b")
    if b.size != a.predictions.size:
        raise ValueError(f"predictions_b has {b.size} entries but predictions_a has {a.predictions.size}")
    g = _group(a)
    xa = a.predictions[g.order]
    xb = b[g.order]
    y = a.references[g.order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        stat_a, pg_a = _cell_values(g, xa, y, protocol)
        stat_b, pg_b = _cell_values(g, xb, y, protocol)
    va = float(_nanmean(stat_a[statistic]))
    vb = float(_nanmean(stat_b[statistic]))
    boot_a, boot_b = _bootstrap(g, [xa, xb], y, [pg_a, pg_b], protocol, int(n_resamples), seed)
    diff = _nanmean(boot_a[statistic], axis=0) - _nanmean(boot_b[statistic], axis=0)
    diff = diff[~np.isnan(diff)]
    alpha = (1.0 - confidence) / 2.0
    lo, hi = _percentiles(diff, [100 * alpha, 100 * (1 - alpha)])
    below = int(np.sum(diff <= 0))
    above = int(np.sum(diff >= 0))
    p = min(1.0, 2.0 * (1 + min(below, above)) / (1 + diff.size))
    return {"a": va, "b": vb, "difference": va - vb, "ci_low": lo, "ci_high": hi, "p_value": float(p)}


def williams_pooled(
    predictions_a: Sequence[float] | np.ndarray,
    predictions_b: Sequence[float] | np.ndarray,
    references: Sequence[float] | np.ndarray,
    *,
    statistic: str = "plcc",
) -> dict[str, float]:
    """Williams' test of ``corr(references, a) == corr(references, b)`` on pooled rows.

    ``statistic`` is ``"plcc"`` (the test's setting) or ``"srocc"`` (Pearson on ranks, a common
    approximation).
    Returns ``{"r_a", "r_b", "r_ab", "n", "t", "p_value"}``.
    """
    if statistic not in ("plcc", "srocc"):
        raise ValueError(f"Williams' test supports statistic 'plcc' or 'srocc', got {statistic!r}")
    xa = _numbers(predictions_a, "predictions_a")
    xb = _numbers(predictions_b, "predictions_b")
    y = _numbers(references, "references")
    if not xa.size == xb.size == y.size:
        raise ValueError(
            f"lengths differ: predictions_a {xa.size}, predictions_b {xb.size}, references {y.size}"
        )
    corr = stats.plcc if statistic == "plcc" else stats.srocc
    r_a, r_b, r_ab = corr(y, xa), corr(y, xb), corr(xa, xb)
    if any(math.isnan(r) for r in (r_a, r_b, r_ab)):
        raise ValueError("a constant input makes a correlation undefined; Williams' test cannot be applied")
    res = stats.williams_test(r_a, r_b, r_ab, int(y.size))
    return {"r_a": r_a, "r_b": r_b, "r_ab": r_ab, "n": int(y.size), "t": res.statistic, "p_value": res.pvalue}
