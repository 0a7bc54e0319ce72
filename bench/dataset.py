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


def rows():
    """Originals then compressed rows of both tasks (generated lazily, reproducibly)."""
    o1, c1 = synthetic_rows(SHAPES_CLS, N_CLS, CODECS, seed=1)
    o2, c2 = synthetic_rows(SHAPES_SEG, N_SEG, CODECS, seed=2)

    def chain(*its):
        for it in its:
            yield from it

    return chain(o1, o2), chain(c1, c2)


def write_npy(folder: Path) -> tuple[dict[str, list[Path]], float]:
    """Save the same arrays as .npy files, per split; returns the paths and the seconds spent."""
    t0 = time.perf_counter()
    files: dict[str, list[Path]] = {"originals": [], "compressed": []}
    o, c = rows()
    for split, it in (("originals", o), ("compressed", c)):
        (folder / split).mkdir(parents=True)
        for i, row in enumerate(it):
            path = folder / split / f"{i:05d}.npy"
            np.save(path, row["feature"])
            files[split].append(path)
    return files, time.perf_counter() - t0


def fresh_cache() -> Path:
    cache = _TMP / f"cache_{time.perf_counter_ns()}"
    return cache


def main() -> None:
    out = _TMP / "cfqa"
    npy_files, t_npy_write = write_npy(_TMP / "npy")
    t0 = time.perf_counter()
    o, c = rows()
    write_dataset(out, o, c)
    t_write = time.perf_counter() - t0
    # Row generation is shared by both writers; report it to read the write times fairly.
    t0 = time.perf_counter()
    o, c = rows()
    for _ in o:
        pass
    for _ in c:
        pass
    t_gen = time.perf_counter() - t0

    shards = scan_shards(out)
    print("== bytes on disk (Parquet shards vs float32 .npy) ==")
    for split in ("originals", "compressed"):
        pq_bytes = sum((out / f).stat().st_size for k, fs in shards.items() if k.split == split for f in fs)
        npy_bytes = sum(p.stat().st_size for p in npy_files[split])
        print(
            f"{split:11s}: parquet {pq_bytes / 1e6:8.1f} MB  npy {npy_bytes / 1e6:8.1f} MB  ratio {pq_bytes / npy_bytes:.3f}"
        )
    shapes = SHAPES_CLS | SHAPES_SEG
    for key, fs in sorted(shards.items()):
        if key.split == "compressed":
            size = sum((out / f).stat().st_size for f in fs)
            n = (N_CLS if key.task == "cls" else N_SEG) * len(CODECS[key.codec][1])
            npy = n * (int(np.prod(shapes[key.task])) * 4 + 128)  # 128-byte .npy header
            print(f"  {key.task}/{key.codec}: ratio {size / npy:.3f}")
    print(
        f"write time: parquet {t_write - t_gen:.1f} s vs npy {t_npy_write - t_gen:.1f} s (row generation {t_gen:.1f} s excluded)"
    )

    print("== time to open (download_and_prepare + load, fresh cache) ==")
    timings = {}
    for name in ("cls-hm", "cls"):
        t0 = time.perf_counter()
        datasets.load_dataset(str(out), name, cache_dir=str(fresh_cache()))
        timings[name] = time.perf_counter() - t0
    print(
        f"cls-hm {timings['cls-hm']:.2f} s vs cls (all codecs) {timings['cls']:.2f} s: ratio {timings['cls-hm'] / timings['cls']:.2f}"
    )

    print("== read throughput: with_format('numpy') vs np.load of the same arrays (warm page cache) ==")
    cache = str(fresh_cache())
    comp_all = []
    for task in ("cls", "seg"):
        comp_all.append(datasets.load_dataset(str(out), task, split="compressed", cache_dir=cache))
    for p in npy_files["compressed"]:
        p.read_bytes()  # warm the page cache for the baseline as the Arrow cache is warm for datasets

    def read_datasets() -> int:
        total = 0
        for ds in comp_all:
            fmt = ds.with_format("numpy", columns=["feature"])
            for i in range(len(fmt)):
                x = fmt[i]["feature"]
                assert x.dtype == np.float32
                total += x.nbytes
        return total

    def read_npy() -> int:
        return sum(np.load(p).nbytes for p in npy_files["compressed"])

    def read_pairs() -> int:
        return sum(
            p.compressed.nbytes
            for p in iter_pairs(
                {t: datasets.load_dataset(str(out), t, cache_dir=cache) for t in ("cls", "seg")}
            )
        )

    def stream() -> int:
        total = 0
        for task in ("cls", "seg"):
            it = datasets.load_dataset(str(out), task, split="compressed", streaming=True).with_format(
                "numpy"
            )
            for row in it:
                total += row["feature"].nbytes
        return total

    results = {}
    for name, fn in (
        ("np.load", read_npy),
        ("with_format numpy", read_datasets),
        ("iter_pairs", read_pairs),
        ("streaming", stream),
    ):
        fn()  # warm-up
        t0 = time.perf_counter()
        nbytes = fn()
        results[name] = nbytes / (time.perf_counter() - t0) / 1e6
    base = results["np.load"]
    for name, mbps in results.items():
        print(f"{name:18s}: {mbps:8.0f} MB/s  ratio vs np.load {mbps / base:.2f}")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(_TMP, ignore_errors=True)
