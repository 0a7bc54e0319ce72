"""Fabricated CFQA-like rows and release trees for tests and benchmarks (no real data, no downloads).

The tensors imitate what matters for storage and validation: DINOv2-like activations (mostly small, a few
massive outliers) and decoded versions with the value structure of the real codecs (HM/VTM: 10-bit min-max
quantisation with the reference ranges, so <= 1024 distinct values per task/layer; hyperprior: 256 centres).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Reference min-max ranges of the HM/VTM pre-codec transform (spec, "Codecs and rate points").
RANGES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "cls": (np.array([-542.31]), np.array([94.15])),
    "seg": (np.array([-506.97]), np.array([105.95])),
    "dpt": (np.array([-2.38, -26.44, -323.30, -504.43]), np.array([3.27, 5.03, 25.05, 100.27])),
}

DEFAULT_CODECS: dict[str, tuple[str, list[float]]] = {
    "hm": ("qp", [2, 4, 6]),
    "hyperprior_multi_task": ("lambda", [0.001, 0.0025, 0.005]),
}


def _ranges(task: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = RANGES[task]
    if lo.size != channels:
        lo, hi = np.full(channels, lo.min()), np.full(channels, hi.max())
    return lo.reshape(1, -1, 1, 1).astype(np.float32), hi.reshape(1, -1, 1, 1).astype(np.float32)


def original_feature(shape: Sequence[int], task: str, rng: np.random.Generator) -> np.ndarray:
    """A float32 tensor with DINOv2-like statistics (bulk near 0, a few huge negative outliers per layer)."""
    x = rng.standard_normal(tuple(shape)).astype(np.float32) * 1.5
    lo, hi = _ranges(task, shape[1])
    outliers = rng.random(tuple(shape)) < 2e-4
    x = np.where(outliers, lo * 0.8, x)
    return np.clip(x, lo, hi).astype(np.float32)


def decoded_hm(x: np.ndarray, task: str, qp: float, rng: np.random.Generator) -> np.ndarray:
    """10-bit min-max quantisation (truncating, as the reference) after codec-like noise growing with QP."""
    lo, hi = _ranges(task, x.shape[1])
    scale = 1023.0 / (hi - lo)
    noisy = x + rng.standard_normal(x.shape).astype(np.float32) * (qp / 40.0) / scale
    q = np.clip(np.floor((noisy - lo) * scale), 0, 1023)
    return (q / scale + lo).astype(np.float32)


def decoded_hyperprior(x: np.ndarray, task: str, lam: float, rng: np.random.Generator) -> np.ndarray:
    """256-centre codebook (lower centre, as the reference) with index errors growing as lambda falls."""
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        layer = x[:, c]
        centres = np.unique(np.quantile(layer, np.linspace(0, 1, 256)).astype(np.float32))
        idx = np.clip(np.digitize(layer, centres) - 1, 0, len(centres) - 1)
        flips = rng.random(idx.shape) < min(0.5, 2e-4 / lam)
        idx = np.clip(idx + flips * rng.choice([-1, 1], idx.shape), 0, len(centres) - 1)
        out[:, c] = centres[idx]
    return out


def decode(x: np.ndarray, task: str, codec: str, param: float, rng: np.random.Generator) -> np.ndarray:
    """A decoded version of `x` with the value structure of `codec`."""
    if codec.startswith("hyperprior"):
        return decoded_hyperprior(x, task, param, rng)
    return decoded_hm(x, task, param, rng)


def raw_value(task: str, severity: float, rng: np.random.Generator) -> float:
    """A task value worsening with `severity` (0 = original)."""
    if task == "cls":
        return float(1 + int(rng.poisson(severity * 3)))
    if task == "seg":
        return float(round(80.0 - severity * 20 - rng.random() * 5, 4))
    return float(round(0.4 + severity * 0.3 + rng.random() * 0.05, 4))


def _severity(codec: str, param: float, params: Sequence[float]) -> float:
    rank = sorted(params, reverse=codec.startswith("hyperprior")).index(param)
    return (rank + 1) / len(params)


def rate_order(codec: str, params: Sequence[float]) -> list[float]:
    """Parameters from the highest rate to the lowest (QP ascending, lambda descending)."""
    return sorted(params, reverse=codec.startswith("hyperprior"))


def synthetic_rows(
    shapes: Mapping[str, Sequence[int]],
    n_originals: int,
    codecs: Mapping[str, tuple[str, Sequence[float]]] | None = None,
    seed: int = 0,
) -> tuple[Iterator[dict[str, Any]], Iterator[dict[str, Any]]]:
    """(originals, compressed) row generators in the writer's schema, lazily produced and reproducible.

    Compressed rows come grouped by original, codec, rate (the order iter_pairs reads fastest).
    """
    codecs = dict(DEFAULT_CODECS if codecs is None else codecs)

    def feature(task: str, i: int) -> np.ndarray:
        return original_feature(
            shapes[task], task, np.random.default_rng([seed, list(shapes).index(task), i])
        )

    def originals() -> Iterator[dict[str, Any]]:
        for task in shapes:
            for i in range(n_originals):
                yield {
                    "original_id": f"{task}_{i:04d}",
                    "task": task,
                    "source_name": f"{task}_{i:04d}.png",
                    "feature": feature(task, i),
                    "raw": raw_value(task, 0.0, np.random.default_rng(i)),
                    "raw_ce": 0.1 if task == "cls" else None,
                    "provenance": {"backbone": "synthetic", "task": task},
                }

    def compressed() -> Iterator[dict[str, Any]]:
        for task in shapes:
            for i in range(n_originals):
                x = feature(task, i)
                raw0 = raw_value(task, 0.0, np.random.default_rng(i))
                for codec, (pname, params) in codecs.items():
                    for r, p in enumerate(rate_order(codec, params)):
                        rng = np.random.default_rng([seed, i, r, len(codec)])
                        raw = raw_value(task, _severity(codec, p, params), rng)
                        drop = raw0 - raw if task == "seg" else raw - raw0
                        yield {
                            "id": f"{task}/{codec}/{r}/{task}_{i:04d}",
                            "original_id": f"{task}_{i:04d}",
                            "task": task,
                            "codec": codec,
                            "rate_index": r,
                            "codec_param": float(p),
                            "codec_param_name": pname,
                            "bpfp": round(8.0 / (r + 1), 4),
                            "feature": decode(x, task, codec, p, rng),
                            "raw": raw,
                            "label": drop,
                            "raw_ce": 0.1 + r if task == "cls" else None,
                            "label_ce": float(r) if task == "cls" else None,
                            "provenance": {"encoder": codec, "version": "synthetic"},
                        }

    return originals(), compressed()


def rate_folder(codec: str, param: float) -> str:
    """Folder name of a rate point as the reference scripts write it."""
    if codec.startswith("hyperprior"):
        return f"lambda{param:g}_epochs800_lr0.0001_bs128_patch256-256"
    return f"QP{int(param)}"


def make_release(
    root: str | Path,
    shapes: Mapping[str, Sequence[int]],
    n_originals: int,
    codecs: Mapping[str, tuple[str, Sequence[float]]] | None = None,
    seed: int = 0,
) -> Path:
    """Write a small tree in the official release layout (org_feat, compressed_feat, lists, labels).

    Label logs list each feature once per rate point in ascending codec-parameter order, as the reference
    evaluation wrote them: `<name>.npy <raw> <mse> <cosine> <cka>`.
    """
    root = Path(root)
    codecs = dict(DEFAULT_CODECS if codecs is None else codecs)
    for task, shape in shapes.items():
        names = [f"{task}_img_{i:03d}" for i in range(n_originals)]
        (root / "lists").mkdir(parents=True, exist_ok=True)
        suffix = [f" {i}" for i in range(n_originals)] if task == "cls" else [""] * n_originals
        (root / "lists" / f"{task}.txt").write_text(
            "".join(f"{n}.JPEG{s}\n" for n, s in zip(names, suffix, strict=True))
        )
        org = root / "org_feat" / task
        org.mkdir(parents=True, exist_ok=True)
        feats = {}
        for i, name in enumerate(names):
            feats[name] = original_feature(shape, task, np.random.default_rng([seed, i, len(task)]))
            np.save(org / f"{name}.npy", feats[name])
        for codec, (_, params) in codecs.items():
            log_lines = []
            for p in sorted(params):
                folder = root / "compressed_feat" / codec / task / rate_folder(codec, p)
                folder.mkdir(parents=True, exist_ok=True)
                for i, name in enumerate(names):
                    rng = np.random.default_rng([seed, i, int(p * 1000)])
                    y = decode(feats[name], task, codec, p, rng)
                    np.save(folder / f"{name}.npy", y)
                    raw = raw_value(task, _severity(codec, p, params), rng)
                    mse = float(np.mean((feats[name] - y) ** 2))
                    log_lines.append((name, f"{name}.npy {raw} {mse:.6g} 0.99 0.98\n"))
            # Grouped per feature, rate points in ascending parameter order (the reference's loop order).
            log_lines.sort(key=lambda kv: kv[0])
            (root / "labels" / codec).mkdir(parents=True, exist_ok=True)
            (root / "labels" / codec / f"{task}.txt").write_text("".join(line for _, line in log_lines))
    return root
