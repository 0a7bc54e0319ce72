"""Pre-codec transforms: 10-bit uniform quantisation, the k-means codebook, packing to one frame.

Everything here follows the CFQA reference (see the spec, "Codecs and rate points"):

- uniform: ``q = floor((x - lo) * (1023 / (hi - lo)))`` cast to uint16, inverse ``x = q / scale + lo``; ranges
  per task, per layer (C axis) for ``dpt``. Values outside ``[lo, hi]`` are clipped to ``[0, 1023]`` (the
  reference's plain cast would wrap them; with ranges taken from the data it never meets them).
- codebook: 256 centres from 1-D k-means (seed 42) over 10 originals, one codebook per layer for ``dpt``;
  ``index = digitize(x, centres) - 1`` clipped to ``[0, 255]`` (the LOWER centre), decoded as
  ``centres[index]``.
- packing: ``(N, C, T, D) -> (N, T, C, D) -> (N*T, C*D)``, and its exact inverse.

Ranges and codebooks are explicit arguments so that other profiles (the offline "mini" one) can supply
their own; the paper values are the defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

TASKS: tuple[str, ...] = ("cls", "seg", "dpt")

#: Tasks whose ranges and codebooks are per layer (the C axis holds 4 backbone blocks).
PER_LAYER_TASKS: frozenset[str] = frozenset({"dpt"})

#: The reference's min-max ranges: (lo, hi), scalars or one value per layer.
PAPER_RANGES: dict[str, tuple[float | tuple[float, ...], float | tuple[float, ...]]] = {
    "cls": (-542.31, 94.15),
    "seg": (-506.97, 105.95),
    "dpt": ((-2.38, -26.44, -323.30, -504.43), (3.27, 5.03, 25.05, 100.27)),
}

BIT_DEPTH = 10
CODEBOOK_LEVELS = 256
CODEBOOK_SAMPLES = 10
CODEBOOK_SEED = 42

RangeValue = float | Sequence[float] | np.ndarray
Ranges = Mapping[str, tuple[RangeValue, RangeValue]]


def check_feature(x: np.ndarray, what: str = "feature") -> np.ndarray:
    """Return ``x`` as a finite 4-D float32 array, or raise ValueError saying exactly what is wrong."""
    arr = np.asarray(x)
    if arr.ndim != 4:
        raise ValueError(f"{what}: expected a 4-D (N, C, T, D) array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what}: empty array of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{what}: expected a float array, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{what}: {bad} non-finite value(s) (NaN or inf) in array of shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def task_range(task: str, channels: int, ranges: Ranges | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) for ``task`` as float64 arrays shaped ``(1, C, 1, 1)`` (broadcast over (N, C, T, D)).

    A scalar range applies to every layer; a per-layer range must have one value per channel ``C``.
    """
    _check_task(task)
    table = PAPER_RANGES if ranges is None else ranges
    if task not in table:
        raise ValueError(f"no range for task {task!r} (ranges given for {sorted(table)})")
    lo, hi = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in table[task])
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError(f"range for {task!r}: lo {lo.shape} and hi {hi.shape} must be scalars or equal 1-D")
    if lo.size not in (1, channels):
        raise ValueError(f"range for {task!r} has {lo.size} layers but the feature has C={channels}")
    if np.any(hi <= lo):
        raise ValueError(f"range for {task!r}: hi must exceed lo, got lo={lo.tolist()} hi={hi.tolist()}")
    lo = np.broadcast_to(lo, (channels,)).reshape(1, channels, 1, 1)
    hi = np.broadcast_to(hi, (channels,)).reshape(1, channels, 1, 1)
    return lo, hi


