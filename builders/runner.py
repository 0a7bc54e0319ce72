"""Execution of independent work units: in-process, on a local Dask cluster, or on a remote scheduler.

Stage code never sees this module: a stage is a plain function of one unit. The runner only decides where the
function runs and shows progress. Units carry paths, not large arrays, so nothing heavy crosses the scheduler.
A worker that dies mid-unit leaves no result (writes are atomic), and Dask reruns the unit elsewhere.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Runner:
    """Map unit functions over units with a rich progress bar; records wall time per stage.

    Parameters
    ----------
    scheduler:
        ``None`` for a `distributed.LocalCluster`, or the address of an existing scheduler (``tcp://host:port``).
    workers:
        Worker processes of the local cluster (default: the number of cores). ``0`` runs every unit in this
        process, without Dask (debugging, tests, tiny builds).
    """

    def __init__(
        self, scheduler: str | None = None, workers: int | None = None, console: Console | None = None
    ) -> None:
        self.scheduler = scheduler
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.console = console or Console(stderr=True)
        self.stage_seconds: dict[str, float] = {}
        self._client = None
        self._cluster = None

    def __enter__(self) -> Runner:
        if self.scheduler is not None:
            from distributed import Client

            self._client = Client(self.scheduler)
        elif self.workers > 0:
            import dask
            from distributed import Client, LocalCluster

            # Codecs allocate and free large frame buffers on every call. Dask's default
            # MALLOC_TRIM_THRESHOLD_ (64 KiB) hands them back to the kernel each time, and glibc's mmap
            # threshold maps big ones afresh: page faults and system time took ~25% of the encode stage.
            big = 1 << 30
            dask.config.set(
                {
                    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": big,
                    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": big,
                }
            )
            # One thread per worker process: codecs and torch parallelise badly inside a worker on few cores,
            # and processes isolate x265/compressai global state.
            self._cluster = LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            self._client = Client(self._cluster)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    @property
    def distributed(self) -> bool:
        return self._client is not None

    def map(
        self,
        fn: Callable[[Any], Any],
        units: Sequence[Any],
        description: str,
        in_process: bool = False,
        tasks_per_worker: int = 25,
    ) -> list[Any]:
        """Run ``fn(unit)`` for every unit; returns results in the order of ``units``.

        ``in_process`` keeps the stage in this process (e.g. a model held in memory or on this machine's GPU).
        On a cluster, consecutive units are sent in chunks (about ``tasks_per_worker`` chunks per worker):
        thousands of millisecond-sized units as single tasks would keep this process's scheduler and
        result traffic busier than the workers. Each unit still writes its own result atomically.
        """
        start = time.perf_counter()
        results: list[Any] = [None] * len(units)
        with self._progress() as progress:
            bar = progress.add_task(description, total=len(units))
            if self._client is None or in_process or not units:
                for i, unit in enumerate(units):
                    results[i] = fn(unit)
                    progress.advance(bar)
            else:
                from distributed import as_completed

                workers = max(1, len(self._client.scheduler_info(n_workers=-1)["workers"]))
                size = max(1, math.ceil(len(units) / (workers * tasks_per_worker)))
                chunks = [list(units[i : i + size]) for i in range(0, len(units), size)]
                futures = self._client.map(_run_chunk, [fn] * len(chunks), chunks, pure=False, retries=2)
                offset = {f.key: i * size for i, f in enumerate(futures)}
                for future, chunk_results in as_completed(futures, with_results=True):
                    first = offset[future.key]
                    results[first : first + len(chunk_results)] = chunk_results
                    progress.advance(bar, len(chunk_results))
        self.stage_seconds[description] = (
            self.stage_seconds.get(description, 0.0) + time.perf_counter() - start
        )
        return results

    def timed(self, description: str) -> _Timer:
        """Context manager that records an in-process stage's wall time under ``description``."""
        return _Timer(self, description)

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )


def _run_chunk(fn: Callable[[Any], Any], units: list[Any]) -> list[Any]:
    return [fn(unit) for unit in units]


class _Timer:
    def __init__(self, runner: Runner, description: str) -> None:
        self.runner, self.description = runner, description

    def __enter__(self) -> None:
        self.runner.console.log(f"[bold]{self.description}[/bold] ...")
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self._start
        self.runner.stage_seconds[self.description] = (
            self.runner.stage_seconds.get(self.description, 0.0) + seconds
        )
        if exc[0] is None:
            self.runner.console.log(f"{self.description}: {seconds:.1f} s")
