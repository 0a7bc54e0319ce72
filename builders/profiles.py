"""Build profiles: where models, samples, ranges and codec settings come from.

- ``mini``: offline, CPU, minutes. A small Dinov2 trained on procedural scenes (`builders.mini`), data-derived
  10-bit ranges, the mini rate ladders, learned codecs trained briefly.
- ``paper``: DINOv2 ViT-g/14 from the Hub (or a local folder), the official DINOv2 heads, local copies of
  ImageNet val / VOC2012 val / NYUv2 test with list files, the spec's ranges, QPs and lambdas.

A profile hands the pipeline plain values (arrays, paths, JSON-able codec options); the pipeline does
the rest.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from rich.console import Console

from builders.config import BuildConfig
from builders.store import UnitStore, unit_key

LEARNED = ("hyperprior_multi_task", "hyperprior_task_specific")


class Profile:
    """What differs between the mini and the paper profile. Subclasses fill the model, heads and samples."""

    name = ""

    def __init__(self, config: BuildConfig, store: UnitStore, console: Console) -> None:
        self.config = config
        self.store = store
        self.console = console
        self.model: Any = None
        self.heads: Any = None
        self.heads_path = ""
        self.model_key = ""
        self.heads_key = ""
        self._ranges: dict[str, Any] | None = None
        self._model_dir = ""

    # --- set-up ------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load or train the backbone and the task heads."""
        raise NotImplementedError

    def samples(self, task: str) -> list[Any]:
        """The ``config.originals`` source samples (`builders.sources.Sample`) of ``task``."""
        raise NotImplementedError

    def extract(self, image: np.ndarray, task: str) -> np.ndarray:
        from builders.features import extract

        return extract(self.model, image, task, profile=self.preprocess)

    preprocess = "paper"

    def provenance(self, task: str) -> dict[str, Any]:
        from builders.features import dpt_layers
        from builders.preprocess import get_profile

        layers = self.model.config.num_hidden_layers
        return {
            "backbone": self.backbone_name,
            "model_key": self.model_key,
            "blocks": list(dpt_layers(layers)) if task == "dpt" else [layers - 1],
            "pre_layernorm": True,
            "preprocessing": get_profile(self.preprocess).to_dict(),
        }

    backbone_name = ""

    # --- codecs ------------------------------------------------------------------------------------------
    def prepare_codecs(self, originals: dict[str, list[Any]]) -> None:
        """Fit ranges and train learned codecs (resumable: finished checkpoints are kept)."""
        features = {
            task: [self.store.read_array(r.feature) for r in recs] for task, recs in originals.items()
        }
        self._ranges = self.fit_ranges(features)
        if any(c in LEARNED for c in self.config.codecs):
            from builders.codecs import hyperprior

            key = unit_key(
                profile=self.name,
                model=self.model_key,
                tasks=sorted(features),
                seed=self.config.seed,
                originals=sorted(r.original_id for recs in originals.values() for r in recs),
                settings=self.config.hyperprior,
            )
            model_dir = self.store.local_path(f"codecs/hyperprior-{key}")
            hyperprior.train_all(
                features,
                model_dir,
                profile=self.name,
                seed=42,
                log=self.console.log,
                **self.config.hyperprior,
            )
            self._model_dir = str(model_dir)

    def fit_ranges(self, features: dict[str, list[np.ndarray]]) -> dict[str, Any] | None:
        """10-bit ranges for the uniform pre-codec transform; None = the spec's."""
        return None

    def codec_options(self, codec: str, task: str, originals: dict[str, list[Any]]) -> dict[str, Any]:
        """JSON-able options of `builders.codecs.get` for ``codec`` (they also enter the unit keys)."""
        options: dict[str, Any] = {"profile": self.name, **self.config.codec_options.get(codec, {})}
        if codec in LEARNED:
            options["model_dir"] = self._model_dir
        elif self._ranges is not None:
            options["ranges"] = {task: json.loads(json.dumps(self._ranges[task]))}
        return options

    # --- descriptions ------------------------------------------------------------------------------------
    def card_notes(self) -> str:
        raise NotImplementedError

    def quality(self) -> dict[str, Any]:
        return {}


