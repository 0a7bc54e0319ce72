"""Benchmark: cached CKA vs the naive per-pair formula on seg-shaped pairs (2, 1, 1370, 1536).

One original and its compressed versions (a rate ladder), as `score` sees them. The naive way evaluates the
spec's formula ``||Xc Yc^T||_F^2 / (||Xc Xc^T||_F ||Yc Yc^T||_F + 1e-8)`` from scratch for every pair in
float64, in two flavours: numpy as written (numpy already runs ``a @ a.T`` through the symmetric syrk
kernel: 2 T^2 D multiply-adds per slice) and three general products as a torch.mm implementation does
(3 T^2 D). The cached way (`cfqa_metric.cka`) keeps the original's centred D x D Gram and needs one
symmetric product per version (T D^2 / 2), so the ideal ratios are 4 T / D = 3.6x and 6 T / D = 5.4x.
Prints times, the largest difference and the ratios (target >= 5x).

    .venv/bin/python bench/cka.py [--versions 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import cfqa_metric

SEG_SHAPE = (2, 1, 1370, 1536)


def naive_cka(x: np.ndarray, y: np.ndarray, general: bool = False) -> float:
    n, c, t, d = x.shape
    values = []
    for a, b in zip(x.reshape(n * c, t, d), y.reshape(n * c, t, d), strict=True):
        a = a.astype(np.float64)
        b = b.astype(np.float64)
        a = a - a.mean(axis=0)
        b = b - b.mean(axis=0)
        cross = a @ b.T
        # A transposed copy is a different buffer, so numpy cannot take the symmetric shortcut.
        at = a.T.copy() if general else a.T
        bt = b.T.copy() if general else b.T
        values.append(np.sum(cross * cross) / (np.linalg.norm(a @ at) * np.linalg.norm(b @ bt) + 1e-8))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10, help="compressed versions per original")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # Heavy-tailed channels like ViT activations, and a ladder of quantisation-like errors.
    x = (rng.standard_t(3, size=SEG_SHAPE) * rng.uniform(0.5, 20, SEG_SHAPE[-1])).astype(np.float32)
    versions = [
        (x + s * rng.standard_normal(SEG_SHAPE)).astype(np.float32)
        for s in np.geomspace(0.01, 5, args.versions)
    ]

    t0 = time.perf_counter()
    slow = [naive_cka(x, y) for y in versions]
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow_general = [naive_cka(x, y, general=True) for y in versions]
    t_general = time.perf_counter() - t0
    cfqa_metric.clear_caches()
    t0 = time.perf_counter()
    fast = [cfqa_metric.cka(x, y) for y in versions]
    t_cached = time.perf_counter() - t0

    diff = max(abs(a - b) for a, b in zip(slow + slow_general, fast + fast, strict=True))
    per = 1000 / args.versions
    print(f"CKA on {args.versions} versions of one seg-shaped original {SEG_SHAPE}")
    print(f"  naive, numpy as written  {t_naive:7.2f} s  ({t_naive * per:7.1f} ms per pair)")
    print(f"  naive, general products  {t_general:7.2f} s  ({t_general * per:7.1f} ms per pair)")
    print(f"  cached (cfqa_metric.cka) {t_cached:7.2f} s  ({t_cached * per:7.1f} ms per pair)")
    print(f"  max |difference| {diff:.2e}; CKA range {min(fast):.6f} .. {max(fast):.6f}")
    print(f"  ratio vs numpy as written  {t_naive / t_cached:5.1f}x (ideal 3.6x)")
    print(f"  ratio vs general products  {t_general / t_cached:5.1f}x (ideal 5.4x; target >= 5x)")


if __name__ == "__main__":
    main()
