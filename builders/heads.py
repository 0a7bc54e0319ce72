"""Task heads applied to (possibly decompressed) features, the same way on originals and compressed ones.

The designs are the official DINOv2 ones (facebookresearch/dinov2 ``hub/classifiers.py``,
``hub/depthers.py``, ``hub/depth/decode_heads.py``, ``eval/segmentation`` BNHead):

- cls: ``Linear(2 D, K)`` on [final-norm cls token, mean of the final-norm patch tokens].
- seg: final norm -> ``BatchNorm2d(D)`` -> 1x1 conv to K classes over the patch grid of each window; the
  window logits are resized to the window, averaged where windows overlap (mmseg slide inference), resized
  to the original image and arg-maxed.
- dpt ("linear4"): per block the patch map and its cls token broadcast over it (C = D * blocks * 2), NO
  final norm, a 1x1 conv into ``n_bins`` uniform depth bins, upsample 4, "linear" bin normalisation
  (ReLU + 0.1, divide by the sum), expected depth, clamp to [min_depth, max_depth], resize to the image;
  the flipped view is flipped back and the views are averaged.

The 1x1 convolutions run on the token grid and their logits are upsampled afterwards: bilinear resizing
is linear with weights summing to one, so this equals the official upsample-then-conv order while
costing a fraction (a 12,288-channel map is never upsampled).

:class:`TaskHeads` bundles the three heads with the preprocessing profile, so the geometry of the views
is recomputed from the target's shape, and is saved to / loaded from one ``.safetensors`` file.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from builders import labels
from builders.preprocess import Profile, get_profile, seg_geometry, token_grid

FORMAT = "cfqa-heads/1"


@functools.lru_cache(maxsize=256)
def _interp_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of 1-D linear interpolation (``align_corners=False``)."""
    # Cached across calls: build a normal tensor even when first called in inference mode, so that
    # training (autograd) can use it later in the same process.
    with torch.inference_mode(False), torch.no_grad():
        eye = torch.eye(n_in, dtype=torch.float32)[None]
        return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T.contiguous()


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``) of the last two axes, as two small matrix products.

    Equal to ``F.interpolate(x, size, mode="bilinear", align_corners=False)`` (bilinear is separable)
    but several times faster for many-channel maps on CPU.
    """
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    # Dense interpolation matrices cost ~(h * w / H + h) multiply-adds per output: worth it only for
    # small inputs (token grids); large maps (a whole seg canvas) go through F.interpolate.
    if h * w / size[0] + h > 24:
        return F.interpolate(
            x if x.ndim == 4 else x[None], size=tuple(size), mode="bilinear", align_corners=False
        ).reshape(*x.shape[:-2], *size)
    return torch.matmul(_interp_matrix(h, int(size[0])), torch.matmul(x, _interp_matrix(w, int(size[1])).T))


class ClsHead(nn.Module):
    """DINOv2 1-layer linear classifier on [norm(cls), mean(norm(patches))]."""

    def __init__(self, dim: int, num_classes: int = 1000, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.linear = nn.Linear(2 * dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, D) pre-norm tokens -> (B, K) logits."""
        x = self.norm(tokens)
        return self.linear(torch.cat([x[:, 0], x[:, 1:].mean(dim=1)], dim=-1))


