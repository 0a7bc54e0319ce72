"""Importer of the official CFQA release tree into a CFQA dataset folder (`cfqa import`).

Release layout (spec, "Release layout"; the list/log locations are our documented defaults, each overridable):

```
RELEASE_DIR/org_feat/{task}/<name>.npy                               float32 (N, C, T, D)
RELEASE_DIR/compressed_feat/{codec}/{task}/QP{qp}/<name>.npy         HM, VTM
RELEASE_DIR/compressed_feat/{codec}/{task}/lambda{lam}_.../<name>.npy hyperprior
RELEASE_DIR/lists/{task}.txt               original names, first token per line (extension cut at first '.')
RELEASE_DIR/labels/{codec}/{task}.txt      `<name>[.ext] <label> <mse> <cosine> <cka>`, the k-th line of a
                                           feature = its k-th rate point in ascending codec parameter order
```
Everything is validated before anything is kept: the structural checks (names, folders, .npy headers, logs)
run first and refuse early; the values (NaN/inf) are checked while streaming into the writer's hidden temp
folder, which is discarded on any error, so a failed import leaves nothing behind.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .schema import NAME_PATTERN, TASKS
from .writer import DEFAULT_MAX_SHARD_BYTES, write_dataset

DEFAULT_LISTS = "lists/{task}.txt"
DEFAULT_LABELS = "labels/{codec}/{task}.txt"
DEFAULT_ORIGINAL_RESULTS = "labels/original/{task}.txt"
BITSTREAM_SUFFIXES = (".bin", ".bit", ".str", ".hevc", ".vvc", ".266", ".265")

_QP_RE = re.compile(r"^QP(\d+)$")
_LAMBDA_RE = re.compile(r"^lambda([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:_.*)?$")
# Preprocessing and layers of the reference features (spec, "Size" and model facts), for provenance.
_PREPROCESSING = {
    "cls": {"tta": "Resize 256, CenterCrop 224", "blocks": "last (40)"},
    "seg": {"tta": "flip and crop, 2 crops", "blocks": "last (40)"},
    "dpt": {"tta": "original + horizontal flip", "blocks": "10, 20, 30, 40 (C axis)"},
}
# Originals of cls are all correctly classified at full quality by construction of the release (spec, "Size").
_KNOWN_ORIGINAL_RAW = {"cls": 1.0}


class ReleaseError(ValueError):
    """The release is incomplete or malformed; `report` lists every problem."""

    def __init__(self, report: ImportReport):
        self.report = report
        super().__init__(report.format())


@dataclass
class RatePoint:
    """One rate folder of a (codec, task)."""

    folder: str
    param: float
    param_name: str
    rate_index: int = 0


@dataclass
class ImportReport:
    """Everything the importer found; `errors` name the file (and line) of each problem."""

    release_dir: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    written: Path | None = None
    originals: int = 0
    compressed: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        """Human-readable report."""
        lines = [f"CFQA release {self.release_dir}"]
        for task, info in self.summary.items():
            codecs = (
                ", ".join(f"{c} ({len(p)} rate points)" for c, p in info.get("codecs", {}).items()) or "none"
            )
            lines.append(
                f"  {task}: {info.get('originals', 0)} originals {tuple(info.get('shape', ()))}; {codecs}"
            )
        lines += [f"  {len(self.errors)} error(s)"] + [f"    ERROR {e}" for e in self.errors]
        lines += [f"  {len(self.warnings)} warning(s)"] + [f"    warning {w}" for w in self.warnings]
        if self.written is not None:
            lines.append(
                f"  wrote {self.originals} originals and {self.compressed} compressed rows to {self.written}"
            )
        return "\n".join(lines)


def parse_rate_folder(name: str) -> tuple[str, float] | None:
    """(param_name, value) of a rate folder name (`QP22`, `lambda0.0025_epochs800_...`), None if neither."""
    m = _QP_RE.match(name)
    if m:
        return "qp", float(m[1])
    m = _LAMBDA_RE.match(name)
    if m:
        return "lambda", float(m[1])
    return None


def _stem(name: str) -> str:
    """A feature name without extension: cut at the first '.' (the reference's convention)."""
    return name.split(".", 1)[0]


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy without reading its data; raises ValueError on corrupt or truncated files."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError/UnpicklingError for bad files
        raise ValueError(f"corrupt or truncated .npy ({type(exc).__name__}: {exc})") from None
    return tuple(arr.shape), arr.dtype


class _Release:
    """Structural scan of a release tree, then streaming of validated rows."""

    def __init__(
        self,
        root: Path,
        tasks: Sequence[str] | None,
        codecs: Sequence[str] | None,
        lists: str,
        labels: str,
        original_results: str,
        rate_points: int | None,
        report: ImportReport,
    ):
        self.root, self.report = root, report
        self.lists, self.labels, self.original_results = lists, labels, original_results
        self.rate_points = rate_points
        self.names: dict[str, list[str]] = {}
        self.source_names: dict[tuple[str, str], str] = {}
        self.class_index: dict[tuple[str, str], int] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.rates: dict[tuple[str, str], list[RatePoint]] = {}
        self.log_values: dict[tuple[str, str, str], list[tuple[float, ...]]] = {}
        self.original_raw: dict[tuple[str, str], float] = {}
        self.bad_originals: set[tuple[str, str]] = set()
        self.bad_compressed: set[tuple[str, str, str, str]] = set()
        self.files_orig: dict[str, dict[str, Path]] = {}
        self.files_comp: dict[tuple[str, str, str], dict[str, Path]] = {}
        self.tasks = self._discover_tasks(tasks)
        self.codecs = self._discover_codecs(codecs)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    def error(self, msg: str) -> None:
        self.report.errors.append(msg)

    def _discover_tasks(self, tasks: Sequence[str] | None) -> list[str]:
        org = self.root / "org_feat"
        if not org.is_dir():
            self.error(f"org_feat/: missing (expected org_feat/{{cls,seg,dpt}}/<name>.npy under {self.root})")
            return []
        present = sorted(p.name for p in org.iterdir() if p.is_dir())
        for name in present:
            if name not in TASKS:
                self.report.warnings.append(f"org_feat/{name}/: not a task ({', '.join(TASKS)}), ignored")
        present = [t for t in TASKS if t in present]
        if tasks is None:
            if not present:
                self.error("org_feat/: no task folder (cls, seg, dpt)")
            return present
        for t in tasks:
            if t not in present:
                self.error(f"org_feat/{t}/: missing (task {t} requested)")
        return [t for t in TASKS if t in tasks and t in present]

    def _discover_codecs(self, codecs: Sequence[str] | None) -> list[str]:
        comp = self.root / "compressed_feat"
        present = sorted(p.name for p in comp.iterdir() if p.is_dir()) if comp.is_dir() else []
        if not present and codecs is None:
            self.report.warnings.append("compressed_feat/: no codec folder; importing originals only")
        for name in present:
            if not NAME_PATTERN.match(name):
                self.error(f"compressed_feat/{name}/: codec folder name must match {NAME_PATTERN.pattern}")
        present = [c for c in present if NAME_PATTERN.match(c)]
        if codecs is None:
            return present
        for c in codecs:
            if c not in present:
                self.error(f"compressed_feat/{c}/: missing (codec {c} requested)")
        return [c for c in present if c in codecs]

    # --- structural checks -------------------------------------------------------------------------------
    def scan(self) -> None:
        for task in self.tasks:
            self._scan_list(task)
        # Without its list a task's files cannot be checked (every file would be an "orphan"): skip it.
        unlisted = [t for t in self.tasks if not self.names[t]]
        for task in unlisted:
            self.report.warnings.append(f"task {task}: files not checked (no usable list file)")
        self.tasks = [t for t in self.tasks if self.names[t]]
        for task in self.tasks:
            self._scan_originals(task)
            self._scan_original_results(task)
        self._scan_rates()
        for task in self.tasks:
            for codec in self.codecs:
                if (codec, task) in self.rates:
                    self._scan_compressed(codec, task)
                    self._scan_log(codec, task)
        self._summarise()

    def _scan_list(self, task: str) -> None:
        path = self.root / self.lists.format(task=task)
        names: list[str] = []
        if not path.is_file():
            self.error(f"{self.rel(path)}: missing list file of task {task}")
            self.names[task] = names
            return
        first_line: dict[str, int] = {}
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            name = _stem(tokens[0])
            if name in first_line:
                self.error(
                    f"{self.rel(path)}:{lineno}: duplicate name {name!r} (first on line {first_line[name]})"
                )
                continue
            first_line[name] = lineno
            names.append(name)
            self.source_names[(task, name)] = tokens[0]
            if task == "cls" and len(tokens) > 1:
                try:
                    self.class_index[(task, name)] = int(tokens[-1])
                except ValueError:
                    self.error(f"{self.rel(path)}:{lineno}: last token {tokens[-1]!r} is not a class index")
        if not names:
            self.error(f"{self.rel(path)}: lists no original")
        self.names[task] = names

    def _npy_files(self, folder: Path, task: str) -> dict[str, Path]:
        """Feature files of a folder by name; reports duplicates (same stem) and orphans (not in the list)."""
        files: dict[str, Path] = {}
        listed = set(self.names[task])
        for path in sorted(folder.iterdir()):
            if path.suffix != ".npy" or not path.is_file():
                continue
            name = _stem(path.name)
            if name in files:
                self.error(f"{self.rel(path)}: duplicate feature name {name!r} (also {files[name].name})")
                continue
            if name not in listed:
                self.error(
                    f"{self.rel(path)}: orphan feature {name!r}, not in {self.lists.format(task=task)}"
                )
                continue
            files[name] = path
        return files

    def _scan_originals(self, task: str) -> None:
        folder = self.root / "org_feat" / task
        files = self._npy_files(folder, task)
        headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for name in self.names[task]:
            path = files.get(name)
            if path is None:
                self.error(f"{self.rel(folder / (name + '.npy'))}: missing original")
                self.bad_originals.add((task, name))
                continue
            try:
                headers[name] = _npy_header(path)
            except ValueError as exc:
                self.error(f"{self.rel(path)}: {exc}")
                self.bad_originals.add((task, name))
        shapes = Counter(s for s, d in headers.values() if d == np.float32 and len(s) == 4)
        if shapes:
            self.shapes[task] = shapes.most_common(1)[0][0]
        for name, (shape, dtype) in headers.items():
            path = self.rel(files[name])
            if dtype != np.float32:
                self.error(f"{path}: dtype {dtype}, expected float32")
                self.bad_originals.add((task, name))
            elif len(shape) != 4:
                self.error(f"{path}: shape {shape}, expected 4-D (N, C, T, D)")
                self.bad_originals.add((task, name))
            elif shape != self.shapes[task]:
                self.error(f"{path}: shape {shape} differs from the task's {self.shapes[task]}")
                self.bad_originals.add((task, name))
        self.files_orig[task] = files

    def _scan_original_results(self, task: str) -> None:
        path = self.root / self.original_results.format(task=task)
        if not path.is_file():
            if task in _KNOWN_ORIGINAL_RAW:
                for name in self.names[task]:
                    self.original_raw[(task, name)] = _KNOWN_ORIGINAL_RAW[task]
            return
        listed = set(self.names[task])
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            name = _stem(tokens[0])
            try:
                value = float(tokens[1])
            except (IndexError, ValueError):
                self.error(f"{self.rel(path)}:{lineno}: expected `<name> <value>`, got {line!r}")
                continue
            if name not in listed:
                self.error(f"{self.rel(path)}:{lineno}: names unknown feature {name!r}")
            elif not math.isfinite(value):
                self.error(f"{self.rel(path)}:{lineno}: value {tokens[1]!r} is not finite")
            else:
                self.original_raw[(task, name)] = value

    def _scan_rates(self) -> None:
        for codec in self.codecs:
            for task in self.tasks:
                folder = self.root / "compressed_feat" / codec / task
                if not folder.is_dir():
                    continue
                points = []
                for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
                    parsed = parse_rate_folder(sub.name)
                    if parsed is None:
                        self.error(
                            f"{self.rel(sub)}: not a rate folder (expected QP<n> or lambda<value>_...)"
                        )
                        continue
                    points.append(RatePoint(sub.name, parsed[1], parsed[0]))
                by_param = Counter(p.param for p in points)
                for p in points:
                    if by_param[p.param] > 1:
                        self.error(
                            f"{self.rel(folder / p.folder)}: a second folder for {p.param_name} {p.param:g}"
                        )
                if len({p.param_name for p in points}) > 1:
                    self.error(f"{self.rel(folder)}: mixes QP and lambda rate folders")
                if not points:
                    self.error(f"{self.rel(folder)}: no rate folder")
                    continue
                # Logs list rate points in ascending parameter order; rate_index 0 is the highest rate
                # (smallest QP, largest lambda).
                points.sort(key=lambda p: p.param)
                high_first = points[::-1] if points[0].param_name == "lambda" else points
                for i, p in enumerate(high_first):
                    p.rate_index = i
                self.rates[(codec, task)] = points
            tasks = [t for t in self.tasks if (codec, t) in self.rates]
            if not tasks:
                if (self.root / "compressed_feat" / codec).is_dir():
                    self.report.warnings.append(f"compressed_feat/{codec}/: no folder for the imported tasks")
                continue
            expected = self.rate_points or max(len(self.rates[(codec, t)]) for t in tasks)
            shared = "task_specific" not in codec
            union = sorted({p.param for t in tasks for p in self.rates[(codec, t)]})
            for t in tasks:
                have = self.rates[(codec, t)]
                if len(have) != expected:
                    msg = f"compressed_feat/{codec}/{t}/: {len(have)} rate folders, expected {expected}"
                    missing = sorted(set(union) - {p.param for p in have})
                    if shared and missing:
                        listed = ", ".join(f"{m:g}" for m in missing)
                        msg += f"; missing {have[0].param_name} {listed} (present for other tasks)"
                    self.error(msg)

    def _scan_compressed(self, codec: str, task: str) -> None:
        expected_shape = self.shapes.get(task)
        for point in self.rates[(codec, task)]:
            folder = self.root / "compressed_feat" / codec / task / point.folder
            files = self._npy_files(folder, task)
            for name in self.names[task]:
                key = (codec, task, point.folder, name)
                path = files.get(name)
                if path is None:
                    self.error(f"{self.rel(folder / (name + '.npy'))}: missing compressed feature")
                    self.bad_compressed.add(key)
                    continue
                try:
                    shape, dtype = _npy_header(path)
                except ValueError as exc:
                    self.error(f"{self.rel(path)}: {exc}")
                    self.bad_compressed.add(key)
                    continue
                if dtype != np.float32:
                    self.error(f"{self.rel(path)}: dtype {dtype}, expected float32")
                    self.bad_compressed.add(key)
                elif expected_shape is not None and shape != expected_shape:
                    self.error(
                        f"{self.rel(path)}: shape {shape}, expected {expected_shape} (the originals' shape)"
                    )
                    self.bad_compressed.add(key)
            self.files_comp[(codec, task, point.folder)] = files

    def _scan_log(self, codec: str, task: str) -> None:
        path = self.root / self.labels.format(codec=codec, task=task)
        rates = self.rates[(codec, task)]
        if not path.is_file():
            self.error(f"{self.rel(path)}: missing label log of {codec}/{task}")
            return
        listed = set(self.names[task])
        per_name: dict[str, list[tuple[float, ...]]] = {}
        lines_of: dict[str, list[int]] = {}
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                values = tuple(float(t) for t in tokens[1:5])
            except ValueError:
                values = ()
            if len(values) != 4:
                # The reference evaluation skips such lines; a feature then lacks a line, reported below.
                self.report.warnings.append(
                    f"{self.rel(path)}:{lineno}: not `<name> <label> <mse> <cos> <cka>`, skipped"
                )
                continue
            name = _stem(tokens[0])
            if name not in listed:
                self.error(
                    f"{self.rel(path)}:{lineno}: names unknown feature {name!r} (not in the list of {task})"
                )
                continue
            per_name.setdefault(name, []).append(values)
            lines_of.setdefault(name, []).append(lineno)
        for name in self.names[task]:
            got = per_name.get(name, [])
            if len(got) != len(rates):
                where = f"lines {lines_of[name]}" if got else "no line"
                self.error(
                    f"{self.rel(path)}: feature {name!r} has {len(got)} line(s) ({where}), expected one per "
                    f"rate "
                    f"folder ({len(rates)})"
                )
                continue
            self.log_values[(codec, task, name)] = got

    def _summarise(self) -> None:
        for task in self.tasks:
            self.report.summary[task] = {
                "originals": len(self.names.get(task, [])),
                "shape": self.shapes.get(task, ()),
                "codecs": {
                    c: [f"{p.param_name}={p.param:g}" for p in self.rates[(c, task)]]
                    for c in self.codecs
                    if (c, task) in self.rates
                },
            }

    # --- data pass ---------------------------------------------------------------------------------------
    def _load(self, path: Path) -> np.ndarray | None:
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any read failure is a malformed file, reported by name
            self.error(f"{self.rel(path)}: unreadable ({type(exc).__name__}: {exc})")
            return None
        if not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            self.error(f"{self.rel(path)}: {bad} NaN/inf value(s)")
            return None
        return arr

    def originals(self, partial: bool) -> Iterator[dict[str, Any]]:
        for task in self.tasks:
            for name in self.names[task]:
                if (task, name) in self.bad_originals:
                    continue
                arr = self._load(self.files_orig[task][name])
                if arr is None:
                    self.bad_originals.add((task, name))
                    continue
                if self.report.errors and not partial:
                    continue  # keep checking, but nothing more is kept: the import will be refused
                prov: dict[str, Any] = {
                    "source": "official CFQA release",
                    "backbone": "dinov2_vitg14 (pre-LayerNorm block outputs, cls token kept)",
                    "normalisation": "ImageNet mean/std",
                    **_PREPROCESSING[task],
                    "file": f"org_feat/{task}/{self.files_orig[task][name].name}",
                }
                if (task, name) in self.class_index:
                    prov["class_index"] = self.class_index[(task, name)]
                raw = self.original_raw.get((task, name))
                self.report.originals += 1
                yield {
                    "original_id": name,
                    "task": task,
                    "source_name": self.source_names[(task, name)],
                    "feature": arr,
                    "raw": raw,
                    "provenance": prov,
                }

    def compressed(self, partial: bool) -> Iterator[dict[str, Any]]:
        # Original-major order: all versions of one original are adjacent, which iter_pairs reads fastest.
        for task in self.tasks:
            for name in self.names[task]:
                if (task, name) in self.bad_originals:
                    continue
                raw0 = self.original_raw.get((task, name))
                for codec in self.codecs:
                    for point in self.rates.get((codec, task), []):
                        key = (codec, task, point.folder, name)
                        if key in self.bad_compressed:
                            continue
                        path = self.files_comp[(codec, task, point.folder)][name]
                        arr = self._load(path)
                        if arr is None:
                            self.bad_compressed.add(key)
                            continue
                        if self.report.errors and not partial:
                            continue
                        yield self._compressed_row(codec, task, name, point, path, arr, raw0)
        if self.report.errors and not partial:
            raise ReleaseError(self.report)

    def _compressed_row(
        self,
        codec: str,
        task: str,
        name: str,
        point: RatePoint,
        path: Path,
        arr: np.ndarray,
        raw0: float | None,
    ) -> dict[str, Any]:
        logged = self.log_values.get((codec, task, name))
        raw = label = None
        prov: dict[str, Any] = {
            "source": "official CFQA release",
            "codec": codec,
            "rate_folder": point.folder,
            "file": self.rel(path),
        }
        if logged is not None:
            # The k-th log line of a feature is its k-th rate point in ascending parameter order.
            k = sorted(self.rates[(codec, task)], key=lambda p: p.param).index(point)
            raw, mse, cos, cka = logged[k]
            prov["reference_log"] = {"mse": mse, "cosine": cos, "cka": cka}
            if raw0 is not None:
                label = raw0 - raw if task == "seg" else raw - raw0
        bpfp = None
        for suffix in BITSTREAM_SUFFIXES:
            stream = path.with_suffix(suffix)
            if stream.is_file():
                bpfp = stream.stat().st_size * 8 / arr.size
                prov["bitstream"] = stream.name
                break
        self.report.compressed += 1
        return {
            "id": f"{task}/{codec}/{point.rate_index}/{name}",
            "original_id": name,
            "task": task,
            "codec": codec,
            "rate_index": point.rate_index,
            "codec_param": point.param,
            "codec_param_name": point.param_name,
            "bpfp": bpfp,
            "feature": arr,
            "raw": raw,
            "label": label,
            "provenance": prov,
        }


def _original_results_note(release: _Release, task: str) -> str:
    known = sum((task, n) in release.original_raw for n in release.names[task])
    if known and not (release.root / release.original_results.format(task=task)).is_file():
        return (
            f"{task}: rank {_KNOWN_ORIGINAL_RAW[task]:g} by construction (all originals correctly classified)"
        )
    if known:
        return (
            f"{task}: {known} of {len(release.names[task])} from {release.original_results.format(task=task)}"
        )
    return f"{task}: not in the release (label empty, raw kept)"


def import_release(
    release_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    *,
    tasks: Sequence[str] | None = None,
    codecs: Sequence[str] | None = None,
    lists: str = DEFAULT_LISTS,
    labels: str = DEFAULT_LABELS,
    original_results: str = DEFAULT_ORIGINAL_RESULTS,
    rate_points: int | None = None,
    partial: bool = False,
    notes: Mapping[str, Any] | str | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> ImportReport:
    """Validate the official release tree and write it as a CFQA dataset folder.

    Parameters
    ----------
    release_dir, out:
        The release tree and the dataset folder to write (None: validate only, reading every file).
    tasks, codecs:
        Restrict the import (None = all found). Fewer originals, tasks or codecs than the paper is valid.
    lists, labels, original_results:
        Path patterns relative to `release_dir` (`{task}`, `{codec}` placeholders). `original_results`
        (optional `<name> <value>` lines) gives the originals' own task values, needed for the drop `label`;
        without it cls originals have rank 1 (all correct by construction) and seg/dpt drops stay empty.
    rate_points:
        Required number of rate folders per (codec, task); default: the most any task of the codec has.
    partial:
        Write what is valid despite errors (the card says so) instead of refusing.

    Returns
    -------
    The `ImportReport`. Raises `ReleaseError` (with the full report) when the release has errors and
    `partial` is False; nothing is written then.
    """
    root = Path(release_dir)
    report = ImportReport(root)
    if not root.is_dir():
        report.errors.append(f"{root}: release folder not found")
        raise ReleaseError(report)
    release = _Release(root, tasks, codecs, lists, labels, original_results, rate_points, report)
    release.scan()
    if not release.tasks:
        raise ReleaseError(report)
    if out is None or (report.errors and not partial):
        # Read every value even when the import is already refused, so the report is complete.
        for _ in release.originals(partial):
            pass
        for _ in release.compressed(partial):  # raises ReleaseError at its end on any error
            pass
        return report
    build_notes: dict[str, Any] = {
        "source": "official CFQA release (chansongoal/CFQA_Compressed-Feature-Quality-Assessment), "
        "imported by `cfqa import`",
        "original task results": ", ".join(_original_results_note(release, t) for t in release.tasks),
        "labels": "raw values from the reference evaluation logs; the logs' MSE/cosine/CKA are in provenance",
    }
    if isinstance(notes, str):
        build_notes["notes"] = notes
    elif notes:
        build_notes.update(notes)

    def final_notes() -> dict[str, Any]:
        if report.errors:
            shown = report.errors[:50] + (
                [f"... and {len(report.errors) - 50} more"] if len(report.errors) > 50 else []
            )
            build_notes["excluded (partial import)"] = shown
        return build_notes

    report.written = write_dataset(
        out,
        release.originals(partial),
        release.compressed(partial),
        partial=lambda: bool(report.errors),
        notes=final_notes,
        max_shard_bytes=max_shard_bytes,
    )
    return report
