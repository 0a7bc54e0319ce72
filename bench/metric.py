"""Benchmark: the vectorised per-reference protocol vs one scipy call per group, and the bootstrap.

1,000,000 rows in 100,000 groups (10 rates each) over 12 (task, codec) cells, with ties. Prints the time of
both ways, the largest difference between their numbers, and the speed ratio (target >= 20x); then the
bootstrap over originals (1,000 resamples) on 12,000 rows, the paper's size, for both protocols.

    .venv/bin/python bench/metric.py [--groups 100000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import stats

from cfqa_metric import NaNGroupWarning, correlate

TASKS = ("cls", "seg", "dpt")
CODECS = ("hm", "vtm", "hyperprior_multi_task", "hyperprior_task_specific")


def make_rows(n_groups: int, per_group: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    rate = np.tile(np.arange(per_group, dtype=np.float64), n_groups)
    group = np.repeat(np.arange(n_groups), per_group)
    cell = group % (len(TASKS) * len(CODECS))
    # A label with ties (integer drops) and a metric monotone in rate plus noise.
    references = np.round(rate * rng.uniform(0, 1.5, n) + rng.normal(0, 1, n))
    predictions = rate + rng.normal(0, 2.0, n)
    return {
        "predictions": predictions,
        "references": references,
        "reference_ids": group.astype(str).astype(object),
        "tasks": np.asarray(TASKS, dtype=object)[cell // len(CODECS)],
        "codecs": np.asarray(CODECS, dtype=object)[cell % len(CODECS)],
        "group": group,
        "cell": cell,
    }


def scipy_loop(rows: dict[str, np.ndarray], per_group: int) -> dict[int, dict[str, float]]:
    """The straightforward way: one scipy call per group and statistic, nanmean per cell."""
    x, y, cell = rows["predictions"], rows["references"], rows["cell"]
    per_cell: dict[int, dict[str, list[float]]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in range(0, x.size, per_group):
            sl = slice(start, start + per_group)
            out = per_cell.setdefault(int(cell[start]), {"srocc": [], "plcc": [], "krocc": []})
            out["srocc"].append(stats.spearmanr(x[sl], y[sl]).statistic)
            out["plcc"].append(stats.pearsonr(x[sl], y[sl]).statistic)
            out["krocc"].append(stats.kendalltau(x[sl], y[sl]).statistic)
    return {c: {k: float(np.nanmean(v)) for k, v in d.items()} for c, d in per_cell.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    args = parser.parse_args()
    per_group = 10
    rows = make_rows(args.groups, per_group)
    inputs = {k: rows[k] for k in ("predictions", "references", "reference_ids", "tasks", "codecs")}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        t0 = time.perf_counter()
        fast = correlate(**inputs)
        t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = scipy_loop(rows, per_group)
    t_slow = time.perf_counter() - t0

    names = {c: f"{TASKS[c // len(CODECS)]}/{CODECS[c % len(CODECS)]}" for c in slow}
    diff = max(abs(fast["cells"][names[c]][k] - v) for c, d in slow.items() for k, v in d.items())
    n_rows = rows["predictions"].size
    print(f"per-reference protocol: {n_rows:,} rows, {args.groups:,} groups, {len(slow)} cells")
    print(f"  vectorised           {t_fast:8.2f} s")
    print(f"  scipy loop per group {t_slow:8.2f} s")
    print(f"  max |difference|     {diff:.2e}")
    print(f"  ratio                {t_slow / t_fast:8.1f}x (target >= 20x)")

    small = make_rows(1_200, per_group, seed=1)
    small_inputs = {k: small[k] for k in ("predictions", "references", "reference_ids", "tasks", "codecs")}
    print(f"bootstrap over originals, 1,000 resamples, {small['predictions'].size:,} rows, 12 cells")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        for protocol in ("per_reference", "pooled"):
            t0 = time.perf_counter()
            res = correlate(**small_inputs, protocol=protocol, bootstrap=1000, seed=0)
            elapsed = time.perf_counter() - t0
            print(
                f"  {protocol:13s} {elapsed:8.2f} s  srocc {res['srocc']:.4f} "
                f"[{res['srocc_ci_low']:.4f}, {res['srocc_ci_high']:.4f}]"
            )
        # Baseline for the per-reference bootstrap: re-run the (vectorised) protocol on every resample.
        rng = np.random.default_rng(0)
        n_base = 50
        t0 = time.perf_counter()
        for _ in range(n_base):
            rows_b = []
            for c in range(12):
                groups = np.unique(small["group"][small["cell"] == c])
                drawn = rng.choice(groups, size=groups.size)
                rows_b.append((drawn[:, None] * per_group + np.arange(per_group)).ravel())
            idx = np.concatenate(rows_b)
            ids = np.repeat(np.arange(idx.size // per_group), per_group).astype(str)
            correlate(
                small["predictions"][idx],
                small["references"][idx],
                ids,
                small["tasks"][idx],
                small["codecs"][idx],
            )
        per_rep = (time.perf_counter() - t0) / n_base
    print(f"  per_reference, protocol re-run per resample: {per_rep * 1000:8.2f} s per 1,000 (from {n_base})")


if __name__ == "__main__":
    main()
