"""Content-addressed store of pipeline work units.

Every unit of work (one original's feature, one encode at one rate, one label) writes its result under a key
derived from its inputs and parameters. Writes are atomic, so a unit is either absent or complete: a killed
build leaves no half-written result, and a rerun skips exactly the finished units.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import fsspec
import numpy as np


def unit_key(**params: Any) -> str:
    """A stable 16-hex-digit key of JSON-serialisable parameters (order of keywords does not matter)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot derive a cache key from {type(value).__name__}")


class UnitStore:
    """Atomic files under a root that may be a local path or any fsspec URL.

    Local writes go to a temporary file in the target folder, then `os.replace`; object stores (s3, gcs, ...)
    publish an object only when its upload completes, which gives the same guarantee.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = str(root)
        self.fs, self._base = fsspec.core.url_to_fs(self.root)
        self.local = self.fs.protocol in ("file", "local") or "file" in tuple(self.fs.protocol)

    def path(self, relpath: str) -> str:
        return f"{self._base.rstrip('/')}/{relpath}"

    def local_path(self, relpath: str) -> Path:
        """The local file path of a unit (only for local stores)."""
        if not self.local:
            raise ValueError(f"store {self.root!r} is not on the local file system")
        return Path(self.path(relpath))

    def exists(self, relpath: str) -> bool:
        return self.fs.exists(self.path(relpath))

    def write_bytes(self, relpath: str, data: bytes) -> None:
        target = self.path(relpath)
        if not self.local:
            self.fs.pipe_file(target, data)
            return
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(target))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def read_bytes(self, relpath: str) -> bytes:
        return self.fs.cat_file(self.path(relpath))

    def write_array(self, relpath: str, array: np.ndarray) -> None:
        buf = io.BytesIO()
        # np.save writes any layout; np.asarray (not ascontiguousarray) keeps 0-d targets 0-d.
        np.save(buf, np.asarray(array), allow_pickle=False)
        self.write_bytes(relpath, buf.getvalue())

    def read_array(self, relpath: str) -> np.ndarray:
        return np.load(io.BytesIO(self.read_bytes(relpath)), allow_pickle=False)

    def write_json(self, relpath: str, obj: Any) -> None:
        text = json.dumps(obj, sort_keys=True, indent=1, default=_json_default)
        self.write_bytes(relpath, text.encode())

    def read_json(self, relpath: str) -> Any:
        return json.loads(self.read_bytes(relpath))