class MiniProfile(Profile):
    """Offline mini CFQA: procedural scenes, a small Dinov2 trained on the CPU, its own heads."""

    name = "mini"
    preprocess = "mini"
    unselected_cls = False

    def prepare(self) -> None:
        from builders.mini import MiniConfig, build_mini

        overrides = dict(self.config.mini)
        folder = self.store.local_path("models")
        self.model, self.heads, self.report = build_mini(folder, seed=self.config.seed, **overrides)
        key = MiniConfig(seed=self.config.seed, **overrides).key()
        self.heads_path = str(folder / f"mini-{key}" / "heads.safetensors")
        self.model_key = self.heads_key = f"mini-{key}"
        cfg = self.model.config
        self.backbone_name = (
            f"Dinov2 mini (hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers, "
            f"patch {cfg.patch_size}), "
            f"trained on procedural scenes, key {key}"
        )

    def samples(self, task: str) -> list[Any]:
        from builders.mini import mini_samples

        seed = self.config.seed + 1  # held-out scenes: another random stream than training
        try:
            return mini_samples(task, self.config.originals, seed, model=self.model, heads=self.heads)
        except RuntimeError as err:
            # An undertrained model (tiny test budgets) cannot supply enough correctly classified scenes:
            # take unselected ones and say so in the card instead of failing the build.
            self.console.log(f"[yellow]cls selection skipped: {err}")
            self.unselected_cls = True
            return mini_samples(task, self.config.originals, seed)

    def fit_ranges(self, features: dict[str, list[np.ndarray]]) -> dict[str, Any]:
        from builders.transforms import fit_ranges

        return fit_ranges(features)

    def card_notes(self) -> str:
        return (
            "This is the offline **mini profile** of CFQA, regenerated by `cfqa build --profile mini`: "
            f"{self.backbone_name}; procedural scenes with known class, segmentation and depth; "
            f"codecs {', '.join(self.config.codecs)} with the mini rate ladders "
            "(builders/codecs/ladders.py); "
            "10-bit ranges fitted on the originals. Labels follow the paper's definitions; cls also carries "
            "`label_ce` (increase of the true-class cross-entropy), which stays informative where the rank "
            "is "
            "constant."
            + (
                " NOTE: the cls originals were NOT filtered to correctly classified scenes (the model's "
                "budget was too small to supply enough of them); cls ranks of originals may exceed 1."
                if self.unselected_cls
                else " cls originals are scenes the mini model classifies correctly, balanced over classes."
            )
        )

    def quality(self) -> dict[str, Any]:
        return {k: v for k, v in self.report.items() if not isinstance(v, dict | list)}


class PaperProfile(Profile):
    """The reference system: DINOv2 ViT-g/14, official heads, ImageNet / VOC2012 / NYUv2 local copies."""

    name = "paper"
    preprocess = "paper"

    def prepare(self) -> None:
        from builders import heads
        from builders.features import load_model

        cfg = self.config
        self.model = load_model(cfg.backbone)
        self.backbone_name = cfg.backbone
        if not cfg.heads_dir:
            raise ValueError(
                "the paper profile needs heads_dir: a folder with the official DINOv2 head checkpoints"
            )
        from pathlib import Path

        hdir = Path(cfg.heads_dir)
        files = {
            "cls_head": hdir / "dinov2_vitg14_linear_head.pth",
            "seg_head": hdir / "dinov2_vitg14_voc2012_linear_head.pth",
            "dpt_head": hdir / "dinov2_vitg14_nyu_linear4_head.pth",
        }
        wanted = {f"{t}_head" for t in cfg.tasks}
        missing = [str(p) for k, p in files.items() if k in wanted and not p.is_file()]
        if missing:
            raise FileNotFoundError(f"official head checkpoint(s) missing: {', '.join(missing)}")
        self.heads = heads.official_heads(self.model, **{k: p for k, p in files.items() if k in wanted})
        self.model_key = unit_key(backbone=cfg.backbone)
        self.heads_key = unit_key(heads={k: str(p) for k, p in files.items() if k in wanted})
        path = self.store.local_path(f"models/heads-{self.heads_key}.safetensors")
        if not path.is_file():
            self.heads.save(path)
        self.heads_path = str(path)

    def samples(self, task: str) -> list[Any]:
        from builders.sources import load_samples

        root = self.config.data_dirs.get(task)
        if not root:
            raise ValueError(
                f"the paper profile needs data_dirs[{task!r}] (a local copy of the task's source data)"
            )
        return load_samples(task, root, self.config.list_files.get(task), limit=self.config.originals)

    def card_notes(self) -> str:
        return (
            f"Regenerated with `cfqa build --profile paper`: backbone {self.config.backbone}, "
            "official DINOv2 heads, "
            f"codecs {', '.join(self.config.codecs)} with the reference's QPs and lambdas."
        )


def make_profile(config: BuildConfig, store: UnitStore, console: Console) -> Profile:
    return {"mini": MiniProfile, "paper": PaperProfile}[config.profile](config, store, console)
