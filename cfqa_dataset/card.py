"""The dataset card (README.md): YAML generated from the schema and the written shards, plus a description.

Never edited by hand: `write_card` regenerates it from `cfqa_meta.json` and the Parquet footers, and
`cfqa push --config` regenerates it for the configs that will be complete on the Hub.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData

from . import layout
from .layout import ShardKey
from .schema import COLUMN_DESCRIPTIONS, COLUMNS, REFERENCE_SHAPES, TASKS, config_name, features_for

LICENSE = "cc-by-nc-4.0"
CITATION = """@inproceedings{gao2025cfqa,
  title     = {Compressed Feature Quality Assessment: Dataset and Baselines},
  author    = {Gao, Changsheng and Zhou, Wei and Lin, Guosheng and Lin, Weisi},
  booktitle = {Proceedings of the 33rd ACM International Conference on Multimedia (MM '25)},
  year      = {2025},
  doi       = {10.1145/3746027.3758309},
  eprint    = {2506.07412},
  archivePrefix = {arXiv}
}"""

TASK_DESCRIPTIONS = {
    "cls": "ImageNet val classification (100 images, one per class, all correct at full quality), "
    "Resize 256 + CenterCrop 224; DINOv2 last block",
    "seg": "PASCAL VOC2012 val semantic segmentation (21 classes), flip-and-crop TTA (2 crops); "
    "DINOv2 last block",
    "dpt": "NYUv2 test depth estimation, original + horizontal flip; "
    "DINOv2 blocks 10/20/30/40 (C = 4 layers)",
}

LABEL_DESCRIPTIONS = {
    "cls": "`raw` = 1-based rank of the true class among the 1000 logits (1 = correct); "
    "`label` = rank - rank of the original. `raw_ce` = cross-entropy of the true class, "
    "`label_ce` its increase.",
    "seg": "`raw` = per-image mIoU x 100 (nanmean over the classes of the image's confusion matrix); "
    "`label` = mIoU(original) - mIoU(compressed).",
    "dpt": "`raw` = per-image RMSE of the predicted depth (m); `label` = RMSE(compressed) - RMSE(original).",
}

CODEC_DESCRIPTIONS = {
    "hm": "HEVC reference software HM: min-max 10-bit quantisation, (N,C,T,D) packed into one "
    "4:0:0 10-bit frame, "
    "all-intra; rate points are QPs",
    "vtm": "VVC reference software VTM, same packing and configuration as HM; rate points are QPs",
    "hyperprior_multi_task": "CompressAI bmshj2018-hyperprior (N=128, M=192) on 256-level k-means indices, "
    "trained on cls+seg+dpt crops; rate points are lambdas",
    "hyperprior_task_specific": "the same hyperprior trained per task; rate points are lambdas",
    "hevc": "HEVC (x265 through PyAV) of the packed 10-bit frame; rate points are QPs",
    "av1": "AV1 of the packed frame; rate points are quantiser values",
}


def size_category(n: int) -> str:
    """The Hub's size_categories bucket for n rows."""
    for bound, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < bound:
            return name
    return "1M<n<10M"


def _family_stats(root: Path, files: list[str]) -> tuple[int, int, int]:
    """(rows, uncompressed bytes, bytes on disk) of a shard family, from the Parquet footers."""
    rows = mem = disk = 0
    for rel in files:
        meta = pq.ParquetFile(root / rel).metadata
        rows += meta.num_rows
        mem += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        disk += os.path.getsize(root / rel)
    return rows, mem, disk


def read_meta(root: Path) -> dict[str, Any]:
    """The build facts stored beside the shards."""
    path = root / layout.META
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: {root} is not a CFQA dataset folder")
    return json.loads(path.read_text())


def all_configs(meta: dict[str, Any]) -> list[str]:
    """Config names of a dataset: one per task, then one per (task, codec)."""
    names = []
    for task in meta["tasks"]:
        names.append(config_name(task))
        names += [config_name(task, codec) for codec in sorted(meta["tasks"][task]["codecs"])]
    return names


def config_families(meta: dict[str, Any], name: str) -> list[ShardKey]:
    """The shard families a config reads."""
    task, _, codec = name.partition("-")
    if task not in meta["tasks"]:
        raise ValueError(f"unknown config {name!r}; available: {all_configs(meta)}")
    codecs = sorted(meta["tasks"][task]["codecs"]) if not codec else [codec]
    if codec and codec not in meta["tasks"][task]["codecs"]:
        raise ValueError(f"unknown config {name!r}; available: {all_configs(meta)}")
    return [ShardKey(task, "originals", None)] + [ShardKey(task, "compressed", c) for c in codecs]


def _yaml(root: Path, meta: dict[str, Any], configs: list[str], shards: dict[ShardKey, list[str]]) -> str:
    stats = {key: _family_stats(root, files) for key, files in shards.items()}
    default = configs[0] if configs else None
    yaml_configs, infos = [], {}
    for name in configs:
        task, _, codec = name.partition("-")
        families = config_families(meta, name)
        missing = [k for k in families if k not in shards]
        if missing:
            raise ValueError(f"config {name!r} needs shards that are not in {root}: {missing}")
        data_files = [{"split": "originals", "path": layout.shard_glob(task, "originals")}]
        comp = [k for k in families if k.split == "compressed"]
        if comp:
            data_files.append(
                {"split": "compressed", "path": layout.shard_glob(task, "compressed", codec or None)}
            )
        entry: dict[str, Any] = {"config_name": name, "data_files": data_files}
        if name == default:
            entry["default"] = True
        yaml_configs.append(entry)
        splits = datasets.SplitDict()
        for split, keys in (("originals", families[:1]), ("compressed", comp)):
            if keys:
                rows = sum(stats[k][0] for k in keys)
                splits.add(
                    datasets.SplitInfo(
                        name=split, num_bytes=sum(stats[k][1] for k in keys), num_examples=rows
                    )
                )
        infos[name] = datasets.DatasetInfo(
            features=features_for(meta["tasks"][task]["shape"]),
            splits=splits,
            download_size=sum(stats[k][2] for k in families),
            dataset_size=sum(stats[k][1] for k in families),
        )
    total_rows = sum(v[0] for v in stats.values())
    card_data = DatasetCardData(
        license=LICENSE,
        pretty_name="CFQA: Compressed Feature Quality Assessment",
        size_categories=[size_category(total_rows)],
        tags=["feature-coding", "feature-compression", "quality-assessment", "dinov2", "coding-for-machines"],
        configs=yaml_configs,
    )
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    return card_data.to_yaml()


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _body(meta: dict[str, Any], configs: list[str]) -> str:
    tasks = [t for t in meta["tasks"] if any(c.partition("-")[0] == t for c in configs)]
    lines = ["# CFQA: Compressed Feature Quality Assessment", ""]
    lines += [
        "Intermediate features of a DINOv2 backbone (pre-LayerNorm block outputs, cls token kept) for "
        "three tasks, "
        "and decoded versions of them after feature compression at several rate points, each with the task "
        "result it still gives (the label of feature quality assessment). Re-creation of the dataset of "
        "*Compressed Feature Quality Assessment: Dataset and Baselines* (Gao et al., ACM MM 2025).",
        "",
    ]
    if meta.get("partial"):
        lines += [
            "> **PARTIAL DATASET.** This folder was written with missing or malformed parts excluded; "
            "see 'Build notes' for what is missing.",
            "",
        ]
    lines += [
        "## Contents",
        "",
        "| task | feature shape (N, C, T, D) | originals | codecs | compressed rows |",
        "|---|---|---|---|---|",
    ]
    for t in tasks:
        info = meta["tasks"][t]
        rows = sum(c["rows"] for c in info["codecs"].values())
        codecs = ", ".join(sorted(info["codecs"])) or "none"
        lines.append(f"| {t} | {tuple(info['shape'])} | {info['originals']} | {codecs} | {rows} |")
    lines += [
        "",
        "Tasks as defined by the official release (a build profile may use other sources, see "
        "'Build notes'): "
        + "; ".join(f"**{t}** {TASK_DESCRIPTIONS[t]}" for t in tasks if t in TASK_DESCRIPTIONS)
        + ". The official release's shapes are "
        + ", ".join(f"{t} {REFERENCE_SHAPES[t]}" for t in TASKS)
        + "; a small profile has smaller ones (the shape is data, see each config's features).",
        "",
    ]
    lines += [
        "## Configs and loading",
        "",
        "Each task is a config with the splits `originals` and `compressed` (one schema: originals leave the "
        "codec columns empty). `<task>-<codec>` configs (e.g. `cls-hm`) read only that codec's shards.",
        "",
        "Available configs: " + ", ".join(f"`{c}`" for c in configs) + ".",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("path/or/user/cfqa", "{configs[0]}")  # DatasetDict(originals, compressed)',
        'comp = ds["compressed"].with_format("numpy")  # feature -> float32 (N, C, T, D)',
        'x = comp[0]["feature"]',
        'stream = load_dataset("path/or/user/cfqa", "'
        + configs[0]
        + '", split="compressed", streaming=True)',
        "",
        "from cfqa_dataset import iter_pairs  # (original, compressed, label, meta)",
        'for pair in iter_pairs("path/or/user/cfqa", tasks=["' + tasks[0] + '"]):',
        "    ...",
        "```",
        "",
        "Metadata only (no tensors): `load_dataset(..., columns=[...])` with the columns you need. "
        "For throughput, read tensors in batches (`ds.with_format('numpy').iter(batch_size=8)`) or with "
        "`iter_pairs` (zero-copy views): per-row `ds[i]` pays a fixed formatting cost per row.",
        "",
    ]
    lines += ["## Columns", "", "| column | meaning |", "|---|---|"]
    lines += [f"| `{c}` | {COLUMN_DESCRIPTIONS[c]} |" for c in COLUMNS]
    lines += [
        "",
        "## Labels",
        "",
        "`label` is the drop of the task result versus the original, positive = worse. Within one original "
        "the raw value orders its compressed versions exactly as the drop does.",
        "",
    ]
    for t in tasks:
        info = meta["tasks"][t]
        lines.append(f"- **{t}**: {LABEL_DESCRIPTIONS.get(t, '')}")
        rows = sum(c["rows"] for c in info["codecs"].values())
        with_raw = sum(c["raw"] for c in info["codecs"].values())
        with_label = sum(c["label"] for c in info["codecs"].values())
        if rows and (with_label < rows or with_raw < rows):
            lines.append(
                f"  Availability: `raw` on {with_raw} of {rows} compressed rows, `label` on {with_label}; "
                f"originals with a known task result: {info['originals_raw']} of {info['originals']}. "
                "Where the original's own result is unknown the drop is left empty and `raw` is kept."
            )
    lines += [
        "",
        "## Codecs and rate points",
        "",
        "`rate_index` 0 is the highest rate. `bpfp` = bitstream bytes x 8 / (N x C x T x D).",
        "",
    ]
    for t in tasks:
        for codec, info in sorted(meta["tasks"][t]["codecs"].items()):
            desc = CODEC_DESCRIPTIONS.get(codec, "see the `provenance` column")
            lines += [
                f"**{t} / {codec}**: {desc}.",
                "",
                "| rate_index | parameter | rows | mean bpfp |",
                "|---|---|---|---|",
            ]
            for idx, point in sorted(info["rate_points"].items(), key=lambda kv: int(kv[0])):
                mean = point["bpfp_sum"] / point["rows"] if info["bpfp"] and point["rows"] else None
                lines.append(
                    f"| {idx} | {point['codec_param_name']} = {_fmt(point['codec_param'])} | {point['rows']} "
                    f"| {_fmt(mean)} |"
                )
            lines.append("")
    lines += [
        "## Storage",
        "",
        "Parquet shards (zstd) of at most a bounded size per (task, split, codec). Decoded features hold few "
        "distinct values (HM/VTM 1024 per task and layer, hyperprior 256), so the compressed splits use "
        "Parquet dictionary encoding; originals use byte-stream-split. Tensors round-trip bit-exactly as "
        "float32; `MANIFEST.sha256` lists the sha256 of every file (`cfqa verify` or `sha256sum -c`).",
        "",
    ]
    notes = meta.get("notes")
    if notes:
        lines += ["## Build notes", ""]
        if isinstance(notes, str):
            lines += [notes, ""]
        else:
            lines += [
                f"- **{k}**: {v if isinstance(v, str) else json.dumps(v, sort_keys=True)}"
                for k, v in notes.items()
            ]
            lines.append("")
    lines += [
        "## Licence",
        "",
        "CC BY-NC 4.0, as the original CFQA release (chansongoal/Compressed-Feature-Quality-Assessment). "
        "The source images keep their own terms (ImageNet, PASCAL VOC2012, NYUv2).",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join(lines)


def render_card(root: str | os.PathLike[str], configs: Iterable[str] | None = None) -> str:
    """The README.md text of a dataset folder, for all its configs or only `configs`."""
    root = Path(root)
    meta = read_meta(root)
    available = all_configs(meta)
    chosen = available if configs is None else [c for c in available if c in set(configs)]
    unknown = sorted(set(configs or []) - set(available))
    if unknown:
        raise ValueError(f"unknown config(s) {unknown}; available: {available}")
    if not chosen:
        raise ValueError(f"no config to describe in {root}")
    shards = layout.scan_shards(root)
    return f"---\n{_yaml(root, meta, chosen, shards)}\n---\n\n{_body(meta, chosen)}"


def write_card(root: str | os.PathLike[str], configs: Iterable[str] | None = None) -> Path:
    """Write README.md atomically (temp file + rename)."""
    root = Path(root)
    text = render_card(root, configs)
    path = root / layout.CARD
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
