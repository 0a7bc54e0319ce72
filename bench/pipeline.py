"""Scaling of the encode stage: the same encode + decode + label units on a local Dask cluster with 2 workers
vs 1 worker (target >= 1.6x), plus the in-process time per unit for the cost model.

Run: .venv/bin/python bench/pipeline.py [--originals 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from builders.config import BuildConfig  # noqa: E402
from builders.pipeline import Build  # noqa: E402
from builders.runner import Runner  # noqa: E402

TINY_MINI = {"train_steps": 4, "n_train": 48, "n_val": 16, "batch_size": 8}


def prepare(root: Path, originals: int) -> tuple[Build, list]:
    """Models, originals and codec settings of a small build (not timed); returns the build and its units."""
    cfg = BuildConfig(
        profile="mini", out=str(root), tasks=("cls", "seg", "dpt"), codecs=("hevc", "av1"),
        originals=originals, workers=0, mini=TINY_MINI,
    )  # fmt: skip
    with Runner(workers=0) as runner:
        b = Build(cfg, runner)
        b.profile.prepare()
        records = b.extract_originals()
        b.profile.prepare_codecs(records)
        return b, b.encode_units(records)


def time_encode(units: list, workers: int, store_root: Path) -> float:
    """Wall time of the encode stage on ``workers`` (0 = in process), with no finished units in the store."""
    shutil.rmtree(store_root / "encoded", ignore_errors=True)
    shutil.rmtree(store_root / "labels", ignore_errors=True)
    from builders.pipeline import run_encode_unit

    with Runner(workers=workers) as runner:
        if runner.distributed:  # warm the workers (imports, codec set-up) outside the timed region
            runner.map(run_encode_unit, units[:workers], "warm-up")
            shutil.rmtree(store_root / "encoded", ignore_errors=True)
            shutil.rmtree(store_root / "labels", ignore_errors=True)
        start = time.perf_counter()
        runner.map(run_encode_unit, units, f"encode on {workers or 'no'} worker(s)")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--originals", type=int, default=8)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cfqa-bench-pipeline-"))
    try:
        build, units = prepare(root, args.originals)
        store_root = root / "cache"
        t_local = time_encode(units, 0, store_root)
        t1 = time_encode(units, 1, store_root)
        t2 = time_encode(units, 2, store_root)
        print(f"units: {len(units)} (hevc + av1, cls/seg/dpt, {args.originals} originals, 10 rates)")
        print(f"in process: {t_local:.1f} s  ({1000 * t_local / len(units):.1f} ms per unit)")
        print(f"1 worker:   {t1:.1f} s")
        print(f"2 workers:  {t2:.1f} s")
        print(f"scaling 2 vs 1 workers: {t1 / t2:.2f}x (target >= 1.6x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