class SegHead(nn.Module):
    """Linear BNHead: final norm -> BatchNorm2d -> 1x1 conv on the patch tokens (cls token dropped)."""

    def __init__(self, dim: int, num_classes: int = 21, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.bn = nn.BatchNorm2d(dim)
        self.conv_seg = nn.Conv2d(dim, num_classes, kernel_size=1)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, T, D) pre-norm tokens of windows with a ``grid`` patch grid -> (B, K, gh, gw) logits."""
        b, _, d = tokens.shape
        x = self.norm(tokens)[:, 1:].transpose(1, 2).reshape(b, d, grid[0], grid[1])
        return self.conv_seg(self.bn(x))


class DepthHead(nn.Module):
    """Linear depth BNHead (classify into uniform bins) over ``layers`` blocks' patch + cls tokens.

    ``bn=False`` is the official hub head (its BatchNorm is commented out there); the mini profile
    trains with ``bn=True`` because raw block outputs of a small model have very unequal scales.
    """

    def __init__(
        self,
        dim: int,
        layers: int = 4,
        n_bins: int = 256,
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
        upsample: int = 4,
        bn: bool = False,
    ) -> None:
        super().__init__()
        self.dim, self.layers, self.n_bins = dim, layers, n_bins
        self.min_depth, self.max_depth, self.upsample = float(min_depth), float(max_depth), int(upsample)
        channels = dim * layers * 2
        self.bn = nn.BatchNorm2d(channels) if bn else None
        self.conv_depth = nn.Conv2d(channels, n_bins, kernel_size=1)
        self.register_buffer("bins", torch.linspace(self.min_depth, self.max_depth, n_bins), persistent=False)

    def logits(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, L, T, D) pre-norm tokens -> (B, n_bins, gh, gw) bin logits on the token grid."""
        if self.training and self.bn is not None:
            return self._logits_explicit(tokens, grid)
        b, nl, _, d = tokens.shape
        # Weights per input channel; channel order of the official head: per block [patch map, cls map].
        weight = self.conv_depth.weight.reshape(self.n_bins, nl, 2, d)
        bias = self.conv_depth.bias
        if self.bn is not None:
            # Eval-mode BatchNorm is a per-channel affine map: fold it into the 1x1 conv.
            scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
            shift = self.bn.bias - self.bn.running_mean * scale
            bias = bias + self.conv_depth.weight.flatten(1) @ shift
            weight = weight * scale.reshape(1, nl, 2, d)
        # The cls map is constant over the grid: its share of the conv is one vector per view.
        patch = tokens[:, :, 1:].permute(0, 2, 1, 3).reshape(b, -1, nl * d)
        out = patch @ weight[:, :, 0].reshape(self.n_bins, nl * d).T
        out = (
            out
            + (tokens[:, :, 0].reshape(b, nl * d) @ weight[:, :, 1].reshape(self.n_bins, nl * d).T + bias)[
                :, None
            ]
        )
        return out.transpose(1, 2).reshape(b, self.n_bins, grid[0], grid[1])

    def _logits_explicit(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """The official computation with the cls map materialised (training: BatchNorm batch statistics)."""
        b, nl, _, d = tokens.shape
        patch = tokens[:, :, 1:].permute(0, 1, 3, 2).reshape(b, nl, d, grid[0], grid[1])
        cls = tokens[:, :, 0, :, None, None].expand(b, nl, d, grid[0], grid[1])
        x = torch.stack([patch, cls], dim=2).reshape(b, nl * 2 * d, grid[0], grid[1])
        if self.bn is not None:
            x = self.bn(x)
        return self.conv_depth(x)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, L, T, D) -> (B, 1, gh * upsample, gw * upsample) depth in metres (clamped)."""
        logit = resize(self.logits(tokens, grid), (grid[0] * self.upsample, grid[1] * self.upsample))
        b, k, h, w = logit.shape
        if logit.requires_grad:
            prob = torch.relu(logit) + 0.1
        else:
            # In place: fresh multi-megabyte buffers cost more than the arithmetic (page faults).
            prob = logit.relu_().add_(0.1)
        prob = prob.reshape(b, k, h * w)
        # Expected depth over the bins: sum(p * bins) / sum(p) ("linear" normalisation).
        depth = (self.bins @ prob) / prob.sum(dim=1)
        return depth.reshape(b, 1, h, w).clamp(self.min_depth, self.max_depth)


def _as_tensor(feature: np.ndarray | torch.Tensor, task: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(feature, dtype=np.float32)) if not torch.is_tensor(feature) else feature
    if x.ndim != 4:
        raise ValueError(f"{task} feature must be 4-D (N, C, T, D), got shape {tuple(x.shape)}")
    return x.float()


class TaskHeads:
    """The three task heads plus the preprocessing profile they assume.

    ``task_value(task, feature, target)`` gives ``{"raw": float, "raw_ce": float | None}``:
    cls raw = 1-based rank of the true class, raw_ce = its cross-entropy; seg raw = mIoU x 100;
    dpt raw = RMSE. The final norm is applied inside (cls/seg), as the spec says.
    """

    def __init__(
        self,
        cls: ClsHead | None = None,
        seg: SegHead | None = None,
        dpt: DepthHead | None = None,
        *,
        profile: Profile | str | None = None,
        patch_size: int = 14,
        ignore_index: int = 255,
        meta: dict | None = None,
    ) -> None:
        self.heads: dict[str, nn.Module | None] = {"cls": cls, "seg": seg, "dpt": dpt}
        for head in self.heads.values():
            if head is not None:
                head.eval()
        self.profile = get_profile(profile)
        self.patch_size = int(patch_size)
        self.ignore_index = int(ignore_index)
        self.meta = dict(meta or {})

    # -- geometry and validation -------------------------------------------------------------------
    def _head(self, task: str) -> nn.Module:
        if task not in self.heads:
            raise ValueError(f"unknown task {task!r}; expected one of {tuple(self.heads)}")
        head = self.heads[task]
        if head is None:
            raise ValueError(f"these heads have no {task} head")
        return head

    def _check(self, task: str, x: torch.Tensor, n: int, c: int, grid: tuple[int, int], dim: int) -> None:
        want = (n, c, grid[0] * grid[1] + 1, dim)
        if tuple(x.shape) != want:
            raise ValueError(
                f"{task} feature of shape {tuple(x.shape)} does not match the head: expected {want} "
                f"(views, blocks, patch grid {grid[0]}x{grid[1]} + cls, width)"
            )

    # -- predictions ------------------------------------------------------------------------------
    @torch.inference_mode()
    def cls_logits(self, feature: np.ndarray | torch.Tensor) -> np.ndarray:
        """(K,) float64 logits of a (1, 1, T, D) cls feature."""
        head = self._head("cls")
        x = _as_tensor(feature, "cls")
        side = self.profile.cls_crop
        self._check("cls", x, 1, 1, token_grid(side, side, self.patch_size), head.norm.normalized_shape[0])
        return head(x[:, 0]).double().numpy()[0]

    @torch.inference_mode()
    def seg_predict(self, feature: np.ndarray | torch.Tensor, image_size: tuple[int, int]) -> np.ndarray:
        """(H, W) int64 class map of the image of ``image_size`` whose seg feature is ``feature``."""
        head = self._head("seg")
        x = _as_tensor(feature, "seg")
        geo = seg_geometry(int(image_size[0]), int(image_size[1]), self.profile)
        y1, y2, x1, x2 = geo.windows[0]
        grid = token_grid(y2 - y1, x2 - x1, self.patch_size)
        self._check("seg", x, len(geo.windows), 1, grid, head.norm.normalized_shape[0])
        logits = head(x[:, 0], grid)
        rh, rw = geo.resized
        acc = torch.zeros((logits.shape[1], rh, rw))
        count = torch.zeros((1, rh, rw))
        for i, (y1, y2, x1, x2) in enumerate(geo.windows):
            acc[:, y1:y2, x1:x2] += resize(logits[i], (y2 - y1, x2 - x1))
            count[:, y1:y2, x1:x2] += 1
        acc = acc / count
        acc = resize(acc, tuple(image_size))
        # numpy's arg-max over the class axis is several times faster than torch's on CPU.
        return np.argmax(acc.numpy(), axis=0)

    @torch.inference_mode()
    def dpt_predict(self, feature: np.ndarray | torch.Tensor, image_size: tuple[int, int]) -> np.ndarray:
        """(H, W) float32 depth (metres) of the image of ``image_size`` whose dpt feature is ``feature``."""
        head = self._head("dpt")
        x = _as_tensor(feature, "dpt")
        h, w = int(image_size[0]), int(image_size[1])
        grid = token_grid(h, w, self.patch_size)
        views = 2 if self.profile.dpt_flip else 1
        self._check("dpt", x, views, head.layers, grid, head.dim)
        depth = head(x, grid)
        # The official depther resizes the padded grid's prediction to the unpadded image size.
        depth = resize(depth, (h, w))[:, 0]
        if views == 2:
            depth = torch.stack([depth[0], depth[1].flip(-1)])
        return depth.mean(dim=0).numpy().astype(np.float32)

    def predict(
        self, task: str, feature: np.ndarray | torch.Tensor, image_size: tuple[int, int] | None = None
    ):
        """cls logits, seg class map or dpt depth map; seg/dpt need the original ``image_size`` (H, W)."""
        if task == "cls":
            return self.cls_logits(feature)
        if image_size is None:
            raise ValueError(f"{task} predictions need the original image size (H, W)")
        return (
            self.seg_predict(feature, image_size) if task == "seg" else self.dpt_predict(feature, image_size)
        )

    def task_value(self, task: str, feature: np.ndarray | torch.Tensor, target) -> dict:
        """``{"raw": float, "raw_ce": float | None}`` of ``feature`` against ``target``.

        ``target``: the true class index (cls), the (H, W) class mask with 255 = ignore (seg) or the
        (H, W) depth in metres with 0 = no measurement (dpt).
        """
        if task == "cls":
            logits = self.cls_logits(feature)
            return {
                "raw": float(labels.cls_rank(logits, int(target))),
                "raw_ce": labels.cls_ce(logits, int(target)),
            }
        target = np.asarray(target)
        if target.ndim != 2:
            raise ValueError(f"{task} target must be a 2-D (H, W) map, got shape {target.shape}")
        if task == "seg":
            pred = self.seg_predict(feature, target.shape)
            k = self._head("seg").conv_seg.out_channels
            return {
                "raw": labels.seg_miou(pred, target, num_classes=k, ignore_index=self.ignore_index),
                "raw_ce": None,
            }
        if task == "dpt":
            pred = self.dpt_predict(feature, target.shape)
            return {"raw": labels.depth_rmse(pred, target), "raw_ce": None}
        raise ValueError(f"unknown task {task!r}; expected one of {tuple(self.heads)}")

    # -- persistence ------------------------------------------------------------------------------
    def _specs(self) -> dict[str, dict | None]:
        specs: dict[str, dict | None] = {}
        for task, head in self.heads.items():
            if head is None:
                specs[task] = None
            elif isinstance(head, ClsHead):
                specs[task] = {
                    "dim": head.norm.normalized_shape[0],
                    "num_classes": head.linear.out_features,
                    "eps": head.norm.eps,
                }
            elif isinstance(head, SegHead):
                specs[task] = {
                    "dim": head.norm.normalized_shape[0],
                    "num_classes": head.conv_seg.out_channels,
                    "eps": head.norm.eps,
                }
            else:
                specs[task] = {
                    "dim": head.dim,
                    "layers": head.layers,
                    "n_bins": head.n_bins,
                    "min_depth": head.min_depth,
                    "max_depth": head.max_depth,
                    "upsample": head.upsample,
                    "bn": head.bn is not None,
                }
        return specs

    def save(self, path: str | os.PathLike) -> Path:
        """Write all heads and their configuration to one ``.safetensors`` file (atomic)."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {}
        for task, head in self.heads.items():
            if head is not None:
                for key, value in head.state_dict().items():
                    tensors[f"{task}.{key}"] = value.detach().contiguous().clone()
        config = {
            "format": FORMAT,
            "profile": self.profile.to_dict(),
            "patch_size": self.patch_size,
            "ignore_index": self.ignore_index,
            "heads": self._specs(),
            "meta": self.meta,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"cfqa_heads": json.dumps(config, sort_keys=True)})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