def fit_ranges(
    features_by_task: Mapping[str, Iterable[np.ndarray]],
    per_layer: Iterable[str] = PER_LAYER_TASKS,
) -> dict[str, tuple[float | tuple[float, ...], float | tuple[float, ...]]]:
    """Data-derived ranges: min and max over the given features of each task (per layer for ``per_layer``).

    Returns a mapping in the same form as :data:`PAPER_RANGES`, usable as ``ranges=`` everywhere.
    """
    per_layer = set(per_layer)
    out: dict[str, tuple[float | tuple[float, ...], float | tuple[float, ...]]] = {}
    for task, feats in features_by_task.items():
        _check_task(task)
        lo = hi = None
        for i, f in enumerate(feats):
            arr = check_feature(f, f"fit_ranges: {task} feature {i}")
            axes = (0, 2, 3) if task in per_layer else None
            f_lo, f_hi = arr.min(axis=axes), arr.max(axis=axes)
            if lo is not None and np.shape(f_lo) != np.shape(lo):
                raise ValueError(f"fit_ranges: {task} feature {i} has C={arr.shape[1]}, earlier ones differ")
            lo = f_lo if lo is None else np.minimum(lo, f_lo)
            hi = f_hi if hi is None else np.maximum(hi, f_hi)
        if lo is None:
            raise ValueError(f"fit_ranges: no features for task {task!r}")
        if task in per_layer:
            out[task] = (tuple(float(v) for v in lo), tuple(float(v) for v in hi))
        else:
            out[task] = (float(lo), float(hi))
    return out


def quantize_uniform(
    x: np.ndarray, task: str, ranges: Ranges | None = None, bit_depth: int = BIT_DEPTH
) -> np.ndarray:
    """Min-max scale ``x`` (N, C, T, D) to ``bit_depth`` bits with a truncating cast; returns uint16."""
    arr = check_feature(x)
    lo, hi = task_range(task, arr.shape[1], ranges)
    peak = (1 << bit_depth) - 1
    scaled = np.floor((arr.astype(np.float64) - lo) * (peak / (hi - lo)))
    return np.clip(scaled, 0, peak).astype(np.uint16)


def dequantize_uniform(
    q: np.ndarray, task: str, ranges: Ranges | None = None, bit_depth: int = BIT_DEPTH
) -> np.ndarray:
    """Inverse of :func:`quantize_uniform`: ``q / scale + lo`` as float32."""
    q = np.asarray(q)
    if q.ndim != 4:
        raise ValueError(f"dequantize_uniform: expected a 4-D (N, C, T, D) array, got shape {q.shape}")
    lo, hi = task_range(task, q.shape[1], ranges)
    peak = (1 << bit_depth) - 1
    return (q.astype(np.float64) / (peak / (hi - lo)) + lo).astype(np.float32)


def pack(x: np.ndarray) -> np.ndarray:
    """Pack an (N, C, T, D) array into one 2-D frame (N*T, C*D): transpose to (N, T, C, D), then reshape."""
    arr = np.asarray(x)
    if arr.ndim != 4 or arr.size == 0:
        raise ValueError(f"pack: expected a non-empty 4-D (N, C, T, D) array, got shape {arr.shape}")
    n, c, t, d = arr.shape
    return np.ascontiguousarray(arr.transpose(0, 2, 1, 3)).reshape(n * t, c * d)


