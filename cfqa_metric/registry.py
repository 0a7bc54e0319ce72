"""Registry of candidate feature-quality metrics: name -> function and direction, open to plugins.

A plugin package adds metrics without editing this project through the entry-point group
``cfqa_metric.metrics``::

    [project.entry-points."cfqa_metric.metrics"]
    my_metric = "my_package.metrics:my_metric"

The entry point's object is either a :class:`MetricSpec` or a callable ``(original, compressed) -> float``;
a bare callable may carry its direction as a ``lower_better`` attribute. Plugins are discovered lazily:
listing them reads only entry-point metadata, and a plugin is imported when its name is first asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from cfqa_metric import baselines

__all__ = ["ENTRY_POINT_GROUP", "MetricSpec", "available", "get", "register", "resolve"]

ENTRY_POINT_GROUP = "cfqa_metric.metrics"

MetricFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class MetricSpec:
    """A candidate metric: ``fn(original, compressed) -> float`` and its direction.

    ``lower_better`` is True when the value rises with distortion (MSE), False when it falls (cosine),
    None when unknown (then ``magnitude`` reporting is unavailable).
    """

    name: str
    fn: MetricFn
    lower_better: bool | None = None
    description: str = ""

    def __call__(self, original: np.ndarray, compressed: np.ndarray) -> float:
        return self.fn(original, compressed)


_REGISTRY: dict[str, MetricSpec] = {}


def register(
    name: str,
    fn: MetricFn,
    *,
    lower_better: bool | None,
    description: str = "",
    overwrite: bool = False,
) -> MetricSpec:
    """Register ``fn`` under ``name``; ``ValueError`` if the name is taken (unless ``overwrite``)."""
    if not name or not isinstance(name, str):
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise ValueError(f"metric {name!r}: fn must be callable, got {type(fn).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"metric {name!r} is already registered; pass overwrite=True to replace it")
    spec = MetricSpec(name, fn, lower_better, description)
    _REGISTRY[name] = spec
    return spec


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load_plugin(name: str, ep: metadata.EntryPoint) -> MetricSpec:
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must name itself, whatever it raised
        raise ValueError(f"metric plugin {name!r} ({ep.value}) failed to load: {exc!r}") from exc
    if isinstance(obj, MetricSpec):
        spec = MetricSpec(name, obj.fn, obj.lower_better, obj.description)
    elif callable(obj):
        spec = MetricSpec(name, obj, getattr(obj, "lower_better", None), (obj.__doc__ or "").strip())
    else:
        raise ValueError(
            f"metric plugin {name!r} ({ep.value}) is a {type(obj).__name__}, not a callable or MetricSpec"
        )
    _REGISTRY[name] = spec
    return spec


def available() -> list[str]:
    """Names of the built-in, registered and plugin metrics (plugins are not imported)."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get(name: str) -> MetricSpec:
    """The metric registered as ``name``, loading its plugin on first use."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    eps = _entry_points()
    if name in eps:
        return _load_plugin(name, eps[name])
    raise ValueError(f"unknown metric {name!r}; available: {', '.join(available())}")


def resolve(metric: str | MetricSpec | MetricFn) -> MetricSpec:
    """A metric name, spec or plain callable as a :class:`MetricSpec` (a callable keeps its own name)."""
    if isinstance(metric, MetricSpec):
        return metric
    if isinstance(metric, str):
        return get(metric)
    if callable(metric):
        name = getattr(metric, "__name__", None) or type(metric).__name__
        return MetricSpec(name, metric, getattr(metric, "lower_better", None))
    raise ValueError(f"metric must be a name, a MetricSpec or a callable, got {type(metric).__name__}")


register("mse", baselines.mse, lower_better=True, description="mean squared error over the whole feature")
register(
    "cosine",
    baselines.cosine,
    lower_better=False,
    description="token-wise cosine, mean over tokens and slices",
)
register(
    "cka", baselines.cka, lower_better=False, description="linear CKA per (n, c) slice, mean over slices"
)
register(
    "cka_upstream",
    baselines.cka_upstream,
    lower_better=False,
    description="parity: the reference's CKA(last slice) / (N*C) aggregation",
)
register(
    "cka_debiased", baselines.cka_debiased, lower_better=False, description="debiased linear CKA per slice"
)
