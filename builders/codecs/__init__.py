"""Feature codecs by name: ``get(name, **options)``, ``available()``, ``register(name, factory)``.

Built-in names: ``hevc`` (x265 via PyAV), ``av1`` (SVT-AV1 via PyAV), ``hm`` and ``vtm`` (the HEVC/VVC
reference software, user-supplied binaries), ``vvenc`` (vvencapp/vvdecapp, user-supplied),
``hyperprior_multi_task`` and ``hyperprior_task_specific`` (CompressAI bmshj2018-hyperprior, trained by
:func:`builders.codecs.hyperprior.train`).

Every codec has ``compress(x, task, rate_index, item=None) -> CodecResult`` and
``decompress(bitstream, shape, task, rate_index, item=None) -> ndarray``. Heavy modules (av, torch,
compressai) are imported only when a codec is built or checked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builders.codecs.base import Codec, CodecError, CodecResult, CodecUnavailable

__all__ = [
    "Codec",
    "CodecError",
    "CodecResult",
    "CodecUnavailable",
    "available",
    "get",
    "names",
    "register",
    "unavailable_reason",
]


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Codec]
    check: Callable[[], str | None] | None


_REGISTRY: dict[str, _Entry] = {}


def register(
    name: str,
    factory: Callable[..., Codec] | str,
    check: Callable[[], str | None] | None = None,
    overwrite: bool = False,
) -> None:
    """Register a codec constructor under ``name``.

    ``factory`` is a callable taking the codec's options, or a lazy ``"module:attribute"`` path. ``check`` (or
    the factory's ``availability()`` classmethod) returns None when the codec can run here, else the reason.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"codec name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"codec {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = _Entry(_lazy(factory) if isinstance(factory, str) else factory, check)


def _lazy(path: str) -> Callable[..., Codec]:
    module, _, attr = path.partition(":")

    def load() -> Any:
        return getattr(importlib.import_module(module), attr)

    def factory(**options: Any) -> Codec:
        return load()(**options)

    factory.load = load  # type: ignore[attr-defined]
    return factory


def names() -> list[str]:
    """All registered codec names."""
    return sorted(_REGISTRY)


def get(name: str, **options: Any) -> Codec:
    """Build codec ``name`` with ``options`` (ladder, profile, ranges, binary paths, model_dir, ...)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown codec {name!r}; registered: {', '.join(names())}")
    return _REGISTRY[name].factory(**options)


def unavailable_reason(name: str) -> str | None:
    """None when codec ``name`` can run here (its libraries or binaries are present), else why not."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown codec {name!r}; registered: {', '.join(names())}")
    entry = _REGISTRY[name]
    check = entry.check
    if check is None:
        target = entry.factory.load() if hasattr(entry.factory, "load") else entry.factory
        check = getattr(target, "availability", None)
    if check is None:
        return None
    try:
        return check()
    except ImportError as err:
        return f"{name}: {err}"


def available() -> list[str]:
    """Registered codecs that can run here (binaries found on PATH, libraries importable)."""
    return [name for name in names() if unavailable_reason(name) is None]


register("hevc", "builders.codecs.pyav:HevcCodec")
register("av1", "builders.codecs.pyav:Av1Codec")
register("hm", "builders.codecs.refsw:HmCodec")
register("vtm", "builders.codecs.refsw:VtmCodec")
register("vvenc", "builders.codecs.refsw:VvencCodec")
register("hyperprior_multi_task", "builders.codecs.hyperprior:MultiTaskHyperprior")
register("hyperprior_task_specific", "builders.codecs.hyperprior:TaskSpecificHyperprior")
