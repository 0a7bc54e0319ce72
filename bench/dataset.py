"""Benchmark of the CFQA dataset storage: bytes on disk, read throughput, time to open a codec vs a task.

Generates a dataset of realistic tensor shapes (cls (1, 1, 257, 1536), seg (2, 1, 1370, 1536)) with the value
structure of the real codecs (HM: 10-bit min-max quantisation; hyperprior: 256 centres), writes it with
`cfqa_dataset.write_dataset` and the same arrays as float32 .npy files (the baseline), then measures:

- bytes on disk of the Parquet shards vs the .npy files (target: compressed split <= 0.4x),
- `with_format("numpy")` iteration throughput vs `np.load` of the same arrays (target >= 0.5x),
- time to open (download_and_prepare + load) one codec of one task (`cls-hm`) vs the whole task (`cls`).

Run: `.venv/bin/python bench/dataset.py` (about a minute on 2 cores; ~0.5 GB in a temp folder).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="cfqa_bench_"))
# Offline, private cache: set before `datasets` is imported (it reads these at import time).
os.environ.update(HF_HOME=str(_TMP / "hf"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datasets  # noqa: E402
import numpy as np  # noqa: E402

from cfqa_dataset import iter_pairs, write_dataset  # noqa: E402
from cfqa_dataset.layout import scan_shards  # noqa: E402
from cfqa_dataset.synthetic import synthetic_rows  # noqa: E402

SHAPES_CLS = {"cls": (1, 1, 257, 1536)}
SHAPES_SEG = {"seg": (2, 1, 1370, 1536)}
CODECS = {"hm": ("qp", [2, 8, 14, 20]), "hyperprior_multi_task": ("lambda", [0.015, 0.005, 0.0025, 0.0005])}
N_CLS, N_SEG = 12, 2


def rows() -> tuple[list[dict], list[dict]]:
    """Originals, then compressed rows of both tasks, materialised once (~0.5 GB): writers timed alone."""
    o1, c1 = synthetic_rows(SHAPES_CLS, N_CLS, CODECS, seed=1)
    o2, c2 = synthetic_rows(SHAPES_SEG, N_SEG, CODECS, seed=2)
    return [*o1, *o2], [*c1, *c2]


def write_npy(folder: Path, originals: list[dict], compressed: list[dict]) -> dict[str, list[Path]]:
    """Save the same arrays as .npy files, per split (the baseline)."""
    files: dict[str, list[Path]] = {"originals": [], "compressed": []}
    for split, split_rows in (("originals", originals), ("compressed", compressed)):
        (folder / split).mkdir(parents=True)
        for i, row in enumerate(split_rows):
            path = folder / split / f"{i:05d}.npy"
            np.save(path, row["feature"])
            files[split].append(path)
    return files


def fresh_cache() -> Path:
    return _TMP / f"cache_{time.perf_counter_ns()}"


def main() -> None:
    out = _TMP / "cfqa"
    originals, compressed = rows()
    t0 = time.perf_counter()
    npy_files = write_npy(_TMP / "npy", originals, compressed)
    t_npy_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_dataset(out, iter(originals), iter(compressed))
    t_write = time.perf_counter() - t0
    del originals, compressed

    shards = scan_shards(out)
    print("== bytes on disk (Parquet shards vs float32 .npy) ==")
    for split in ("originals", "compressed"):
        pq_bytes = sum((out / f).stat().st_size for k, fs in shards.items() if k.split == split for f in fs)
        npy_bytes = sum(p.stat().st_size for p in npy_files[split])
        ratio = pq_bytes / npy_bytes
        print(
            f"{split:11s}: parquet {pq_bytes / 1e6:8.1f} MB  npy {npy_bytes / 1e6:8.1f} MB  ratio {ratio:.3f}"
        )
    shapes = SHAPES_CLS | SHAPES_SEG
    for key, fs in sorted(shards.items()):
        if key.split == "compressed":
            size = sum((out / f).stat().st_size for f in fs)
            n = (N_CLS if key.task == "cls" else N_SEG) * len(CODECS[key.codec][1])
            npy = n * (int(np.prod(shapes[key.task])) * 4 + 128)  # 128-byte .npy header
            print(f"  {key.task}/{key.codec}: ratio {size / npy:.3f}")
    print(
        f"write time: parquet {t_write:.1f} s vs npy {t_npy_write:.1f} s: ratio {t_write / t_npy_write:.1f}"
    )

    print("== time to open one codec of a task vs the whole task (download_and_prepare + load) ==")
    for task in ("cls", "seg"):
        timings = {}
        for name in (f"{task}-hm", task):
            cache = str(fresh_cache())
            t0 = time.perf_counter()
            datasets.load_dataset(str(out), name, cache_dir=cache)
            timings[name] = time.perf_counter() - t0
            t0 = time.perf_counter()
            datasets.load_dataset(str(out), name, cache_dir=cache)
            timings[name + " cached"] = time.perf_counter() - t0
        one, whole = timings[f"{task}-hm"], timings[task]
        print(
            f"{task}-hm {one:.2f} s vs {task} (2 codecs) {whole:.2f} s: ratio {one / whole:.2f}; "
            f"reopen from cache {timings[f'{task}-hm cached']:.2f} s / {timings[task + ' cached']:.2f} s"
        )

    print("== read throughput vs np.load of the same arrays (warm page cache and Arrow cache) ==")
    cache = str(fresh_cache())
    loaded = {task: datasets.load_dataset(str(out), task, cache_dir=cache) for task in ("cls", "seg")}
    for p in npy_files["compressed"]:
        p.read_bytes()  # warm the page cache for the baseline as the Arrow cache is warm for datasets
    n_cls = N_CLS * sum(len(v[1]) for v in CODECS.values())
    npy_of = {"cls": npy_files["compressed"][:n_cls], "seg": npy_files["compressed"][n_cls:]}

    def rows_numpy(task: str) -> int:
        fmt = loaded[task]["compressed"].with_format("numpy", columns=["feature"])
        return sum(fmt[i]["feature"].nbytes for i in range(len(fmt)))

    def batches_numpy(task: str) -> int:
        fmt = loaded[task]["compressed"].with_format("numpy", columns=["feature"])
        return sum(b["feature"].nbytes for b in fmt.iter(batch_size=8))

    def pairs(task: str) -> int:
        return sum(p.compressed.nbytes for p in iter_pairs(loaded[task]))

    def stream(task: str) -> int:
        it = datasets.load_dataset(str(out), task, split="compressed", streaming=True).with_format("numpy")
        return sum(row["feature"].nbytes for row in it)

    def npy(task: str) -> int:
        return sum(np.load(p).nbytes for p in npy_of[task])

    readers = {
        "np.load (baseline)": npy,
        "with_format numpy, ds[i]": rows_numpy,
        "with_format numpy, .iter(8)": batches_numpy,
        "iter_pairs (zero-copy)": pairs,
        "streaming=True": stream,
    }
    for task in ("cls", "seg"):
        speeds = {}
        for name, fn in readers.items():
            fn(task)  # warm-up
            t0 = time.perf_counter()
            nbytes = fn(task)
            speeds[name] = nbytes / (time.perf_counter() - t0) / 1e6
        base = speeds["np.load (baseline)"]
        print(f"{task} ({np.prod((SHAPES_CLS | SHAPES_SEG)[task]) * 4 / 1e6:.1f} MB per row):")
        for name, mbps in speeds.items():
            print(f"  {name:28s}: {mbps:7.0f} MB/s  ratio {mbps / base:.2f}")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(_TMP, ignore_errors=True)