def unpack(frame: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Exact inverse of :func:`pack`: a (N*T, C*D) frame back to ``shape`` = (N, C, T, D)."""
    frame = np.asarray(frame)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4 or min(shape) <= 0:
        raise ValueError(f"unpack: shape must be 4 positive ints (N, C, T, D), got {shape}")
    n, c, t, d = shape
    if frame.shape != (n * t, c * d):
        raise ValueError(
            f"unpack: frame of shape {frame.shape} does not hold {shape} (expected {(n * t, c * d)})"
        )
    return np.ascontiguousarray(frame.reshape(n, t, c, d).transpose(0, 2, 1, 3))


# --- k-means codebook (the hyperprior's input transform) ---------------------------------------------


def fit_codebook(
    originals: Sequence[np.ndarray],
    task: str,
    levels: int = CODEBOOK_LEVELS,
    samples: int = CODEBOOK_SAMPLES,
    seed: int = CODEBOOK_SEED,
    max_points: int | None = 2_000_000,
) -> np.ndarray:
    """Fit the 1-D k-means codebook: ``samples`` originals drawn with ``seed``, ``levels`` sorted centres.

    Returns an array of shape (L, levels): L = C for per-layer tasks (``dpt``), else 1.
    ``max_points`` caps the values given to k-means per codebook (a seeded random subset) so that paper-size
    features (up to 25 M values each) stay tractable; ``None`` uses every value.
    """
    _check_task(task)
    if not originals:
        raise ValueError(f"fit_codebook: no originals for task {task!r}")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(originals), size=min(samples, len(originals)), replace=False).tolist())
    feats = [check_feature(originals[i], f"fit_codebook: {task} original {i}") for i in chosen]
    channels = {f.shape[1] for f in feats}
    if len(channels) != 1:
        raise ValueError(f"fit_codebook: {task} originals disagree on C: {sorted(channels)}")
    if task in PER_LAYER_TASKS:
        groups = [np.concatenate([f[:, c].ravel() for f in feats]) for c in range(channels.pop())]
    else:
        groups = [np.concatenate([f.ravel() for f in feats])]
    return np.stack([_kmeans_1d(values, levels, seed, max_points) for values in groups])


def _kmeans_1d(
    values: np.ndarray, levels: int, seed: int, max_points: int | None, iters: int = 1000
) -> np.ndarray:
    """Lloyd's k-means in one dimension, exact, on sorted values.

    In 1-D every cluster is a contiguous run of the sorted values (split at the midpoints between sorted
    centres), so one Lloyd step is a ``searchsorted`` of ``levels`` midpoints plus prefix sums:
    O(levels log n) instead of O(n * levels) for a general k-means (sklearn's takes minutes on paper-size
    features). Initialised by sklearn's k-means++ (on a seeded subset); stops when no value changes cluster.
    """
    rng = np.random.default_rng(seed)
    values = np.asarray(values).ravel()
    if max_points is not None and values.size > max_points:
        values = rng.choice(values, size=max_points, replace=False)
    data = np.sort(values.astype(np.float64))
    distinct = np.unique(data)
    if distinct.size <= levels:
        # Fewer distinct values than levels: every value is its own centre; pad by repeating the top one.
        return np.concatenate([distinct, np.full(levels - distinct.size, distinct[-1])]).astype(np.float32)
    prefix = np.concatenate([[0.0], np.cumsum(data)])
    centres = _kmeans_plusplus_1d(data, levels, rng)
    bounds = None
    for _ in range(iters):
        cuts = np.searchsorted(data, (centres[1:] + centres[:-1]) / 2)
        new_bounds = np.concatenate([[0], cuts, [data.size]])
        if bounds is not None and np.array_equal(new_bounds, bounds):
            break
        bounds = new_bounds
        counts = np.diff(bounds)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        # An empty cluster keeps its centre (it lies between two others and may fill again).
        centres = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
        centres.sort()
    return centres.astype(np.float32)


def _kmeans_plusplus_1d(
    data: np.ndarray, levels: int, rng: np.random.Generator, subset: int = 50_000
) -> np.ndarray:
    from sklearn.cluster import kmeans_plusplus

    sample = data if data.size <= subset else rng.choice(data, size=subset, replace=False)
    seed = int(rng.integers(2**31 - 1))
    centres, _ = kmeans_plusplus(sample.reshape(-1, 1), levels, random_state=seed)
    return np.sort(centres.ravel())


def _check_codebook(codebook: np.ndarray, channels: int) -> np.ndarray:
    cb = np.asarray(codebook, dtype=np.float32)
    if cb.ndim == 1:
        cb = cb[None]
    if cb.ndim != 2 or cb.shape[0] not in (1, channels):
        raise ValueError(f"codebook of shape {cb.shape} does not fit a feature with C={channels}")
    return cb


def codebook_index(x: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Map ``x`` (N, C, T, D) to codebook indices (uint8): the LOWER centre, ``digitize(x, c) - 1``."""
    arr = check_feature(x)
    cb = _check_codebook(codebook, arr.shape[1])
    out = np.empty(arr.shape, dtype=np.uint8 if cb.shape[1] <= 256 else np.uint16)
    for c in range(arr.shape[1]):
        centres = cb[min(c, cb.shape[0] - 1)]
        out[:, c] = np.clip(np.digitize(arr[:, c], centres) - 1, 0, cb.shape[1] - 1)
    return out


def codebook_lookup(index: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Inverse of :func:`codebook_index`: indices (N, C, T, D) -> centre values (float32)."""
    idx = np.asarray(index)
    if idx.ndim != 4:
        raise ValueError(f"codebook_lookup: expected a 4-D (N, C, T, D) array, got shape {idx.shape}")
    cb = _check_codebook(codebook, idx.shape[1])
    if idx.size and (idx.min() < 0 or idx.max() >= cb.shape[1]):
        raise ValueError(f"codebook_lookup: indices outside [0, {cb.shape[1] - 1}]")
    out = np.empty(idx.shape, dtype=np.float32)
    for c in range(idx.shape[1]):
        out[:, c] = cb[min(c, cb.shape[0] - 1)][idx[:, c]]
    return out
