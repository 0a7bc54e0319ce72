"""Benchmark of the feature codecs: encode+decode time per feature and BPFP over the 10 rate points.

Run: ``.venv/bin/python bench/codecs.py [--features FILE.npz] [--model-dir DIR] [--paper] [--originals K]``

For every available codec (hevc, av1, the two hyperpriors; hm/vtm when their binaries are on PATH) and
every task shape, the 10 rate points are encoded and decoded on ``K`` features. Printed per (codec, task):
seconds per encode+decode, BPFP at each rate point, MSE and cosine at the two ends of the ladder. The
baseline, run in the same process on the same features, is lossless coding of the same packed 10-bit frame
with zlib: the ratios say how much rate the lossy codecs save and what their time costs relative to it.

Features: ``--features`` takes an ``.npz`` with arrays ``cls``, ``seg``, ``dpt`` stacked over originals (K, N,
C, T, D), e.g. real mini features; without it, synthetic DINOv2-like features (per-dimension offsets, a few
outlier dimensions, token-correlated noise) of the mini shapes are generated. Ranges are fitted to the
features (:func:`builders.transforms.fit_ranges`). The mini ladders were chosen on real mini features; on the
synthetic ones (uncorrelated noise plus outlier dimensions) only the timings and the PyAV codecs' rates mean
much, and the learned codecs' ladders need not be monotone. Without ``--model-dir`` the mini hyperpriors are
trained first (all 40 models, the mini budget), and that training time is reported too. ``--paper`` adds
paper-size frames (cls 257x1536, seg 2740x1536, dpt 3222x6144) for the PyAV codecs at the two ends of their
ladders.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from builders import codecs, transforms

MINI_SHAPES = {"cls": (1, 1, 65, 192), "seg": (2, 1, 65, 192), "dpt": (2, 4, 81, 192)}
PAPER_SHAPES = {"cls": (1, 1, 257, 1536), "seg": (2, 1, 1370, 1536), "dpt": (2, 4, 1611, 1536)}


def synthetic_features(shape: tuple[int, ...], count: int, seed: int) -> list[np.ndarray]:
    """DINOv2-like features: per-dimension offsets, a few large outlier dimensions, token-correlated noise."""
    rng = np.random.default_rng(seed)
    n, c, t, d = shape
    offsets = rng.standard_normal((1, c, 1, d)) * 0.5
    outliers = np.zeros((1, c, 1, d))
    outliers[..., rng.choice(d, size=max(1, d // 100), replace=False)] = rng.choice([-1, 1], size=1) * 15.0
    feats = []
    for _ in range(count):
        shared = rng.standard_normal((n, c, 1, d))
        noise = rng.standard_normal((n, c, t, d))
        x = offsets + outliers * (1 + 0.1 * rng.standard_normal((n, c, t, 1))) + 0.6 * shared + 0.8 * noise
        feats.append(x.astype(np.float32))
    return feats


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    """Token cosine averaged over tokens and (n, c) slices (the spec's baseline metric)."""
    xn = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    yn = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-8)
    return float((xn * yn).sum(-1).mean())


def zlib_baseline(feats: list[np.ndarray], task: str, ranges) -> tuple[float, float]:
    """(seconds per feature, BPFP) of lossless zlib coding of the packed 10-bit frame."""
    start, bits = time.perf_counter(), 0.0
    for x in feats:
        frame = transforms.pack(transforms.quantize_uniform(x, task, ranges))
        payload = zlib.compress(frame.tobytes(), 6)
        back = np.frombuffer(zlib.decompress(payload), dtype=np.uint16).reshape(frame.shape)
        transforms.dequantize_uniform(transforms.unpack(back, x.shape), task, ranges)
        bits += len(payload) * 8 / x.size
    return (time.perf_counter() - start) / len(feats), bits / len(feats)


