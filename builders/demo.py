"""`make demo`: build the mini profile, then use it the way a user would — `datasets.load_dataset` to read
it and `evaluate.load("cfqa_metric")` to score the baseline metrics — and print the paper-style table."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

DEMO_METRICS = ("mse", "cosine", "cka")


def score_with_evaluate(dataset_dir: Path, metrics=DEMO_METRICS) -> dict[str, dict]:
    """Load every task with `datasets.load_dataset`, compute the metrics, score them with `evaluate`."""
    import datasets
    import evaluate

    import cfqa_metric
    from cfqa_metric import registry

    fns = {name: registry.get(name) for name in metrics}
    columns: dict[str, list] = {"predictions": [], "references": [], "ids": [], "tasks": [], "codecs": []}
    values: dict[str, list[float]] = {name: [] for name in metrics}
    for task in ("cls", "seg", "dpt"):
        config = task
        try:
            ds = datasets.load_dataset(str(dataset_dir), config)
        except ValueError:
            continue  # a build restricted to fewer tasks has no config for this one
        originals = {row["original_id"]: row["feature"] for row in ds["originals"].with_format("numpy")}
        for row in ds["compressed"].with_format("numpy"):
            if row["label"] is None or np.isnan(row["label"]):
                continue
            original = originals[row["original_id"]]
            for name, fn in fns.items():
                values[name].append(float(fn(original, row["feature"])))
            columns["references"].append(float(row["label"]))
            columns["ids"].append(f"{task}/{row['original_id']}")
            columns["tasks"].append(task)
            columns["codecs"].append(str(row["codec"]))
    module = evaluate.load(cfqa_metric.MODULE_PATH)
    return {
        name: module.compute(
            predictions=values[name],
            references=columns["references"],
            reference_ids=columns["ids"],
            tasks=columns["tasks"],
            codecs=columns["codecs"],
        )
        for name in metrics
    }


def print_table(results: dict[str, dict], console: Console) -> None:
    table = Table(
        title="CFQA mini: signed per-original correlation with the task drop (PLCC / SROCC / KROCC)"
    )
    table.add_column("codec")
    table.add_column("task")
    for name in results:
        table.add_column(name, justify="right")
    cells = sorted({c for r in results.values() for c in r["cells"]}, key=lambda c: (c.split("/")[1], c))
    for cell in cells:
        task, codec = cell.split("/")
        table.add_row(
            codec,
            task,
            *(
                " / ".join(f"{results[n]['cells'][cell][s]:+.3f}" for s in ("plcc", "srocc", "krocc"))
                for n in results
            ),
        )
    table.add_row(
        "mean",
        "",
        *(" / ".join(f"{r[s]:+.3f}" for s in ("plcc", "srocc", "krocc")) for r in results.values()),
    )
    console.print(table)


def run_demo(out: Path, workers: int | None = None, console: Console | None = None) -> dict:
    """Build the mini profile into ``out`` (resuming), then load, score and print."""
    from builders.config import BuildConfig
    from builders.pipeline import build

    console = console or Console()
    start = time.perf_counter()
    summary = build(BuildConfig(profile="mini", out=str(out), workers=workers))
    console.rule("load_dataset + evaluate.load('cfqa_metric')")
    t0 = time.perf_counter()
    results = score_with_evaluate(Path(summary["dataset"]))
    summary["stage_seconds"]["demo scoring (datasets + evaluate)"] = time.perf_counter() - t0
    print_table(results, console)
    times = Table(title="Stage times (s)")
    times.add_column("stage")
    times.add_column("seconds", justify="right")
    for stage, seconds in summary["stage_seconds"].items():
        times.add_row(stage, f"{seconds:.1f}")
    times.add_row("total", f"{time.perf_counter() - start:.1f}")
    console.print(times)
    quality = summary.get("mini_quality") or {}
    if quality:
        console.print("mini backbone + heads, held-out quality:", quality)
    console.print(
        f"mean per-original SROCC(BPFP, label) over cells: {summary['mean_rate_sanity_srocc']:+.3f} "
        "(negative: labels worsen as the rate falls)"
    )
    console.print(f"dataset: {summary['dataset']}  (datasets.load_dataset('{summary['dataset']}', 'seg'))")
    console.print(f"report with table and plots: {summary['report']}")
    return summary
