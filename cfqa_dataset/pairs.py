"""(original, compressed, label, meta) pairs: the interface between the dataset and `cfqa_metric.score`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import datasets
import numpy as np
import pyarrow as pa

from .schema import FEATURE, TASKS


class Pair(NamedTuple):
    """One compressed feature with its original.

    `original` and `compressed` are float32 (N, C, T, D) arrays; `label` is the drop vs the original
    (None when unknown); `meta` is the compressed row without `feature` (id, original_id, task, codec,
    rate_index, codec_param, codec_param_name, bpfp, raw, label, raw_ce, label_ce, provenance, ...).
    """

    original: np.ndarray
    compressed: np.ndarray
    label: float | None
    meta: dict[str, Any]


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _load_split_sources(
    path: str, tasks: list[str] | None, codecs: list[str] | None, load_kwargs: Mapping[str, Any]
) -> Iterator[tuple[datasets.Dataset, list[datasets.Dataset]]]:
    """(originals, [compressed...]) per task from a folder or a Hub repo; loads only the selected codecs."""
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "README.md")):
        raise ValueError(f"{path}: no dataset card (README.md); not a CFQA dataset folder")
    configs = datasets.get_dataset_config_names(
        path, **{k: v for k, v in load_kwargs.items() if k != "cache_dir"}
    )
    task_configs = [c for c in configs if "-" not in c]
    wanted = task_configs if tasks is None else tasks
    unknown = sorted(set(wanted) - set(task_configs))
    if unknown:
        raise ValueError(f"{path}: no config for task(s) {unknown}; available configs: {configs}")
    found_codec = False
    for task in wanted:
        if codecs is None:
            dd = datasets.load_dataset(path, task, **load_kwargs)
            found_codec = True
            yield dd["originals"], [dd["compressed"]] if "compressed" in dd else []
            continue
        loaded = [
            datasets.load_dataset(path, f"{task}-{codec}", **load_kwargs)
            for codec in codecs
            if f"{task}-{codec}" in configs
        ]
        if loaded:
            found_codec = True
            yield loaded[0]["originals"], [dd["compressed"] for dd in loaded]
    if not found_codec:
        raise ValueError(
            f"{path}: none of the codecs {codecs} exists for task(s) {wanted}; configs: {configs}"
        )


def _dict_sources(data: Mapping[str, Any]) -> Iterator[tuple[datasets.Dataset, list[datasets.Dataset]]]:
    """(originals, [compressed]) from a DatasetDict or a mapping of them ({task: DatasetDict})."""
    if "originals" in data:
        comp = data.get("compressed")
        for name, ds in (("originals", data["originals"]), ("compressed", comp)):
            if ds is not None and not isinstance(ds, datasets.Dataset):
                raise TypeError(
                    f"split {name!r} is a {type(ds).__name__}; iter_pairs needs random access (a map-style "
                    "datasets.Dataset), not a streaming IterableDataset"
                )
        yield data["originals"], [] if comp is None else [comp]
        return
    for key, value in data.items():
        if not isinstance(value, Mapping):
            raise TypeError(
                f"data[{key!r}] is a {type(value).__name__}, expected a DatasetDict with 'originals'"
            )
        yield from _dict_sources(value)


def iter_pairs(
    data: str | os.PathLike[str] | Mapping[str, Any],
    tasks: str | Iterable[str] | None = None,
    codecs: str | Iterable[str] | None = None,
    *,
    load_kwargs: Mapping[str, Any] | None = None,
) -> Iterator[Pair]:
    """Yield the (original, compressed, label, meta) pairs of a task/codec selection, grouped by original.

    Parameters
    ----------
    data:
        A dataset folder, a Hub repo id, a loaded `DatasetDict` (splits `originals`, `compressed`) or a
        mapping of those (e.g. `{"cls": load_dataset(path, "cls"), ...}`).
    tasks, codecs:
        Selection (None = all). From a folder or repo, only the selected codecs' configs are loaded; they
        are prepared once into the `datasets` cache (uncompressed Arrow, memory-mapped), as load_dataset does.
    load_kwargs:
        Extra arguments for `datasets.load_dataset` (e.g. `cache_dir`, `revision`).

    Yields
    ------
    `Pair`s, originals in dataset order; all compressed versions of one original are consecutive (in storage
    order) and share the SAME `original` array object, so metrics can cache per-original work. The arrays
    are read-only zero-copy views (`np.array(x)` for a writable copy).

    Examples
    --------
    >>> for pair in iter_pairs("cfqa", tasks="cls", codecs=["hm"]):  # doctest: +SKIP
    ...     score = cosine(pair.original, pair.compressed)
    """
    tasks_l, codecs_l = _as_list(tasks), _as_list(codecs)
    for t in tasks_l or []:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r}; tasks are {TASKS}")
    if isinstance(data, str | os.PathLike):
        sources = _load_split_sources(os.fspath(data), tasks_l, codecs_l, dict(load_kwargs or {}))
    elif isinstance(data, Mapping):
        sources = _dict_sources(data)
    else:
        raise TypeError(f"data must be a path, a Hub repo id or a DatasetDict, got {type(data).__name__}")
    for originals, compressed in sources:
        yield from _pairs_of(originals, compressed, tasks_l, codecs_l)


def _pairs_of(
    originals: datasets.Dataset,
    compressed: list[datasets.Dataset],
    tasks: list[str] | None,
    codecs: list[str] | None,
) -> Iterator[Pair]:
    index = {}
    for i, (oid, task) in enumerate(zip(originals["original_id"], originals["task"], strict=True)):
        if tasks is None or task in tasks:
            index[(task, oid)] = i
    groups: dict[tuple[str, str], list[tuple[int, int, dict[str, Any]]]] = {}
    for d, ds in enumerate(compressed):
        metas = ds.select_columns([c for c in ds.column_names if c != FEATURE]).to_list()
        for j, meta in enumerate(metas):
            if (tasks is not None and meta["task"] not in tasks) or (
                codecs is not None and meta["codec"] not in codecs
            ):
                continue
            key = (meta["task"], meta["original_id"])
            if key not in index:
                raise ValueError(
                    f"compressed row {j} (id={meta.get('id')!r}) refers to original {key[1]!r} "
                    f"of task {key[0]!r}, "
                    "which is not in the originals split"
                )
            groups.setdefault(key, []).append((d, j, meta))
    read_original = _feature_reader(originals)
    readers = [_feature_reader(ds) for ds in compressed]
    for key, i in index.items():
        rows = groups.get(key)
        if not rows:
            continue
        original = read_original(i)
        for d, j, meta in rows:
            yield Pair(original, readers[d](j), meta["label"], meta)


def _feature_reader(ds: datasets.Dataset) -> Callable[[int], np.ndarray]:
    """Row -> float32 (N, C, T, D) read-only view of the (memory-mapped) Arrow data, without copies.

    The `datasets` numpy formatter costs ~3x a plain np.load per row (schema work and a stacking copy);
    flattening the Arrow list storage gives a zero-copy view instead. Read-only also protects the original
    array shared by a whole group from in-place edits by a metric.
    """
    feat = ds.features[FEATURE]
    if not isinstance(feat, datasets.Array4D) or feat.dtype != "float32":
        raise ValueError(f"column {FEATURE!r} is {feat}, expected Array4D float32")
    shape = tuple(feat.shape)
    # A dataset with an indices mapping (after select/shuffle) goes through the public formatter instead.
    if getattr(ds, "_indices", None) is not None:
        arrow = ds.with_format("arrow", columns=[FEATURE])
        return lambda i: _to_numpy(arrow[i][FEATURE], shape)
    column = ds.data.column(FEATURE)
    starts = np.cumsum([0] + [len(c) for c in column.chunks])

    def read(i: int) -> np.ndarray:
        c = int(np.searchsorted(starts, i, side="right")) - 1
        return _to_numpy(column.chunk(c).slice(i - starts[c], 1), shape)

    return read


def _to_numpy(arr: pa.Array | pa.ChunkedArray, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    for _ in shape:
        arr = arr.flatten()
    return arr.to_numpy(zero_copy_only=True).reshape(shape)