_BUILDERS = {"cls": ClsHead, "seg": SegHead, "dpt": DepthHead}


def load(path: str | os.PathLike) -> TaskHeads:
    """Load :class:`TaskHeads` written by :meth:`TaskHeads.save`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task heads file not found: {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if "cfqa_heads" not in meta:
            raise ValueError(f"{path}: not a CFQA task-heads file (no 'cfqa_heads' metadata)")
        config = json.loads(meta["cfqa_heads"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if config.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported heads format {config.get('format')!r}, expected {FORMAT!r}")
    heads = {}
    for task, spec in config["heads"].items():
        if spec is None:
            heads[task] = None
            continue
        head = _BUILDERS[task](**spec)
        state = {k[len(task) + 1 :]: v for k, v in tensors.items() if k.startswith(task + ".")}
        head.load_state_dict(state)
        heads[task] = head
    return TaskHeads(
        **heads,
        profile=Profile.from_dict(config["profile"]),
        patch_size=config["patch_size"],
        ignore_index=config["ignore_index"],
        meta=config.get("meta"),
    )


# -- official DINOv2 head checkpoints -------------------------------------------------------------------


def _read_checkpoint(path: str | os.PathLike, trust: bool) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"head checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as exc:  # the unpickler raises several types; name the file either way
        raise ValueError(
            f"{path}: cannot be read as a weights-only torch checkpoint ({exc.__class__.__name__}: {exc}); "
            "pass trust_checkpoint=True for a file from a trusted source"
        ) from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(ckpt).__name__}")
    if "state_dict" in ckpt and isinstance(ckpt["state_dict"], dict):
        ckpt = ckpt["state_dict"]
    return ckpt


def _take(state: dict, path, keys: dict[str, tuple[int, ...] | None]) -> dict[str, torch.Tensor]:
    out = {}
    for key, shape in keys.items():
        if key not in state:
            raise ValueError(f"{path}: key {key!r} missing (found {sorted(state)[:8]}...)")
        value = state[key]
        if shape is not None and tuple(value.shape) != shape:
            raise ValueError(f"{path}: {key!r} has shape {tuple(value.shape)}, expected {shape}")
        out[key] = value.float() if value.is_floating_point() else value
    return out


def _copy_norm(norm: nn.LayerNorm, model) -> None:
    norm.load_state_dict(model.layernorm.state_dict())
    norm.eps = model.layernorm.eps


def official_cls_head(path: str | os.PathLike, model, *, trust_checkpoint: bool = False) -> ClsHead:
    """``dinov2_vit*14_linear_head.pth`` (plain state dict ``weight`` (K, 2D), ``bias`` (K,)).

    The final norm comes from ``model.layernorm``.
    """
    state = _read_checkpoint(path, trust_checkpoint)
    d = model.config.hidden_size
    k = state["weight"].shape[0] if "weight" in state else 1000
    w = _take(state, path, {"weight": (k, 2 * d), "bias": (k,)})
    head = ClsHead(d, k, eps=model.config.layer_norm_eps)
    head.linear.load_state_dict({"weight": w["weight"], "bias": w["bias"]})
    _copy_norm(head.norm, model)
    return head.eval()


def official_seg_head(path: str | os.PathLike, model, *, trust_checkpoint: bool = False) -> SegHead:
    """``dinov2_vit*14_voc2012_linear_head.pth`` (mmseg checkpoint, ``decode_head.{bn,conv_seg}.*``)."""
    state = _read_checkpoint(path, trust_checkpoint)
    d = model.config.hidden_size
    k = state["decode_head.conv_seg.weight"].shape[0] if "decode_head.conv_seg.weight" in state else 21
    p = "decode_head."
    w = _take(
        state,
        path,
        {
            p + "conv_seg.weight": (k, d, 1, 1),
            p + "conv_seg.bias": (k,),
            p + "bn.weight": (d,),
            p + "bn.bias": (d,),
            p + "bn.running_mean": (d,),
            p + "bn.running_var": (d,),
        },
    )
    head = SegHead(d, k, eps=model.config.layer_norm_eps)
    head.conv_seg.load_state_dict({"weight": w[p + "conv_seg.weight"], "bias": w[p + "conv_seg.bias"]})
    bn = {name: w[p + "bn." + name] for name in ("weight", "bias", "running_mean", "running_var")}
    bn["num_batches_tracked"] = state.get(p + "bn.num_batches_tracked", torch.tensor(0))
    head.bn.load_state_dict(bn)
    _copy_norm(head.norm, model)
    return head.eval()


def official_dpt_head(path: str | os.PathLike, model, *, trust_checkpoint: bool = False) -> DepthHead:
    """``dinov2_vit*14_nyu_linear4_head.pth`` (``state_dict`` with ``decode_head.conv_depth.*``).

    Like the hub's depther (which builds the head without BatchNorm and loads non-strictly), any other
    key in the checkpoint is ignored.
    """
    state = _read_checkpoint(path, trust_checkpoint)
    d = model.config.hidden_size
    p = "decode_head.conv_depth."
    n_bins = state[p + "weight"].shape[0] if p + "weight" in state else 256
    w = _take(state, path, {p + "weight": (n_bins, d * 4 * 2, 1, 1), p + "bias": (n_bins,)})
    head = DepthHead(d, layers=4, n_bins=n_bins, min_depth=1e-3, max_depth=10.0, upsample=4, bn=False)
    head.conv_depth.load_state_dict({"weight": w[p + "weight"], "bias": w[p + "bias"]})
    return head.eval()


def official_heads(
    model,
    *,
    cls_head: str | os.PathLike | None = None,
    seg_head: str | os.PathLike | None = None,
    dpt_head: str | os.PathLike | None = None,
    profile: Profile | str | None = "paper",
    trust_checkpoint: bool = False,
) -> TaskHeads:
    """:class:`TaskHeads` from the official DINOv2 head checkpoints (local files) for ``model``."""
    kw = {"trust_checkpoint": trust_checkpoint}
    return TaskHeads(
        cls=official_cls_head(cls_head, model, **kw) if cls_head else None,
        seg=official_seg_head(seg_head, model, **kw) if seg_head else None,
        dpt=official_dpt_head(dpt_head, model, **kw) if dpt_head else None,
        profile=profile,
        patch_size=int(model.config.patch_size),
        meta={
            "source": "official",
            "cls_head": str(cls_head),
            "seg_head": str(seg_head),
            "dpt_head": str(dpt_head),
        },
    )
