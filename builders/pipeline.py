"""`cfqa build`: originals -> codecs -> encode + decode -> labels -> dataset -> scores -> report.

This module is the only place that knows about caching, Dask and progress. Stage code (feature extraction,
codecs, heads, the dataset writer, the metrics) is called with explicit inputs and returns explicit outputs.

Output folder layout::

    DIR/build_config.json   the BuildConfig of the last run
    DIR/environment.json    versions of every library and codec
    DIR/cache/              one atomic file per finished work unit (keyed by inputs and parameters)
    DIR/cfqa/               the Hugging Face dataset folder (load_dataset("cfqa") from DIR)
    DIR/report/             index.md, the paper-style table, plots
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from builders.config import BuildConfig, environment
from builders.profiles import Profile, make_profile
from builders.runner import Runner
from builders.store import UnitStore, unit_key

DATASET_DIRNAME = "cfqa"


@dataclass(frozen=True)
class OriginalRecord:
    """One extracted original: where its feature and target live in the store, and its full-quality result."""

    task: str
    original_id: str
    source_name: str
    feature: str
    target: str
    raw: float
    raw_ce: float | None
    provenance: dict[str, Any]


@dataclass(frozen=True)
class EncodeUnit:
    """One (original, codec, rate point): encode, decode from the bytes, evaluate the task head, label."""

    store: str
    task: str
    codec: str
    codec_options: dict[str, Any]
    codec_key: str
    rate_index: int
    original_id: str
    feature: str
    target: str
    heads: str
    heads_key: str
    raw: float
    raw_ce: float | None
    metrics: tuple[str, ...] = ()

    @property
    def encoded(self) -> str:
        key = unit_key(codec=self.codec_key, rate_index=self.rate_index, feature=self.feature)
        return f"encoded/{self.task}/{self.codec}/{self.rate_index}/{self.original_id}-{key}"

    @property
    def labelled(self) -> str:
        key = unit_key(encoded=self.encoded, heads=self.heads_key, target=self.target)
        return f"labels/{self.task}/{self.codec}/{self.rate_index}/{self.original_id}-{key}.json"

    @property
    def measured(self) -> str:
        key = unit_key(encoded=self.encoded, metrics=sorted(self.metrics))
        return f"metrics/{self.task}/{self.codec}/{self.rate_index}/{self.original_id}-{key}.json"


@functools.lru_cache(maxsize=16)
def _codec(name: str, options_json: str) -> Any:
    from builders import codecs

    return codecs.get(name, **json.loads(options_json))


@functools.lru_cache(maxsize=4)
def _heads(path: str) -> Any:
    from builders import heads

    return heads.load(path)


def run_encode_unit(unit: EncodeUnit) -> dict[str, Any]:
    """Worker function: encode + decode, label, and baseline metric values of one unit, each unless already
    done; returns its row meta. Metrics are computed here, where both arrays are in memory, so the report
    need not read every feature back."""
    from builders import labels
    from cfqa_metric import registry

    store = UnitStore(unit.store)
    meta_path = unit.encoded + ".json"
    original = None
    if store.exists(meta_path):
        meta = store.read_json(meta_path)
        decoded = None
    else:
        original = store.read_array(unit.feature)
        codec = _codec(unit.codec, json.dumps(unit.codec_options, sort_keys=True))
        result = codec.compress(original, unit.task, unit.rate_index, item=unit.original_id)
        store.write_array(unit.encoded + ".npy", result.decoded)
        meta = {
            "bpfp": result.bpfp,
            "bytes": len(result.bitstream),
            "codec_param": result.codec_param,
            "codec_param_name": result.codec_param_name,
            "provenance": result.provenance,
        }
        store.write_json(meta_path, meta)  # written last: its presence marks the unit finished
        decoded = result.decoded
    if not store.exists(unit.labelled):
        if decoded is None:
            decoded = store.read_array(unit.encoded + ".npy")
        target = store.read_array(unit.target)
        value = _heads(unit.heads).task_value(unit.task, decoded, target)
        label = {
            "raw": float(value["raw"]),
            "label": labels.drop(unit.task, value["raw"], unit.raw),
            "raw_ce": _opt(value.get("raw_ce")),
            "label_ce": None
            if value.get("raw_ce") is None or unit.raw_ce is None
            else float(value["raw_ce"]) - float(unit.raw_ce),
        }
        store.write_json(unit.labelled, label)
    else:
        label = store.read_json(unit.labelled)
    if not store.exists(unit.measured):
        if decoded is None:
            decoded = store.read_array(unit.encoded + ".npy")
        if original is None:
            original = store.read_array(unit.feature)
        values = {name: float(registry.get(name)(original, decoded)) for name in unit.metrics}
        store.write_json(unit.measured, values)
    else:
        values = store.read_json(unit.measured)
    return {**meta, **label, "metrics": values}


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


class Build:
    """One build of CFQA into ``config.out``; :meth:`run` executes every stage, skipping finished units."""

    def __init__(self, config: BuildConfig, runner: Runner) -> None:
        self.config = config
        self.runner = runner
        self.remote = _is_remote(config.out)
        # A remote --out (s3://, gs://, memory://, ...) is built in a local working folder, then published.
        self.out = (
            Path(config.work or Path(".cfqa-work") / unit_key(out=config.out))
            if self.remote
            else Path(config.out)
        )
        self.out_store = UnitStore(self.out)
        self.store = UnitStore(self.out / "cache")
        self.profile: Profile = make_profile(config, self.store, runner.console)

    # --- stages ------------------------------------------------------------------------------------------

    def extract_originals(self) -> dict[str, list[OriginalRecord]]:
        """Extract (or load from the store) the original features and their full-quality task results."""
        records: dict[str, list[OriginalRecord]] = {}
        for task in self.config.tasks:
            samples = self.profile.samples(task)
            units = []
            for sample in samples:
                key = unit_key(
                    model=self.profile.model_key, heads=self.profile.heads_key, task=task, name=sample.name
                )
                units.append((task, sample, f"originals/{task}/{sample.name}-{key}"))
            # In-process: the backbone lives in this process (and on the GPU where there is one).
            records[task] = self.runner.map(self._original_unit, units, f"originals {task}", in_process=True)
        return records

    def _original_unit(self, unit: tuple[str, Any, str]) -> OriginalRecord:
        task, sample, base = unit
        meta_path = base + ".json"
        if not self.store.exists(meta_path):
            feature = self.profile.extract(sample.image, task)
            value = self.profile.heads.task_value(task, feature, sample.target)
            self.store.write_array(base + ".npy", feature)
            self.store.write_array(base + ".target.npy", np.asarray(sample.target))
            self.store.write_json(
                meta_path,
                {"raw": float(value["raw"]), "raw_ce": _opt(value.get("raw_ce")), "source_name": sample.name},
            )
        meta = self.store.read_json(meta_path)
        return OriginalRecord(
            task=task,
            original_id=sample.name,
            source_name=meta["source_name"],
            feature=base + ".npy",
            target=base + ".target.npy",
            raw=meta["raw"],
            raw_ce=meta["raw_ce"],
            provenance=self.profile.provenance(task),
        )

    def encode_units(self, originals: dict[str, list[OriginalRecord]]) -> list[EncodeUnit]:
        units = []
        for codec in self.config.codecs:
            for task, records in originals.items():
                options = self.profile.codec_options(codec, task, originals)
                codec_key = unit_key(codec=codec, options=options)
                # one original's rate points are consecutive, so a chunk of units reads it once
                for rec in records:
                    for rate_index in range(self.config.rate_points):
                        units.append(
                            EncodeUnit(
                                store=self.store.root,
                                task=task,
                                codec=codec,
                                codec_options=options,
                                codec_key=codec_key,
                                rate_index=rate_index,
                                original_id=rec.original_id,
                                feature=rec.feature,
                                target=rec.target,
                                heads=self.profile.heads_path,
                                heads_key=self.profile.heads_key,
                                raw=rec.raw,
                                raw_ce=rec.raw_ce,
                                metrics=tuple(self.config.metrics),
                            )
                        )
        return units

    def write_dataset(
        self,
        originals: dict[str, list[OriginalRecord]],
        units: list[EncodeUnit],
        results: list[dict[str, Any]],
    ) -> Path:
        import cfqa_dataset

        by_original = {(r.task, r.original_id): r for recs in originals.values() for r in recs}
        order = {codec: i for i, codec in enumerate(self.config.codecs)}
        ranked = sorted(
            zip(units, results, strict=True),
            key=lambda ur: (ur[0].task, order[ur[0].codec], ur[0].original_id, ur[0].rate_index),
        )

        def original_rows():
            for task in self.config.tasks:
                for rec in sorted(originals[task], key=lambda r: r.original_id):
                    yield {
                        "original_id": rec.original_id,
                        "task": task,
                        "source_name": rec.source_name,
                        "feature": self.store.read_array(rec.feature),
                        "raw": rec.raw,
                        "raw_ce": rec.raw_ce,
                        "provenance": json.dumps(rec.provenance, sort_keys=True),
                    }

        def compressed_rows():
            for unit, res in ranked:
                rec = by_original[(unit.task, unit.original_id)]
                yield {
                    "id": f"{unit.task}/{unit.codec}/{unit.rate_index}/{unit.original_id}",
                    "original_id": rec.original_id,
                    "task": unit.task,
                    "codec": unit.codec,
                    "rate_index": unit.rate_index,
                    "codec_param": float(res["codec_param"]),
                    "codec_param_name": res["codec_param_name"],
                    "bpfp": float(res["bpfp"]),
                    "feature": self.store.read_array(unit.encoded + ".npy"),
                    "raw": res["raw"],
                    "label": res["label"],
                    "raw_ce": res["raw_ce"],
                    "label_ce": res["label_ce"],
                    "provenance": json.dumps(res["provenance"], sort_keys=True),
                }

        return cfqa_dataset.write_dataset(
            self.out / DATASET_DIRNAME, original_rows(), compressed_rows(), notes=self.profile.card_notes()
        )

    def metric_rows(self, units: list[EncodeUnit], results: list[dict[str, Any]]) -> Any:
        """The report's table (one row per compressed feature) from the workers' results."""
        import pandas as pd

        records = [
            {
                "original_id": u.original_id,
                "task": u.task,
                "codec": u.codec,
                "rate_index": u.rate_index,
                "bpfp": r["bpfp"],
                "label": r["label"],
                "label_ce": r["label_ce"],
                **r["metrics"],
            }
            for u, r in zip(units, results, strict=True)
        ]
        frame = pd.DataFrame.from_records(records)
        return frame.sort_values(["task", "codec", "original_id", "rate_index"], ignore_index=True)

    # --- the whole build ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run every stage; returns a summary (paths, stage seconds, sanity numbers)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.out_store.write_json("build_config.json", self.config.to_dict())
        self.out_store.write_json("environment.json", environment())
        with self.runner.timed("models"):
            self.profile.prepare()
        originals = self.extract_originals()
        with self.runner.timed("codecs"):
            self.profile.prepare_codecs(originals)
        units = self.encode_units(originals)
        results = self.runner.map(run_encode_unit, units, "encode + decode + label")
        with self.runner.timed("dataset"):
            dataset = self.write_dataset(originals, units, results)
        from builders import report

        with self.runner.timed("report"):
            summary = report.write_report(
                self.out,
                bootstrap=self.config.bootstrap,
                seed=self.config.seed,
                metrics=self.config.metrics,
                rows=self.metric_rows(units, results),
            )
        summary["dataset"] = str(dataset)
        summary["stage_seconds"] = dict(self.runner.stage_seconds)
        summary["mini_quality"] = self.profile.quality()
        self.out_store.write_json("summary.json", summary)
        if self.remote:
            with self.runner.timed("publish"):
                summary["published"] = publish(self.out, self.config.out)
        return summary


def _is_remote(url: str) -> bool:
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    return protocol not in ("file", "local")


def publish(local: Path, url: str) -> str:
    """Copy a finished build's dataset, report and records (not the unit cache) to an fsspec URL."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    for name in (DATASET_DIRNAME, "report"):
        fs.put(str(local / name), f"{root}/{name}", recursive=True)
    for name in ("build_config.json", "environment.json", "summary.json"):
        fs.put_file(str(local / name), f"{root}/{name}")
    return url


def build(config: BuildConfig, runner: Runner | None = None) -> dict[str, Any]:
    """Run a whole build with ``config``; a fresh Runner (local Dask cluster by default) unless given."""
    if runner is not None:
        return Build(config, runner).run()
    with Runner(scheduler=config.scheduler, workers=config.workers) as own:
        return Build(config, own).run()
