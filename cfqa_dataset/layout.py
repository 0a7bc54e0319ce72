"""File layout of a CFQA dataset folder.

```
<out>/README.md                      card: YAML configs/features/splits + description
<out>/cfqa_meta.json                 build facts the card is generated from (shapes, rate points, notes)
<out>/MANIFEST.sha256                `sha256sum -c` compatible list of every other file
<out>/data/<task>/originals-00000-of-00001.parquet
<out>/data/<task>/compressed-<codec>-00000-of-00004.parquet
```
One shard family per (task, split, codec), so a config such as `cls-hm` reads only its own shards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CARD = "README.md"
META = "cfqa_meta.json"
MANIFEST = "MANIFEST.sha256"
DATA_DIR = "data"

_SHARD_RE = re.compile(
    r"^(?:(?P<orig>originals)|compressed-(?P<codec>[a-z0-9_]+))-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$"
)


@dataclass(frozen=True, order=True)
class ShardKey:
    """Which shard family a file belongs to: (task, split, codec); codec is None for originals."""

    task: str
    split: str
    codec: str | None


def shard_name(key: ShardKey, index: int, count: int) -> str:
    """Relative path of shard `index` of `count` of a family."""
    stem = "originals" if key.codec is None else f"compressed-{key.codec}"
    return f"{DATA_DIR}/{key.task}/{stem}-{index:05d}-of-{count:05d}.parquet"


def shard_glob(task: str, split: str, codec: str | None = None) -> str:
    """The data_files pattern of a split of a config (relative to the dataset root)."""
    if split == "originals":
        return f"{DATA_DIR}/{task}/originals-*.parquet"
    if codec is None:
        return f"{DATA_DIR}/{task}/compressed-*.parquet"
    return f"{DATA_DIR}/{task}/compressed-{codec}-*.parquet"


def parse_shard(relpath: str) -> ShardKey | None:
    """The family of a shard path like `data/cls/compressed-hm-00000-of-00002.parquet`, or None."""
    parts = relpath.split("/")
    if len(parts) != 3 or parts[0] != DATA_DIR:
        return None
    m = _SHARD_RE.match(parts[2])
    if m is None:
        return None
    if m["orig"]:
        return ShardKey(parts[1], "originals", None)
    return ShardKey(parts[1], "compressed", m["codec"])


def scan_shards(root: Path) -> dict[ShardKey, list[str]]:
    """All shard files under `root`, grouped by family, each list sorted (relative POSIX paths)."""
    found: dict[ShardKey, list[str]] = {}
    data = root / DATA_DIR
    if not data.is_dir():
        return found
    for path in sorted(data.rglob("*.parquet")):
        rel = path.relative_to(root).as_posix()
        key = parse_shard(rel)
        if key is not None:
            found.setdefault(key, []).append(rel)
    return found
