"""The offline mini profile: a small DINOv2 and its three heads, trained on procedural scenes on CPU.

No weights or data sets can be downloaded, so the default profile builds a meaningful small CFQA from
nothing through the paper's code path: the same ``Dinov2Model`` class, the same feature extraction
(:func:`builders.features.extract` with the ``mini`` profile: 112 px views, 65 tokens each) and the same
head designs (:mod:`builders.heads`: cls linear on [cls, mean patch] after the final norm, seg linear
BNHead, dpt linear4 over 4 blocks' patch + cls tokens classifying into uniform depth bins).

The backbone and heads are trained jointly from scratch (cls cross-entropy + per-pixel seg cross-entropy
+ L1 depth) for a fixed number of steps, so a build is reproducible; ``max_train_seconds`` is an optional
safety cap. Results are cached under ``cache_dir/mini-<key>/`` (key = hash of the configuration), written
atomically; a rerun loads the cache and skips training.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from builders import labels
from builders.features import dpt_layers, extract
from builders.heads import ClsHead, DepthHead, SegHead, TaskHeads
from builders.heads import load as load_heads
from builders.preprocess import MINI, normalize
from builders.scenes import NUM_CLASSES, SEG_CLASSES, generate_scenes, render_scene, stack_scenes
from builders.sources import Sample

TASKS = ("cls", "seg", "dpt")
#: Image sizes of the held-out samples per task: seg scenes are wider so that they give 2 windows,
#: like a VOC image in the paper profile.
SAMPLE_SIZES = {"cls": (112, 112), "seg": (112, 160), "dpt": (112, 112)}
# Random streams of generate_scenes: training, validation, then one per task for the samples.
_TRAIN_STREAM, _VAL_STREAM, _SAMPLE_STREAM = 0, 1, 10


@dataclass(frozen=True)
class MiniConfig:
    """Everything that determines a mini build (its hash is the cache key)."""

    seed: int = 0
    image_size: int = 112
    hidden_size: int = 192
    num_layers: int = 6
    num_heads: int = 3
    mlp_ratio: int = 2
    n_train: int = 3000
    n_val: int = 150
    batch_size: int = 32
    # 200 steps of 32 (~6,400 samples, ~2 passes): about 2.5 min on 2 free cores.
    train_steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 30
    # The official head uses 256 bins for ViT-g; 64 keep 16 cm spacing over 0-10 m at a quarter of the cost.
    n_bins: int = 64
    max_depth: float = 10.0

    def key(self) -> str:
        """Cache key: a short hash of the configuration."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def default_threads() -> int:
    """Torch threads for training: all cores (at most 4) if they actually speed up a matmul, else 1.

    OpenMP threads that share a core with another busy process stall each other: on a 2-core machine
    with one other busy process, 2 threads train several times slower than 1. A short probe (about a
    tenth of a second) measures that instead of guessing from the load average.
    """
    cores = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if cores <= 1:
        return 1
    a = torch.randn(384, 384)

    def probe(n: int) -> float:
        torch.set_num_threads(n)
        a @ a  # warm-up: thread pool start
        t = time.perf_counter()
        for _ in range(8):
            a @ a
        return time.perf_counter() - t

    before = torch.get_num_threads()
    try:
        one, many = probe(1), probe(cores)
    finally:
        torch.set_num_threads(before)
    return cores if many * 1.3 < one else 1


