"""sha256 manifest of a dataset folder and `verify`."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from . import layout

_CHUNK = 8 * 1024**2


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _listed_files(root: Path) -> list[str]:
    """Every regular file of the dataset except the manifest and hidden temp files, sorted."""
    out = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel != layout.MANIFEST and not any(p.startswith(".") for p in rel.split("/")):
            out.append(rel)
    return sorted(out)


def render_manifest(hashes: dict[str, str]) -> str:
    """`sha256sum -c` compatible text: `<hex>  <path>` per line, sorted by path."""
    return "".join(f"{hashes[p]}  {p}\n" for p in sorted(hashes))


def write_manifest(root: str | os.PathLike[str]) -> Path:
    """Hash every file of `root` into MANIFEST.sha256 (atomically)."""
    root = Path(root)
    text = render_manifest({rel: sha256_file(root / rel) for rel in _listed_files(root)})
    path = root / layout.MANIFEST
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def read_manifest(path: Path) -> dict[str, str]:
    """Parse a manifest; raises ValueError naming the line on malformed input."""
    hashes: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not rel:
            raise ValueError(f"{path}:{lineno}: malformed manifest line {line!r}")
        if rel in hashes:
            raise ValueError(f"{path}:{lineno}: {rel} listed twice")
        hashes[rel] = digest
    return hashes


@dataclass
class VerifyReport:
    """Outcome of `verify`: ok when `errors` is empty."""

    root: Path
    checked: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _card_configs(card_path: Path) -> list[dict]:
    text = card_path.read_text()
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        raise ValueError(f"{card_path}: no YAML header")
    header = yaml.safe_load(text[4 : text.index("\n---", 4)])
    return header.get("configs", []) if isinstance(header, dict) else []


def verify(path: str | os.PathLike[str]) -> VerifyReport:
    """Check a dataset folder against its manifest, its card and its Parquet footers.

    Errors: missing card/manifest, a listed file missing or with another sha256, a file not in the manifest,
    a card config whose data_files match no shard, a shard whose footer is unreadable.
    """
    root = Path(path)
    report = VerifyReport(root)
    if not root.is_dir():
        report.errors.append(f"{root}: not a folder")
        return report
    man_path, card_path = root / layout.MANIFEST, root / layout.CARD
    if not card_path.is_file():
        report.errors.append(f"{card_path}: missing dataset card (README.md)")
    if not man_path.is_file():
        report.errors.append(f"{man_path}: missing manifest")
        return report
    try:
        expected = read_manifest(man_path)
    except ValueError as exc:
        report.errors.append(str(exc))
        return report
    for rel, digest in expected.items():
        file = root / rel
        if not file.is_file():
            report.errors.append(f"{rel}: listed in {layout.MANIFEST} but missing")
            continue
        actual = sha256_file(file)
        report.checked += 1
        if actual != digest:
            report.errors.append(f"{rel}: sha256 {actual} differs from the manifest's {digest}")
    for rel in _listed_files(root):
        if rel not in expected:
            report.errors.append(f"{rel}: not listed in {layout.MANIFEST}")
    for rel in sorted(r for r in expected if layout.parse_shard(r) is not None and (root / r).is_file()):
        try:
            pq.read_metadata(root / rel)
        except Exception as exc:  # pyarrow raises several types for corrupt footers
            report.errors.append(f"{rel}: unreadable Parquet footer ({exc})")
    if card_path.is_file():
        try:
            configs = _card_configs(card_path)
        except (ValueError, yaml.YAMLError) as exc:
            report.errors.append(str(exc))
            configs = []
        if not configs:
            report.errors.append(f"{card_path}: declares no configs")
        for cfg in configs:
            for item in cfg.get("data_files", []):
                patterns = item["path"] if isinstance(item["path"], list) else [item["path"]]
                for pattern in patterns:
                    if not any(root.glob(pattern)):
                        report.errors.append(
                            f"{layout.CARD}: config {cfg.get('config_name')!r} split {item.get('split')!r} "
                            f"pattern {pattern!r} matches no file"
                        )
    return report
