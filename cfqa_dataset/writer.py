"""Streaming, atomic, deterministic Parquet writer of a CFQA dataset folder."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import card, layout, manifest
from .layout import ShardKey
from .schema import (
    COLUMNS,
    COMPRESSED_OPTIONAL,
    COMPRESSED_REQUIRED,
    FEATURE,
    NULLABLE_FLOATS,
    ORIGINAL_OPTIONAL,
    ORIGINAL_REQUIRED,
    TASKS,
    arrow_schema,
    check_name,
    features_for,
)

DEFAULT_MAX_SHARD_BYTES = 500 * 1024**2
DEFAULT_ROW_GROUP_BYTES = 64 * 1024**2
# Upper bound on feature bytes held in all row-group buffers together (rows of many families may interleave).
DEFAULT_MAX_BUFFERED_BYTES = 512 * 1024**2
FORMAT_VERSION = "cfqa-dataset/1"

# Parquet leaf of the nested (N, C, T, D) list column.
_FEATURE_LEAF = f"{FEATURE}.list.element.list.element.list.element.list.element"
# Footer bytes per column chunk (statistics are off); measured ~80-110 with pyarrow 15-26.
_CHUNK_META_BYTES = 160
_STRING_COLUMNS = ["id", "original_id", "task", "source_name", "codec", "codec_param_name", "provenance"]


def _write_options(split: str) -> dict[str, Any]:
    """Parquet encodings per split.

    Decoded (compressed) features take at most ~1024 distinct values per task/layer, so dictionary encoding
    stores each value as a small bit-packed index (the measured shard is ~0.15-0.35x of float32 .npy).
    Originals are full-entropy float32: byte-stream-split groups the exponent bytes so zstd can squeeze them.
    """
    opts: dict[str, Any] = {"compression": "zstd", "compression_level": 1, "write_statistics": False}
    if split == "originals":
        opts["use_dictionary"] = _STRING_COLUMNS
        opts["use_byte_stream_split"] = [_FEATURE_LEAF]
    else:
        opts["use_dictionary"] = True
    return opts


def _nested_feature_array(features: list[np.ndarray]) -> pa.Array:
    """(B, N, C, T, D) float32 -> list<list<list<list<float>>>> without per-element Python work."""
    stacked = np.stack(features)
    if stacked.size >= 2**31:
        # `datasets` declares Array4D storage with 32-bit list offsets.
        raise ValueError(f"a row group of {stacked.size} values exceeds 2**31; lower row_group_bytes")
    values = pa.array(stacked.reshape(-1), type=pa.float32())
    arr: pa.Array = values
    count = stacked.size
    for dim in reversed(stacked.shape[1:]):
        count //= dim
        offsets = pa.array(np.arange(0, (count + 1) * dim, dim, dtype=np.int32))
        arr = pa.ListArray.from_arrays(offsets, arr)
    return arr


class _ShardStream:
    """Row-group buffer and size-bounded shard rotation of one (task, split, codec) family."""

    def __init__(
        self, root: Path, key: ShardKey, schema: pa.Schema, max_shard_bytes: int, row_group_bytes: int
    ):
        self.root, self.key, self.schema = root, key, schema
        self.max_shard_bytes, self.row_group_bytes = max_shard_bytes, row_group_bytes
        self.rows: list[dict[str, Any]] = []
        self.buffered = 0
        self.parts: list[Path] = []
        self._sink: pa.OSFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._written = 0
        # Observed on-disk / in-memory ratio; starts pessimistic so the first shards never overshoot.
        self._ratio = 1.0
        self._row_groups = 0

    def _footer_bytes(self, row_groups: int) -> int:
        """Upper estimate of the Parquet footer (schema + metadata per column chunk), written at close."""
        schema_bytes = 2 * len(self.schema.metadata[b"huggingface"]) + 2048
        return schema_bytes + row_groups * len(self.schema) * _CHUNK_META_BYTES

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.buffered += row[FEATURE].nbytes
        if self.buffered >= self.row_group_bytes:
            self.flush()

    def _open_part(self) -> None:
        path = (
            self.root
            / layout.DATA_DIR
            / self.key.task
            / f".part-{self.key.split}-{self.key.codec}-{len(self.parts):05d}"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pq.ParquetWriter(self._sink, self.schema, **_write_options(self.key.split))
        self._written = 0
        self._row_groups = 0
        self.parts.append(path)

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def flush(self) -> None:
        if not self.rows:
            return
        predicted = self.buffered * self._ratio + self._footer_bytes(self._row_groups + 1)
        if self._writer is not None and self._row_groups and self._written + predicted > self.max_shard_bytes:
            self._close_part()
        if self._writer is None:
            self._open_part()
        columns = {name: [r[name] for r in self.rows] for name in COLUMNS if name != FEATURE}
        arrays = [
            _nested_feature_array([r[FEATURE] for r in self.rows])
            if name == FEATURE
            else pa.array(columns[name], type=self.schema.field(name).type)
            for name in COLUMNS
        ]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        before = self._written
        self._writer.write_table(table, row_group_size=len(self.rows))
        self._written = self._sink.tell()
        self._row_groups += 1
        self._ratio = max((self._written - before) / max(self.buffered, 1), 1e-3)
        self.rows, self.buffered = [], 0

    def close(self) -> list[Path]:
        self.flush()
        self._close_part()
        return self.parts


def _finite_float(value: Any, column: str, where: str) -> float | None:
    if value is None:
        return None
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{where}: {column}={value!r} is not finite (use None for unknown)")
    return out


def _provenance(value: Any, where: str) -> str:
    if value is None:
        return "{}"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: provenance is not valid JSON ({exc})") from None
        return value
    raise ValueError(f"{where}: provenance must be a dict or a JSON string, got {type(value).__name__}")


def _check_feature(value: Any, shape: tuple[int, ...] | None, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{where}: feature must be a numpy array, got {type(value).__name__}")
    if value.dtype != np.float32:
        raise ValueError(
            f"{where}: feature dtype {value.dtype}, expected float32 (cast upstream: no silent rounding)"
        )
    if value.ndim != 4:
        raise ValueError(f"{where}: feature shape {value.shape}, expected 4-D (N, C, T, D)")
    if shape is not None and value.shape != shape:
        raise ValueError(f"{where}: feature shape {value.shape}, expected {shape} (the task's originals)")
    if not np.isfinite(value).all():
        raise ValueError(f"{where}: feature contains NaN or inf")
    return np.ascontiguousarray(value)


def _check_keys(
    row: Mapping[str, Any], required: frozenset[str], optional: frozenset[str], where: str
) -> None:
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: row must be a dict, got {type(row).__name__}")
    missing = sorted(required - row.keys())
    unknown = sorted(row.keys() - required - optional)
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}")
    if unknown:
        raise ValueError(f"{where}: unknown column(s) {unknown}; allowed: {sorted(required | optional)}")


class _DatasetWriter:
    """Consumes the originals, then the compressed rows, and collects the facts the card is built from."""

    def __init__(self, root: Path, max_shard_bytes: int, row_group_bytes: int, max_buffered_bytes: int):
        self.root = root
        self.max_shard_bytes, self.row_group_bytes = max_shard_bytes, row_group_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.streams: dict[ShardKey, _ShardStream] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.originals: dict[tuple[str, str], dict[str, Any]] = {}
        self.compressed_ids: set[str] = set()
        self.rate_keys: set[tuple[str, str, str, int]] = set()
        self.tasks: dict[str, dict[str, Any]] = {}

    def _stream(self, key: ShardKey) -> _ShardStream:
        if key not in self.streams:
            schema = arrow_schema(features_for(self.shapes[key.task]))
            self.streams[key] = _ShardStream(
                self.root, key, schema, self.max_shard_bytes, self.row_group_bytes
            )
        return self.streams[key]

    def _add(self, key: ShardKey, row: dict[str, Any]) -> None:
        self._stream(key).add(row)
        total = sum(s.buffered for s in self.streams.values())
        if total > self.max_buffered_bytes:
            # Deterministic: depends only on the row sequence, so re-runs give the same row groups.
            max(self.streams.values(), key=lambda s: (s.buffered, s.key)).flush()

    def add_original(self, index: int, row: Mapping[str, Any]) -> None:
        where = f"originals row {index}"
        _check_keys(row, ORIGINAL_REQUIRED, ORIGINAL_OPTIONAL, where)
        task = row["task"]
        if task not in TASKS:
            raise ValueError(f"{where}: task {task!r} not in {TASKS}")
        oid = row["original_id"]
        where = f"originals row {index} (original_id={oid!r}, task={task})"
        if not isinstance(oid, str) or not oid:
            raise ValueError(f"{where}: original_id must be a non-empty string")
        if (task, oid) in self.originals:
            raise ValueError(f"{where}: duplicate original_id")
        feature = _check_feature(row[FEATURE], self.shapes.get(task), where)
        self.shapes.setdefault(task, feature.shape)
        raw = _finite_float(row.get("raw"), "raw", where)
        raw_ce = _finite_float(row.get("raw_ce"), "raw_ce", where)
        out = {name: None for name in COLUMNS}
        out.update(
            id=oid,
            original_id=oid,
            task=task,
            source_name=str(row["source_name"]),
            raw=raw,
            raw_ce=raw_ce,
            # The drop of an original against itself: 0 where its task value is known.
            label=None if raw is None else 0.0,
            label_ce=None if raw_ce is None else 0.0,
            provenance=_provenance(row.get("provenance"), where),
            feature=feature,
        )
        self.originals[(task, oid)] = {"source_name": out["source_name"]}
        info = self.tasks.setdefault(
            task,
            {
                "shape": list(feature.shape),
                "originals": 0,
                "originals_raw": 0,
                "codecs": {},
                "provenance": json.loads(out["provenance"]),
            },
        )
        info["originals"] += 1
        info["originals_raw"] += raw is not None
        self._add(ShardKey(task, "originals", None), out)

    def add_compressed(self, index: int, row: Mapping[str, Any]) -> None:
        where = f"compressed row {index}"
        _check_keys(row, COMPRESSED_REQUIRED, COMPRESSED_OPTIONAL, where)
        task, oid, cid = row["task"], row["original_id"], row["id"]
        where = f"compressed row {index} (id={cid!r})"
        if (task, oid) not in self.originals:
            raise ValueError(f"{where}: original_id {oid!r} of task {task!r} is not among the originals")
        if not isinstance(cid, str) or not cid:
            raise ValueError(f"{where}: id must be a non-empty string")
        if cid in self.compressed_ids:
            raise ValueError(f"{where}: duplicate id")
        try:
            codec = check_name("codec", row["codec"])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        rate_index = row["rate_index"]
        if isinstance(rate_index, bool) or not isinstance(rate_index, int | np.integer) or rate_index < 0:
            raise ValueError(f"{where}: rate_index must be an int >= 0, got {rate_index!r}")
        rate_index = int(rate_index)
        if (task, oid, codec, rate_index) in self.rate_keys:
            raise ValueError(
                f"{where}: a second row for original {oid!r}, codec {codec}, rate_index {rate_index}"
            )
        param = _finite_float(row["codec_param"], "codec_param", where)
        if param is None:
            raise ValueError(f"{where}: codec_param is required")
        param_name = str(row["codec_param_name"])
        feature = _check_feature(row[FEATURE], self.shapes[task], where)
        values = {c: _finite_float(row.get(c), c, where) for c in NULLABLE_FLOATS}
        out = {name: None for name in COLUMNS}
        out.update(
            values,
            id=cid,
            original_id=oid,
            task=task,
            source_name=self.originals[(task, oid)]["source_name"],
            codec=codec,
            rate_index=rate_index,
            codec_param=param,
            codec_param_name=param_name,
            provenance=_provenance(row.get("provenance"), where),
            feature=feature,
        )
        stats = self.tasks[task]["codecs"].setdefault(
            codec, {"rows": 0, "raw": 0, "label": 0, "label_ce": 0, "bpfp": 0, "rate_points": {}}
        )
        point = stats["rate_points"].setdefault(
            str(rate_index),
            {"codec_param": param, "codec_param_name": param_name, "rows": 0, "bpfp_sum": 0.0},
        )
        if point["codec_param"] != param or point["codec_param_name"] != param_name:
            raise ValueError(
                f"{where}: {task}/{codec} rate_index {rate_index} has {param_name}={param}, "
                f"but earlier rows have "
                f"{point['codec_param_name']}={point['codec_param']}"
            )
        point["rows"] += 1
        if values["bpfp"] is not None:
            point["bpfp_sum"] += values["bpfp"]
        stats["rows"] += 1
        for c in ("raw", "label", "label_ce", "bpfp"):
            stats[c] += values[c] is not None
        self.compressed_ids.add(cid)
        self.rate_keys.add((task, oid, codec, rate_index))
        self._add(ShardKey(task, "compressed", codec), out)

    def finish(self) -> None:
        """Close all shards and give them their final `-of-` names."""
        for key in sorted(self.streams):
            parts = self.streams[key].close()
            for i, part in enumerate(parts):
                final = self.root / layout.shard_name(key, i, len(parts))
                os.replace(part, final)


def _is_replaceable(out: Path) -> bool:
    """Only an empty folder or a previous CFQA dataset folder may be replaced (never an arbitrary folder)."""
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    return (out / layout.META).is_file() or not any(out.iterdir())


def _clean_stale(out: Path) -> None:
    """Remove temp folders of earlier killed writes of the same target (their pid no longer runs)."""
    for stale in out.parent.glob(f".{out.name}.writing-*"):
        try:
            pid = int(stale.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:
            pass


def write_dataset(
    out: str | os.PathLike[str],
    originals: Iterable[Mapping[str, Any]],
    compressed: Iterable[Mapping[str, Any]],
    *,
    partial: bool | Callable[[], bool] = False,
    notes: Mapping[str, Any] | str | Callable[[], Mapping[str, Any] | str | None] | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    overwrite: bool = True,
) -> Path:
    """Write a CFQA dataset folder (Parquet shards, card, manifest) from streamed rows.

    Parameters
    ----------
    out:
        Target folder. Written as a hidden temp folder beside it and renamed at the end, so a half-written
        dataset is never loadable. An existing CFQA dataset folder (or an empty folder) is replaced when
        `overwrite`; any other existing path is refused.
    originals, compressed:
        Row dicts keyed by the schema columns (see `cfqa_dataset.schema`), `feature` a float32 (N, C, T, D)
        array. `originals` is consumed completely before `compressed` (compressed rows join their original).
        Rows may mix tasks and codecs; they are never all held in memory.
    partial:
        The card states that the dataset is partial (e.g. an import with missing parts).
    notes:
        Free text or a mapping rendered in the card's "Build notes" section (profile, backbone, codec ladder).
        `partial` and `notes` may be zero-argument callables, evaluated after all rows were consumed (an
        importer learns what it skipped only while streaming).
    max_shard_bytes, row_group_bytes, max_buffered_bytes:
        Shard size bound, target in-memory size of one Parquet row group, and bound of all buffered rows.

    Returns
    -------
    The final dataset folder. The same rows in the same order give byte-identical files.
    """
    out = Path(out)
    if max_shard_bytes <= 0 or row_group_bytes <= 0:
        raise ValueError("max_shard_bytes and row_group_bytes must be positive")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True to replace a CFQA dataset folder)")
    if not _is_replaceable(out):
        raise FileExistsError(
            f"{out} exists and is not a CFQA dataset folder (no {layout.META}); refusing to replace it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    tmp = out.parent / f".{out.name}.writing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        writer = _DatasetWriter(tmp, max_shard_bytes, row_group_bytes, max_buffered_bytes)
        for i, row in enumerate(originals):
            writer.add_original(i, row)
        if not writer.originals:
            raise ValueError("no original rows: a CFQA dataset needs at least one original")
        for i, row in enumerate(compressed):
            writer.add_compressed(i, row)
        writer.finish()
        if callable(partial):
            partial = partial()
        if callable(notes):
            notes = notes()
        meta = {
            "format": FORMAT_VERSION,
            "partial": bool(partial),
            "notes": notes if notes is None or isinstance(notes, str) else dict(notes),
            "tasks": {t: writer.tasks[t] for t in TASKS if t in writer.tasks},
        }
        (tmp / layout.META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        card.write_card(tmp)
        manifest.write_manifest(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    return out
