"""The CFQA row schema, declared once as `datasets.Features` and reused by writer, card, importer and loaders.

Both splits of a config (`originals`, `compressed`) share one schema, because a `datasets` config has a single
`Features`: originals leave the codec columns empty. The feature tensor's shape differs per task and is data
(the reference cls tensor is (1, 1, 257, 1536); a small profile has other shapes), so the schema is a function
of the shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import datasets
import pyarrow as pa

TASKS: tuple[str, ...] = ("cls", "seg", "dpt")
SPLITS: tuple[str, str] = ("originals", "compressed")

# Reference shapes of the official release (spec, "Size"); used for documentation and defaults only.
REFERENCE_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "cls": (1, 1, 257, 1536),
    "seg": (2, 1, 1370, 1536),
    "dpt": (2, 4, 1611, 1536),
}

# Codec and task names become parts of config names (`cls-hm`) and of shard globs (`compressed-hm-*.parquet`),
# so they must not contain '-' (a codec "hm-x" would be matched by the glob of codec "hm").
NAME_PATTERN = re.compile(r"^[a-z0-9_]+$")

FEATURE = "feature"

# Columns of the union schema, in storage order (feature last: readers that skip it read a compact prefix).
COLUMNS: tuple[str, ...] = (
    "id",
    "original_id",
    "task",
    "source_name",
    "codec",
    "rate_index",
    "codec_param",
    "codec_param_name",
    "bpfp",
    "raw",
    "label",
    "raw_ce",
    "label_ce",
    "provenance",
    FEATURE,
)

# What the caller supplies for each split; everything else is filled by the writer.
ORIGINAL_REQUIRED: frozenset[str] = frozenset({"original_id", "task", "source_name", FEATURE})
ORIGINAL_OPTIONAL: frozenset[str] = frozenset({"raw", "raw_ce", "provenance"})
COMPRESSED_REQUIRED: frozenset[str] = frozenset(
    {"id", "original_id", "task", "codec", "rate_index", "codec_param", "codec_param_name", FEATURE}
)
COMPRESSED_OPTIONAL: frozenset[str] = frozenset({"bpfp", "raw", "label", "raw_ce", "label_ce", "provenance"})
NULLABLE_FLOATS: tuple[str, ...] = ("bpfp", "raw", "label", "raw_ce", "label_ce")

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "id": "unique row id; for originals the original_id, for compressed "
    "`<task>/<codec>/<rate_index>/<original_id>`"
    " when built by cfqa",
    "original_id": "name of the original feature without extension (joins the two splits)",
    "task": "cls, seg or dpt",
    "source_name": "source image name of the original (ImageNet / VOC2012 / NYUv2 file name)",
    "codec": "codec name (hm, vtm, hyperprior_multi_task, hyperprior_task_specific, hevc, ...); "
    "empty for originals",
    "rate_index": "0..9, 0 = highest rate; empty for originals",
    "codec_param": "codec parameter of the rate point (QP or lambda); empty for originals",
    "codec_param_name": "`qp` or `lambda` (or the codec's own parameter name); empty for originals",
    "bpfp": "bits per feature point = bitstream bytes * 8 / (N*C*T*D); empty when the bitstream is unknown",
    "raw": "task value on this feature: cls 1-based rank of the true class, seg mIoU x 100, dpt RMSE",
    "label": "drop vs the original, positive = worse (see 'Labels'); 0 for originals with a known raw value",
    "raw_ce": "cls only: cross-entropy of the true class (continuous companion of the rank)",
    "label_ce": "cls only: increase of raw_ce vs the original",
    "provenance": "JSON string: backbone and preprocessing (originals) or encoder name/version/params "
    "(compressed)",
    "feature": "float32 tensor (N, C, T, D): pre-LayerNorm DINOv2 block output(s), cls token kept",
}


def features_for(shape: Sequence[int]) -> datasets.Features:
    """The `datasets.Features` of a config whose feature tensors have shape (N, C, T, D)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4 or any(s <= 0 for s in shape):
        raise ValueError(f"feature shape must be 4 positive ints (N, C, T, D), got {shape}")
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "original_id": datasets.Value("string"),
            "task": datasets.Value("string"),
            "source_name": datasets.Value("string"),
            "codec": datasets.Value("string"),
            "rate_index": datasets.Value("int32"),
            "codec_param": datasets.Value("float64"),
            "codec_param_name": datasets.Value("string"),
            "bpfp": datasets.Value("float64"),
            "raw": datasets.Value("float64"),
            "label": datasets.Value("float64"),
            "raw_ce": datasets.Value("float64"),
            "label_ce": datasets.Value("float64"),
            "provenance": datasets.Value("string"),
            FEATURE: datasets.Array4D(shape=shape, dtype="float32"),
        }
    )


def shape_of(features: datasets.Features) -> tuple[int, int, int, int]:
    """The (N, C, T, D) shape declared by a CFQA `Features`."""
    feat = features[FEATURE]
    if not isinstance(feat, datasets.Array4D):
        raise ValueError(f"column {FEATURE!r} is {type(feat).__name__}, expected Array4D")
    return tuple(int(s) for s in feat.shape)  # type: ignore[return-value]


def arrow_schema(features: datasets.Features) -> pa.Schema:
    """The Parquet storage schema: plain nested lists for the tensor, the `datasets` Features in the metadata.

    Shards are written with storage types (not the `datasets` extension type) so that any Parquet reader can
    read them; `datasets` restores `Array4D` from the `huggingface` schema metadata (and from the card).
    """
    fields = []
    for name, feat in features.items():
        if isinstance(feat, datasets.Array4D):
            typ = feat().storage_dtype
        else:
            typ = feat.pa_type
        fields.append(pa.field(name, typ))
    meta = {"huggingface": json.dumps({"info": {"features": features.to_dict()}}, sort_keys=True)}
    return pa.schema(fields, metadata=meta)


def features_from_arrow(schema: pa.Schema) -> datasets.Features:
    """The CFQA `Features` stored in a shard's schema metadata."""
    meta = schema.metadata or {}
    if b"huggingface" not in meta:
        raise ValueError("Parquet schema has no 'huggingface' metadata: not a CFQA shard")
    info = json.loads(meta[b"huggingface"])
    return datasets.Features.from_dict(info["info"]["features"])


def check_name(kind: str, name: str) -> str:
    """Validate a task or codec name (lower-case letters, digits, '_')."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"{kind} name {name!r} must match {NAME_PATTERN.pattern} (no '-', no upper case)")
    return name


def config_name(task: str, codec: str | None = None) -> str:
    """Config name of a task (`cls`) or of one codec of a task (`cls-hm`)."""
    return task if codec is None else f"{task}-{codec}"
