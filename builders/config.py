"""The one typed configuration of a build: CLI flags and a config file fill it; saved with the output."""

from __future__ import annotations

import dataclasses
import json
import platform
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

TASKS = ("cls", "seg", "dpt")
PROFILE_CODECS = {
    # The mini profile runs offline with what pip installs: HEVC (x265) and AV1 stand in for HM and VTM.
    "mini": ("hevc", "av1", "hyperprior_multi_task", "hyperprior_task_specific"),
    "paper": ("hm", "vtm", "hyperprior_multi_task", "hyperprior_task_specific"),
}
BASELINE_METRICS = ("mse", "cosine", "cka")


@dataclass
class BuildConfig:
    """Everything a build depends on. Fields that change results enter the keys of the units they affect."""

    profile: Literal["mini", "paper"] = "mini"
    out: str = "out/mini"
    # Local working folder (unit cache, models) when `out` is a remote fsspec URL; default .cfqa-work/<key>.
    work: str | None = None
    tasks: tuple[str, ...] = TASKS
    codecs: tuple[str, ...] = ()
    originals: int = 100
    rate_points: int = 10
    seed: int = 0
    scheduler: str | None = None
    workers: int | None = None
    metrics: tuple[str, ...] = BASELINE_METRICS
    bootstrap: int = 1000
    # Training budgets in steps (deterministic, unlike a time budget). `mini` overrides fields of
    # builders.mini.MiniConfig (e.g. train_steps, n_train); `hyperprior` overrides the learned codecs'
    # training settings (steps, base_steps, batch_size, crop_size) of builders.codecs.hyperprior.train_all.
    mini: dict[str, Any] = field(default_factory=dict)
    hyperprior: dict[str, Any] = field(default_factory=dict)
    # paper profile: where the real inputs are
    backbone: str = "facebook/dinov2-giant"
    heads_dir: str | None = None
    data_dirs: dict[str, str] = field(default_factory=dict)
    list_files: dict[str, str] = field(default_factory=dict)
    codec_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.profile not in PROFILE_CODECS:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {sorted(PROFILE_CODECS)}")
        self.tasks = tuple(self.tasks)
        unknown = sorted(set(self.tasks) - set(TASKS))
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {list(self.tasks)}")
        self.codecs = tuple(self.codecs) or PROFILE_CODECS[self.profile]
        self.metrics = tuple(self.metrics)
        if self.originals < 2:
            raise ValueError(
                f"originals must be >= 2 (per-original correlations need groups), got {self.originals}"
            )
        if not 2 <= self.rate_points <= 10:
            raise ValueError(f"rate_points must be within 2..10, got {self.rate_points}")

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> BuildConfig:
        """Read a TOML or JSON config file; keyword overrides (e.g. CLI flags that were given) win."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text()
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {unknown}; known keys: {sorted(known)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def environment() -> dict[str, Any]:
    """Versions of every library and codec the build may use, saved beside the output."""
    packages = (
        "cfqa",
        "numpy",
        "scipy",
        "pyarrow",
        "datasets",
        "evaluate",
        "huggingface_hub",
        "torch",
        "torchvision",
        "transformers",
        "compressai",
        "av",
        "dask",
        "distributed",
        "scikit-image",
    )
    versions: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import av

        versions["ffmpeg"] = {lib: ".".join(map(str, v)) for lib, v in av.library_versions.items()}
    except ImportError:
        pass
    return versions