@contextlib.contextmanager
def _threads(n: int | None):
    """Run with ``n`` torch threads (default :func:`default_threads`) and restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n or default_threads()))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_model(cfg: MiniConfig):
    """A randomly initialised (seeded) ``Dinov2Model`` of the mini size."""
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        mlp_ratio=cfg.mlp_ratio,
        image_size=cfg.image_size,
        patch_size=14,
    )
    torch.manual_seed(cfg.seed)
    return Dinov2Model(config)


def make_heads(cfg: MiniConfig, model) -> TaskHeads:
    """Untrained mini heads (scaled-down official designs) for ``model``."""
    d, eps = cfg.hidden_size, model.config.layer_norm_eps
    torch.manual_seed(cfg.seed + 1)
    return TaskHeads(
        cls=ClsHead(d, NUM_CLASSES, eps=eps),
        seg=SegHead(d, SEG_CLASSES, eps=eps),
        dpt=DepthHead(
            d, layers=4, n_bins=cfg.n_bins, min_depth=1e-3, max_depth=cfg.max_depth, upsample=4, bn=True
        ),
        profile=MINI,
        patch_size=14,
        meta={"source": "mini", "config": asdict(cfg)},
    )


def _batch_views(images: np.ndarray) -> torch.Tensor:
    return torch.stack([normalize(im) for im in images])


def train(
    model,
    heads: TaskHeads,
    data: dict[str, np.ndarray],
    cfg: MiniConfig,
    max_seconds: float | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> dict:
    """Joint training of backbone + heads; returns steps done, seconds and the last losses.

    ``progress(step, losses)`` is called after every step (e.g. to drive a progress bar).
    """
    cls_h, seg_h, dpt_h = heads.heads["cls"], heads.heads["seg"], heads.heads["dpt"]
    # The cls/seg heads' final norm IS the model's final norm (shared module while training).
    cls_h.norm = model.layernorm
    seg_h.norm = model.layernorm
    modules = [model, cls_h.linear, seg_h.bn, seg_h.conv_seg, dpt_h]
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, cfg.train_steps - cfg.warmup_steps)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))

    layers = dpt_layers(cfg.num_layers)
    grid = (cfg.image_size // 14, cfg.image_size // 14)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 99]))
    n = len(data["label"])
    for m in modules:
        m.train()
    start, step, losses = time.perf_counter(), 0, {}
    order = rng.permutation(n)
    pos = 0
    while step < cfg.train_steps:
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
        if pos + cfg.batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + cfg.batch_size]
        pos += cfg.batch_size
        images, seg_t, depth_t = data["image"][idx], data["seg"][idx], data["depth"][idx]
        # Horizontal flips: the dpt test-time views include the flipped image.
        flip = rng.random(len(idx)) < 0.5
        images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
        seg_t = np.where(flip[:, None, None], seg_t[:, :, ::-1], seg_t)
        depth_t = np.where(flip[:, None, None], depth_t[:, :, ::-1], depth_t)
        x = _batch_views(images)
        out = model(pixel_values=x, output_hidden_states=True)
        hs = out.hidden_states
        loss_cls = F.cross_entropy(cls_h(hs[-1]), torch.from_numpy(data["label"][idx]))
        seg_logits = F.interpolate(
            seg_h(hs[-1], grid), size=x.shape[-2:], mode="bilinear", align_corners=False
        )
        loss_seg = F.cross_entropy(seg_logits, torch.from_numpy(seg_t.astype(np.int64)))
        depth = dpt_h(torch.stack([hs[i + 1] for i in layers], dim=1), grid)
        depth = F.interpolate(depth, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        loss_dpt = F.l1_loss(depth, torch.from_numpy(np.ascontiguousarray(depth_t)))
        loss = loss_cls + loss_seg + loss_dpt
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses = {"cls": loss_cls.item(), "seg": loss_seg.item(), "dpt": loss_dpt.item()}
        step += 1
        if progress is not None:
            progress(step, losses)
    seconds = time.perf_counter() - start
    model.eval()
    for m in modules:
        m.eval()
    # Give the heads their own copy of the trained final norm (heads files are used without the model).
    for head in (cls_h, seg_h):
        norm = torch.nn.LayerNorm(cfg.hidden_size, eps=model.layernorm.eps)
        norm.load_state_dict(model.layernorm.state_dict())
        head.norm = norm.eval()
    return {
        "steps": step,
        "seconds": seconds,
        "samples_per_s": step * cfg.batch_size / max(seconds, 1e-9),
        "last_losses": losses,
    }


def _samples_from_scenes(task: str, scenes, start: int = 0) -> list[Sample]:
    out = []
    for i, sc in enumerate(scenes, start):
        target = {"cls": sc.label, "seg": sc.seg, "dpt": sc.depth}[task]
        out.append(Sample(f"mini_{task}_{i:04d}", sc.image, target))
    return out


def evaluate(model, heads: TaskHeads, cfg: MiniConfig, train_depth_mean: float) -> dict:
    """Held-out quality through the real path (extract + heads) against trivial predictors."""
    report: dict = {}
    n = cfg.n_val
    for ti, task in enumerate(TASKS):
        h, w = SAMPLE_SIZES[task]
        scenes = generate_scenes(n, cfg.seed, height=h, width=w, stream=_VAL_STREAM * 100 + ti)
        samples = _samples_from_scenes(task, scenes)
        values = []
        trivial = []
        for s in samples:
            feat = extract(model, s.image, task, profile=MINI, name=s.name)
            values.append(heads.task_value(task, feat, s.target))
            if task == "seg":
                trivial.append(labels.seg_miou(np.zeros_like(s.target), s.target, num_classes=SEG_CLASSES))
            elif task == "dpt":
                trivial.append(labels.depth_rmse(np.full_like(s.target, train_depth_mean), s.target))
        raw = np.array([v["raw"] for v in values])
        if task == "cls":
            counts = np.bincount([s.target for s in samples], minlength=NUM_CLASSES)
            report["cls_top1"] = float(np.mean(raw == 1))
            report["cls_top1_majority"] = float(counts.max() / len(samples))
            report["cls_ce"] = float(np.mean([v["raw_ce"] for v in values]))
        elif task == "seg":
            report["seg_miou"] = float(np.nanmean(raw))
            report["seg_miou_all_background"] = float(np.nanmean(trivial))
        else:
            report["dpt_rmse"] = float(np.mean(raw))
            report["dpt_rmse_mean_predictor"] = float(np.mean(trivial))
    report["n_val"] = n
    return report


def real_image_check(model, heads: TaskHeads, short_side: int = 112) -> dict:
    """Run the mini model on the photographs scikit-image ships (an extra check on real images).

    Every photograph goes through the three tasks (resized so the shorter side is ``short_side``); the
    stereo pair's ground truth gives the Spearman correlation of the predicted depth with the true
    relative depth (the mini model never saw a real image: expect a weak, not a strong, agreement).
    """
    from PIL import Image
    from scipy.stats import spearmanr

    from builders.sources import skimage_samples

    out: dict = {"real_images": 0}
    for s in skimage_samples():
        h, w = s.image.shape[:2]
        scale = short_side / min(h, w)
        size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
        image = np.asarray(Image.fromarray(s.image).resize(size, Image.Resampling.BILINEAR))
        preds = {}
        for task in TASKS:
            feat = extract(model, image, task, profile=MINI, name=s.name)
            preds[task] = heads.predict(task, feat, image.shape[:2])
            if not np.all(np.isfinite(preds[task])):
                raise ValueError(f"{s.name}: non-finite {task} prediction")
        if isinstance(s.target, np.ndarray):
            depth = np.asarray(Image.fromarray(s.target).resize(size, Image.Resampling.NEAREST))
            valid = depth > 0
            rho = spearmanr(preds["dpt"][valid], depth[valid]).statistic
            out[f"{s.name}_depth_spearman"] = float(rho)
        out["real_images"] += 1
    return out


def _paths(folder: Path) -> dict[str, Path]:
    return {
        "model": folder / "model",
        "heads": folder / "heads.safetensors",
        "report": folder / "report.json",
    }


def load_mini(folder: str | os.PathLike):
    """(model, heads, report) of a finished mini build folder."""
    from transformers import Dinov2Model

    p = _paths(Path(folder))
    if not p["report"].is_file():
        raise FileNotFoundError(f"no finished mini build in {folder} (report.json missing)")
    model = Dinov2Model.from_pretrained(p["model"], local_files_only=True).eval()
    heads = load_heads(p["heads"])
    report = json.loads(p["report"].read_text())
    return model, heads, report


def build_mini(
    cache_dir: str | os.PathLike,
    seed: int = 0,
    *,
    config: MiniConfig | None = None,
    max_train_seconds: float | None = None,
    threads: int | None = None,
    progress: Callable[[int, dict], None] | None = None,
    **overrides,
):
    """Build (or load from ``cache_dir``) the mini model and heads; returns ``(model, heads, report)``.

    ``config`` (or keyword ``overrides`` of :class:`MiniConfig` fields, e.g. ``train_steps=20,
    n_train=64`` in tests) sets the budget. ``report`` holds the held-out quality (cls top-1 vs the
    majority class, seg mIoU x 100 vs all-background, dpt RMSE vs the training-mean depth), the seconds
    per stage, ``folder`` / ``heads_path`` (load the heads by path in workers with
    :func:`builders.heads.load`) and ``cached``.
    """
    cfg = config or MiniConfig(seed=seed, **overrides)
    cache_dir = Path(cache_dir)
    final = cache_dir / f"mini-{cfg.key()}"
    if (final / "report.json").is_file():
        t0 = time.perf_counter()
        model, heads, report = load_mini(final)
        report.update(folder=str(final), heads_path=str(_paths(final)["heads"]), cached=True)
        report["timings"]["load_s"] = time.perf_counter() - t0
        return model, heads, report

    with _threads(threads):
        timings = {}
        t0 = time.perf_counter()
        data = stack_scenes(
            generate_scenes(
                cfg.n_train, cfg.seed, height=cfg.image_size, width=cfg.image_size, stream=_TRAIN_STREAM
            )
        )
        timings["scenes_s"] = time.perf_counter() - t0
        model = make_model(cfg)
        heads = make_heads(cfg, model)
        stats = train(model, heads, data, cfg, max_seconds=max_train_seconds, progress=progress)
        stats["threads"] = torch.get_num_threads()
        timings["train_s"] = stats["seconds"]
        t0 = time.perf_counter()
        quality = evaluate(model, heads, cfg, float(data["depth"].mean()))
        quality["real_image_check"] = real_image_check(model, heads)
        timings["eval_s"] = time.perf_counter() - t0

    report = {
        **quality,
        "train": stats,
        "timings": timings,
        "config": asdict(cfg),
        "key": cfg.key(),
        "capped": stats["steps"] < cfg.train_steps,
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".mini-{cfg.key()}-"))
    try:
        p = _paths(tmp)
        model.save_pretrained(p["model"])
        heads.save(p["heads"])
        p["report"].write_text(json.dumps(report, indent=2, sort_keys=True))
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process finished the same build first (the target folder exists): keep theirs.
            if not (final / "report.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    report.update(folder=str(final), heads_path=str(_paths(final)["heads"]), cached=False)
    return model, heads, report


def mini_samples(task: str, n: int, seed: int, *, model=None, heads: TaskHeads | None = None) -> list[Sample]:
    """``n`` held-out procedural samples of ``task`` (never seen in training or validation).

    With ``model`` and ``heads`` given, cls samples are only images the model classifies correctly at
    full quality, balanced over the classes (like the paper's one-per-class ImageNet selection).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    h, w = SAMPLE_SIZES[task]
    stream = _SAMPLE_STREAM + TASKS.index(task)
    if task != "cls" or model is None or heads is None:
        return _samples_from_scenes(task, generate_scenes(n, seed, height=h, width=w, stream=stream))
    per_class = math.ceil(n / NUM_CLASSES)
    chosen: list[Sample] = []
    taken = np.zeros(NUM_CLASSES, dtype=int)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), stream]))

    tried, balanced_tries, limit = 0, 20 * n + 50, 100 * n + 100
    while len(chosen) < n:
        if tried >= limit:
            raise RuntimeError(f"only {len(chosen)} of {n} correctly classified cls scenes in {limit} tries")
        sc = render_scene(rng, h, w)
        tried += 1
        # Balance the classes while that is possible; a weak model may never get some classes right.
        if taken[sc.label] >= per_class and tried < balanced_tries:
            continue
        feat = extract(model, sc.image, "cls", profile=MINI)
        if labels.cls_rank(heads.cls_logits(feat), sc.label) == 1:
            chosen.append(Sample(f"mini_cls_{len(chosen):04d}", sc.image, sc.label))
            taken[sc.label] += 1
    return chosen
