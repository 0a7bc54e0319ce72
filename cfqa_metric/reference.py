"""Reading the reference system's own evaluation logs and reproducing its table number for number.

The reference protocol (spec "Evaluation protocol"): one log per (codec, task) with lines
``<name>[.ext] <label> <mse> <cosine> <cka>``; a list file whose first token per line names an original
(extension cut at the first '.'). For each original in list order, the log lines whose name matches give
arrays; ``scipy.stats.pearsonr`` and ``spearmanr`` of label vs each metric; then ``numpy.nanmean`` over the
originals. Signed, no fit, no Kendall; lines that do not parse are skipped.

This module deliberately calls scipy once per original, as the reference did, so its numbers are the
reference's bit for bit; the vectorised protocol in :mod:`cfqa_metric.protocol` is tested against it.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["LOG_METRICS", "LogRow", "read_list", "read_log", "reference_table"]

LOG_METRICS = ("mse", "cosine", "cka")


@dataclass(frozen=True)
class LogRow:
    """One parsed log line: the original's name (extension removed), the label and the three metrics."""

    name: str
    label: float
    mse: float
    cosine: float
    cka: float


def _stem(token: str) -> str:
    return token.split(".", 1)[0]


def read_list(list_file: str | os.PathLike) -> list[str]:
    """Original names in list order: the first token of every non-blank line, cut at the first '.'."""
    with open(list_file, encoding="utf-8") as fh:
        names = [_stem(line.split()[0]) for line in fh if line.split()]
    if not names:
        raise ValueError(f"{os.fspath(list_file)}: no original names")
    return names


def read_log(log_file: str | os.PathLike) -> list[LogRow]:
    """Parse a reference log; lines without a name and four numbers are skipped (as the reference did)."""
    rows = []
    with open(log_file, encoding="utf-8") as fh:
        for line in fh:
            tokens = line.split()
            if len(tokens) < 5:
                continue
            try:
                label, m, c, k = (float(t) for t in tokens[1:5])
            except ValueError:
                continue
            rows.append(LogRow(_stem(tokens[0]), label, m, c, k))
    if not rows:
        raise ValueError(f"{os.fspath(log_file)}: no line parses as '<name> <label> <mse> <cosine> <cka>'")
    return rows


def _correlation(fn, x: np.ndarray, y: np.ndarray) -> float:
    # scipy returns NaN (with a warning) for constant input but raises below two rows; the reference
    # would have crashed there, we call that group NaN like a constant one.
    if x.size < 2:
        return math.nan
    return float(fn(x, y).statistic)


def reference_table(log_file: str | os.PathLike, list_file: str | os.PathLike) -> dict[str, dict[str, float]]:
    """The reference's PLCC/SROCC of every log metric against the label.

    Returns
    -------
    ``{"mse": {"plcc", "srocc", "n_groups", "n_nan_groups"}, "cosine": {...}, "cka": {...}}``, signed, as
    the paper prints them.
    """
    rows = read_log(log_file)
    names = read_list(list_file)
    by_name: dict[str, list[LogRow]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    table: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        per_metric: dict[str, dict[str, list[float]]] = {m: {"plcc": [], "srocc": []} for m in LOG_METRICS}
        for name in names:
            group = by_name.get(name, [])
            label = np.array([r.label for r in group])
            for m in LOG_METRICS:
                values = np.array([getattr(r, m) for r in group])
                per_metric[m]["plcc"].append(_correlation(stats.pearsonr, label, values))
                per_metric[m]["srocc"].append(_correlation(stats.spearmanr, label, values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN is NaN, which is the answer
        for m in LOG_METRICS:
            plcc = np.array(per_metric[m]["plcc"])
            srocc = np.array(per_metric[m]["srocc"])
            table[m] = {
                "plcc": float(np.nanmean(plcc)),
                "srocc": float(np.nanmean(srocc)),
                "n_groups": len(names),
                "n_nan_groups": int(np.sum(np.isnan(plcc) | np.isnan(srocc))),
            }
    return table
