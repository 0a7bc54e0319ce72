"""Benchmark: feature extraction and head evaluation of the mini profile, and the head's fast order.

A mini-size random ``Dinov2Model`` (hidden 192, 6 blocks, 3 heads, patch 14; weights do not change the
cost) and mini-size heads (8 classes, 9 seg classes, the mini's depth bins). Prints per task:

- ``extract`` ms per image (the 300 originals of a demo),
- ``task_value`` ms per feature (prediction + label; run once per compressed feature: 12,000 in a demo;
  target a few ms) and ``predict`` ms (prediction only),
- the same prediction computed in the official order (every channel upsampled before the 1x1 conv,
  ``F.interpolate`` and ``einsum``) as the in-process baseline, with the ratio, and the largest
  difference between the two depth maps / the share of equal seg pixels,
- the projected seconds of head evaluation for 4,000 features per task (4 codecs x 10 rates x 100).

Then the same for the paper geometry (480 x 640 dpt, 2 x 518 seg windows) with a narrow (D = 64) head,
where the gap is largest. Threads: 1 (what a Dask worker process should use).

    .venv/bin/python bench/heads.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import Dinov2Config, Dinov2Model  # noqa: E402

from builders.features import extract  # noqa: E402
from builders.heads import ClsHead, DepthHead, SegHead, TaskHeads  # noqa: E402
from builders.mini import MiniConfig, mini_samples  # noqa: E402
from builders.preprocess import seg_geometry, token_grid  # noqa: E402


def timed(fn, repeat: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeat`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def official_seg(heads: TaskHeads, feature: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """mmseg slide inference with F.interpolate on every window (the baseline)."""
    head = heads.heads["seg"]
    geo = seg_geometry(size[0], size[1], heads.profile)
    y1, y2, x1, x2 = geo.windows[0]
    grid = token_grid(y2 - y1, x2 - x1, heads.patch_size)
    with torch.inference_mode():
        logits = head(torch.from_numpy(feature[:, 0]), grid)
        acc = torch.zeros(1, logits.shape[1], *geo.resized)
        cnt = torch.zeros(1, 1, *geo.resized)
        for i, (y1, y2, x1, x2) in enumerate(geo.windows):
            acc[:, :, y1:y2, x1:x2] += F.interpolate(
                logits[i : i + 1], size=(y2 - y1, x2 - x1), mode="bilinear"
            )
            cnt[:, :, y1:y2, x1:x2] += 1
        out = F.interpolate(acc / cnt, size=size, mode="bilinear")
        return out[0].argmax(0).numpy()


def official_dpt(heads: TaskHeads, feature: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The hub's linear4 order: upsample every [patch, cls] map x4, then BN/conv, einsum (the baseline)."""
    head = heads.heads["dpt"]
    grid = token_grid(size[0], size[1], heads.patch_size)
    up = (grid[0] * head.upsample, grid[1] * head.upsample)
    with torch.inference_mode():
        tok = torch.from_numpy(feature)
        n, nl, _, d = tok.shape
        maps = []
        for layer in range(nl):
            patch = tok[:, layer, 1:].transpose(1, 2).reshape(n, d, *grid)
            both = torch.cat([patch, tok[:, layer, 0, :, None, None].expand_as(patch)], 1)
            maps.append(F.interpolate(both, size=up, mode="bilinear"))
        x = torch.cat(maps, 1)
        if head.bn is not None:
            x = head.bn(x)
        logit = torch.relu(head.conv_depth(x)) + 0.1
        logit = logit / logit.sum(1, keepdim=True)
        depth = torch.einsum("ikmn,k->imn", logit, head.bins)[:, None].clamp(head.min_depth, head.max_depth)
        depth = F.interpolate(depth, size=size, mode="bilinear")[:, 0]
        return ((depth[0] + depth[1].flip(-1)) / 2).numpy()


def run(label: str, model, heads: TaskHeads, samples: dict, profile: str, repeat: int) -> None:
    print(f"\n== {label} ==")
    header = ("task", "feature", "extract ms", "value ms", "predict ms", "official ms", "ratio")
    print("{:4} {:>18} {:>11} {:>9} {:>11} {:>12} {:>6}  agreement".format(*header))
    for task, sample in samples.items():
        feat = extract(model, sample.image, task, profile=profile)
        t_ext = timed(
            lambda s=sample, t=task: extract(model, s.image, t, profile=profile), max(2, repeat // 4)
        )
        t_head = timed(lambda f=feat, s=sample, t=task: heads.task_value(t, f, s.target), repeat)
        if task == "cls":
            predict, official, ratio, agree = "-", "-", "-", "-"
        else:
            size = sample.target.shape
            ref_fn = official_seg if task == "seg" else official_dpt
            t_ref = timed(lambda f=feat, fn=ref_fn, sz=size: fn(heads, f, sz), repeat)
            t_pred = timed(lambda f=feat, t=task, sz=size: heads.predict(t, f, sz), repeat)
            ours = heads.predict(task, feat, size)
            ref = ref_fn(heads, feat, size)
            agree = (
                f"{np.mean(ours == ref) * 100:.3f}% equal pixels"
                if task == "seg"
                else f"max |diff| {np.abs(ours - ref).max():.2e} m"
            )
            predict, official, ratio = f"{t_pred:.2f}", f"{t_ref:.2f}", f"{t_ref / t_pred:.1f}x"
        print(
            f"{task:4} {str(feat.shape):>18} {t_ext:11.2f} {t_head:9.2f} {predict:>11} "
            f"{official:>12} {ratio:>6}  {agree}"
        )
        print(f"     -> 4,000 {task} head evaluations: {4000 * t_head / 1e3:.1f} s")


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mini_cfg = Dinov2Config(
        hidden_size=192,
        num_hidden_layers=6,
        num_attention_heads=3,
        mlp_ratio=2,
        image_size=112,
        patch_size=14,
    )
    model = Dinov2Model(mini_cfg).eval()
    heads = TaskHeads(
        ClsHead(192, 8), SegHead(192, 9), DepthHead(192, n_bins=MiniConfig().n_bins, bn=True), profile="mini"
    )
    samples = {task: mini_samples(task, 1, seed=0)[0] for task in ("cls", "seg", "dpt")}
    run("mini profile (hidden 192, 112 px views)", model, heads, samples, "mini", repeat=40)

    paper_cfg = Dinov2Config(
        hidden_size=64, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=224, patch_size=14
    )
    paper = Dinov2Model(paper_cfg).eval()
    pheads = TaskHeads(ClsHead(64, 1000), SegHead(64, 21), DepthHead(64), profile="paper")
    rng = np.random.default_rng(0)
    from builders.sources import Sample

    psamples = {
        "cls": Sample("cls", rng.integers(0, 256, (375, 500, 3), dtype=np.uint8), 3),
        "seg": Sample(
            "seg",
            rng.integers(0, 256, (375, 500, 3), dtype=np.uint8),
            rng.integers(0, 21, (375, 500)).astype(np.uint8),
        ),
        "dpt": Sample(
            "dpt",
            rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
            rng.uniform(0.5, 9.5, (480, 640)).astype(np.float32),
        ),
    }
    run("paper geometry (random hidden-64 model and heads)", paper, pheads, psamples, "paper", repeat=6)


if __name__ == "__main__":
    main()
