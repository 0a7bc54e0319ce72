"""``score``: run candidate metrics over every compressed feature of a CFQA dataset and correlate them."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cfqa_metric import baselines
from cfqa_metric.protocol import correlate
from cfqa_metric.registry import MetricFn, MetricSpec, resolve

__all__ = ["metric_values", "score"]

MetricLike = str | MetricSpec | MetricFn


def _specs(metric: MetricLike | Sequence[MetricLike]) -> list[MetricSpec]:
    items = list(metric) if isinstance(metric, list | tuple) else [metric]
    if not items:
        raise ValueError("no metric given")
    specs = [resolve(m) for m in items]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"metric names must be unique, got {dupes} more than once")
    return specs


def _pairs(dataset: Any, tasks: Sequence[str] | None, codecs: Sequence[str] | None) -> Iterable[Any]:
    """A path, Hub repo id or DatasetDict goes through cfqa_dataset; anything else is an iterable of pairs."""
    if isinstance(dataset, str | os.PathLike) or isinstance(dataset, Mapping):
        from cfqa_dataset import iter_pairs  # lazy: the dataset package is only needed for stored data

        return iter_pairs(dataset, tasks=tasks, codecs=codecs)
    task_set = set(tasks) if tasks else None
    codec_set = set(codecs) if codecs else None
    return (
        p
        for p in dataset
        if (task_set is None or p.meta.get("task") in task_set)
        and (codec_set is None or p.meta.get("codec") in codec_set)
    )


def _label(pair: Any, label: str) -> float:
    value = (
        pair.label if label == "label" and getattr(pair, "label", None) is not None else pair.meta.get(label)
    )
    if value is None:
        return math.nan
    return float(value)


def metric_values(
    metric: MetricLike | Sequence[MetricLike],
    dataset: Any,
    *,
    tasks: Sequence[str] | None = None,
    codecs: Sequence[str] | None = None,
    label: str = "label",
    progress: Callable[[int], None] | None = None,
    extra_labels: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per compressed feature: ``original_id, task, codec, rate_index, bpfp, label`` and a column
    per metric. Rows whose label is missing are kept with NaN (``score`` drops them). ``progress`` is
    called with the number of pairs done after each pair. ``extra_labels`` adds a column per further meta
    key (e.g. ``"label_ce"``), NaN where a row lacks it, so one pass serves several labels.

    ``dataset`` is an iterable of pairs (``.original``, ``.compressed``, ``.label``, ``.meta`` with ``task``,
    ``codec``, ``original_id``...), or a dataset folder / Hub repo id / ``DatasetDict`` read with
    ``cfqa_dataset.iter_pairs``. Pairs of one original come together and share the original array, so
    per-original work (Gram matrices, normalised tokens) is done once per original.
    """
    specs = _specs(metric)
    columns = ("original_id", "task", "codec", "rate_index", "bpfp", "label", *extra_labels)
    rows: dict[str, list] = {k: [] for k in columns}
    values: dict[str, list[float]] = {s.name: [] for s in specs}
    try:
        for i, pair in enumerate(_pairs(dataset, tasks, codecs)):
            meta = pair.meta
            missing = [k for k in ("original_id", "task", "codec") if k not in meta]
            if missing:
                raise ValueError(f"pair {i}: meta lacks {missing} (has {sorted(meta)})")
            for spec in specs:
                v = float(spec.fn(pair.original, pair.compressed))
                if not math.isfinite(v):
                    raise ValueError(
                        f"metric {spec.name!r} returned {v} for original {meta['original_id']!r}, "
                        f"task {meta['task']!r}, codec {meta['codec']!r}, "
                        f"rate_index {meta.get('rate_index')!r}"
                    )
                values[spec.name].append(v)
            rows["original_id"].append(meta["original_id"])
            rows["task"].append(meta["task"])
            rows["codec"].append(meta["codec"])
            rows["rate_index"].append(meta.get("rate_index"))
            rows["bpfp"].append(meta.get("bpfp"))
            rows["label"].append(_label(pair, label))
            for extra in extra_labels:
                rows[extra].append(_label(pair, extra))
            if progress is not None:
                progress(i + 1)
    finally:
        baselines.clear_caches()
    return pd.DataFrame({**rows, **values})


def score(
    metric: MetricLike | Sequence[MetricLike],
    dataset: Any,
    *,
    tasks: Sequence[str] | None = None,
    codecs: Sequence[str] | None = None,
    label: str = "label",
    protocol: str = "per_reference",
    fit: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    magnitude: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score candidate metric(s) on a CFQA dataset: the correlation of each with the task-drop labels.

    Parameters
    ----------
    metric : a registered name (``"cosine"``), a :class:`MetricSpec`, a callable ``(original, compressed) ->
        float``, or a list of them.
    dataset : pairs or stored data, see :func:`metric_values`.
    tasks, codecs : keep only these cells.
    label : the column correlated against: ``"label"`` (the drop) or another meta key, e.g. ``"label_ce"``
        (the continuous cls companion). Rows with a missing label are skipped with a warning.
    protocol, fit, bootstrap, seed, confidence, magnitude : see :func:`cfqa_metric.correlate`; ``magnitude``
        uses each metric's registered direction.
    progress : called with the number of pairs scored so far.

    Returns
    -------
    For one metric, the :func:`cfqa_metric.correlate` result; for a list, ``{metric name: result}``.
    """
    specs = _specs(metric)
    table = metric_values(specs, dataset, tasks=tasks, codecs=codecs, label=label, progress=progress)
    if table.empty:
        raise ValueError(f"no pairs to score (tasks={tasks}, codecs={codecs})")
    missing = table["label"].isna()
    if missing.all():
        raise ValueError(f"every row lacks the label {label!r}; nothing to correlate")
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} of {len(table)} rows have no {label!r} and are skipped", stacklevel=2
        )
        table = table[~missing]
    results = {}
    for spec in specs:
        if magnitude and spec.lower_better is None:
            raise ValueError(f"metric {spec.name!r} has no registered direction; magnitude mode needs one")
        results[spec.name] = correlate(
            table[spec.name].to_numpy(np.float64),
            table["label"].to_numpy(np.float64),
            table["original_id"].to_numpy(object),
            table["task"].to_numpy(object),
            table["codec"].to_numpy(object),
            protocol=protocol,
            fit=fit,
            bootstrap=bootstrap,
            seed=seed,
            confidence=confidence,
            magnitude=magnitude,
            lower_better=spec.lower_better,
        )
    if isinstance(metric, list | tuple):
        return results
    return results[specs[0].name]