def bench_codec(codec, feats: list[np.ndarray], task: str, rate_indices) -> dict:
    """Time and rate of ``codec`` on ``feats`` at ``rate_indices`` (warm-up call excluded)."""
    codec.compress(feats[0], task, rate_indices[0])  # loads models, initialises libraries
    seconds, bpfp, mse, cos = 0.0, [], [], []
    for r in rate_indices:
        b = m = c = 0.0
        for x in feats:
            start = time.perf_counter()
            res = codec.compress(x, task, r)
            seconds += time.perf_counter() - start
            b += res.bpfp
            m += float(np.mean((res.decoded.astype(np.float64) - x) ** 2))
            c += cosine(x, res.decoded)
        bpfp.append(b / len(feats))
        mse.append(m / len(feats))
        cos.append(c / len(feats))
    return {"seconds": seconds / (len(feats) * len(rate_indices)), "bpfp": bpfp, "mse": mse, "cosine": cos}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, help=".npz with cls/seg/dpt arrays (K, N, C, T, D)")
    parser.add_argument("--model-dir", type=Path, help="trained hyperpriors (else: train mini ones)")
    parser.add_argument("--originals", type=int, default=4, help="features per task (default 4)")
    parser.add_argument("--paper", action="store_true", help="also time paper-size frames (PyAV codecs)")
    args = parser.parse_args()

    if args.features:
        data = np.load(args.features)
        train_feats = {t: [data[t][i] for i in range(data[t].shape[0])] for t in MINI_SHAPES}
        feats = {t: v[: args.originals] for t, v in train_feats.items()}
    else:
        print("synthetic features: timings are representative, the learned codecs' rates are not")
        train_feats = {t: synthetic_features(s, 12, seed=i) for i, (t, s) in enumerate(MINI_SHAPES.items())}
        feats = {t: v[: args.originals] for t, v in train_feats.items()}
    ranges = transforms.fit_ranges(train_feats)
    names = [n for n in codecs.available() if n not in ("vvenc",)]
    print(f"codecs available here: {', '.join(names)}")

    options = {name: {"profile": "mini", "ranges": ranges} for name in names}
    with tempfile.TemporaryDirectory(prefix="cfqa-bench-") as tmp:
        hyper = [n for n in names if n.startswith("hyperprior")]
        if hyper:
            model_dir = args.model_dir
            if model_dir is None:
                from builders.codecs import hyperprior

                model_dir = Path(tmp) / "models"
                start = time.perf_counter()
                written = hyperprior.train_all(train_feats, model_dir, profile="mini", threads=1)
                train_s = time.perf_counter() - start
                count = sum(len(v) for v in written.values())
                print(f"mini hyperprior training: {count} models (+ base) in {train_s:.1f} s")
            for name in hyper:
                options[name]["model_dir"] = str(model_dir)

        print("\n== mini shapes: time per encode+decode, BPFP over rate_index 0..9, MSE/cosine at 0 and 9 ==")
        for task in MINI_SHAPES:
            base_s, base_bpfp = zlib_baseline(feats[task], task, ranges)
            shape = feats[task][0].shape
            print(f"\n{task} {shape}: baseline zlib-lossless {base_s * 1e3:.1f} ms, {base_bpfp:.3f} BPFP")
            for name in names:
                codec = codecs.get(name, **options[name])
                res = bench_codec(codec, feats[task], task, list(range(10)))
                monotone = all(a >= b for a, b in zip(res["bpfp"], res["bpfp"][1:], strict=False))
                bpfp, mse, cos = res["bpfp"], res["mse"], res["cosine"]
                print(
                    f"  {name:26s} {res['seconds'] * 1e3:7.1f} ms (x{res['seconds'] / base_s:5.1f} zlib)  "
                    f"BPFP {bpfp[0]:.3f}..{bpfp[-1]:.3f} "
                    f"(x{bpfp[0] / base_bpfp:.2f}..x{bpfp[-1] / base_bpfp:.3f} zlib)"
                    f"{'' if monotone else ' NOT MONOTONE'}  "
                    f"MSE {mse[0]:.4f}..{mse[-1]:.4f}  cos {cos[0]:.4f}..{cos[-1]:.4f}"
                )
                print("    BPFP per rate_index: " + " ".join(f"{b:.3f}" for b in res["bpfp"]))

        if args.paper:
            print("\n== paper shapes (paper ladders, synthetic features): rate_index 0 and 9 ==")
            for task, shape in PAPER_SHAPES.items():
                pfeats = synthetic_features(shape, 1, seed=7)
                pranges = transforms.fit_ranges({task: pfeats})
                base_s, base_bpfp = zlib_baseline(pfeats, task, pranges)
                print(f"\n{task} {shape}: baseline zlib-lossless {base_s:.2f} s, {base_bpfp:.3f} BPFP")
                for name in [n for n in names if n in ("hevc", "av1", "hm", "vtm")]:
                    codec = codecs.get(name, ranges=pranges)
                    res = bench_codec(codec, pfeats, task, [0, 9])
                    print(
                        f"  {name:26s} {res['seconds']:7.2f} s (x{res['seconds'] / base_s:5.1f} zlib)  "
                        f"BPFP {res['bpfp'][0]:.3f}..{res['bpfp'][1]:.3f}  "
                        f"cos {res['cosine'][0]:.4f}..{res['cosine'][1]:.4f}"
                    )


if __name__ == "__main__":
    main()
