"""Test-time preprocessing of the three tasks and the geometry the heads need to undo it.

The paper profile follows the official DINOv2 evaluations:

- cls: Resize 256 (shorter side, bicubic) + CenterCrop 224 -> one 224 x 224 view (16 x 16 patches + cls
  = 257 tokens).
- seg: mmseg ``Resize(img_scale=(2048, 512), keep_ratio=True)`` then sliding windows of 512 x 512 with stride
  341; each window is centre-padded to a multiple of the patch size (518 x 518 -> 37 x 37 + cls = 1370
  tokens). A VOC image (500 x 375) gives 2 windows.
- dpt: the image as it is plus its horizontal flip, centre-padded to a multiple of the patch size
  (480 x 640 -> 490 x 644 -> 35 x 46 + cls = 1611 tokens).

All views are normalised with the ImageNet mean/std before padding, so padding is zeros in normalised
space (the official ``CenterPadding`` hook). A :class:`Profile` holds these sizes; the mini profile uses
the same operations at 112 px.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Profile:
    """Sizes of the per-task test-time preprocessing (pixels)."""

    name: str = "paper"
    cls_resize: int = 256
    cls_crop: int = 224
    seg_scale: tuple[int, int] = (2048, 512)
    seg_crop: int = 512
    seg_stride: int = 341
    dpt_flip: bool = True

    def to_dict(self) -> dict:
        """JSON-able form (stored with trained heads)."""
        d = asdict(self)
        d["seg_scale"] = list(self.seg_scale)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["seg_scale"] = tuple(d.get("seg_scale", (2048, 512)))
        return cls(**d)


PAPER = Profile()
#: The offline mini profile: 112 px views (8 x 8 patches + cls = 65 tokens per view).
MINI = Profile(name="mini", cls_resize=112, cls_crop=112, seg_scale=(448, 112), seg_crop=112, seg_stride=75)
PROFILES = {"paper": PAPER, "mini": MINI}


def get_profile(profile: Profile | str | None) -> Profile:
    """Resolve a profile name (``paper``/``mini``) or pass a :class:`Profile` through."""
    if profile is None:
        return PAPER
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown preprocessing profile {profile!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[profile]


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an RGB uint8 (H, W, 3) array; ``name`` goes into the error message."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name}: expected an RGB array (H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {arr.dtype}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: empty image of shape {arr.shape}")
    return arr


def normalize(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) normalised with the ImageNet mean/std."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    """(before, after) padding that centres ``size`` in the next multiple of ``multiple``."""
    total = math.ceil(size / multiple) * multiple - size
    return total // 2, total - total // 2


def center_pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the last two axes of ``x`` to multiples of ``multiple``, centred (DINOv2 CenterPadding)."""
    top, bottom = pad_amounts(x.shape[-2], multiple)
    left, right = pad_amounts(x.shape[-1], multiple)
    return F.pad(x, (left, right, top, bottom))


def token_grid(height: int, width: int, patch_size: int) -> tuple[int, int]:
    """Patch grid (rows, columns) of a view of ``height`` x ``width`` after centre padding."""
    return math.ceil(height / patch_size), math.ceil(width / patch_size)


def cls_view(image: np.ndarray, profile: Profile) -> torch.Tensor:
    """(1, 3, crop, crop): shorter side resized to ``cls_resize`` (bicubic), centre crop ``cls_crop``."""
    h, w = image.shape[:2]
    r = profile.cls_resize
    # torchvision's Resize(int) rule: the shorter side gets exactly r, the other int(r * long / short).
    new_h, new_w = (r, int(r * w / h)) if h <= w else (int(r * h / w), r)
    pil = Image.fromarray(image)
    if (new_h, new_w) != (h, w):
        pil = pil.resize((new_w, new_h), Image.Resampling.BICUBIC)
    c = profile.cls_crop
    if c > new_h or c > new_w:
        raise ValueError(f"cls crop {c} larger than the resized image {new_h}x{new_w}")
    # torchvision CenterCrop offsets: int(round((size - crop) / 2)).
    top, left = int(round((new_h - c) / 2.0)), int(round((new_w - c) / 2.0))
    pil = pil.crop((left, top, left + c, top + c))
    return normalize(np.asarray(pil))[None]


@dataclass(frozen=True)
class SegGeometry:
    """Where the seg windows sit: the resized image size and each window's (y1, y2, x1, x2)."""

    image_size: tuple[int, int]
    resized: tuple[int, int]
    windows: tuple[tuple[int, int, int, int], ...]


def seg_geometry(height: int, width: int, profile: Profile) -> SegGeometry:
    """mmseg keep-ratio resize + sliding-window positions for an image of ``height`` x ``width``."""
    long_max, short_max = max(profile.seg_scale), min(profile.seg_scale)
    scale = min(long_max / max(height, width), short_max / min(height, width))
    # mmcv.rescale_size rounds half up.
    rh, rw = int(height * scale + 0.5), int(width * scale + 0.5)
    crop, stride = profile.seg_crop, profile.seg_stride
    h_grids = max(rh - crop + stride - 1, 0) // stride + 1
    w_grids = max(rw - crop + stride - 1, 0) // stride + 1
    windows = []
    for hi in range(h_grids):
        for wi in range(w_grids):
            y2 = min(hi * stride + crop, rh)
            x2 = min(wi * stride + crop, rw)
            windows.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return SegGeometry((height, width), (rh, rw), tuple(windows))


def seg_views(image: np.ndarray, profile: Profile, patch_size: int) -> tuple[torch.Tensor, SegGeometry]:
    """(N, 3, Hp, Wp) padded sliding windows of the resized image, and their geometry."""
    geo = seg_geometry(image.shape[0], image.shape[1], profile)
    rh, rw = geo.resized
    pil = Image.fromarray(image)
    if (rh, rw) != image.shape[:2]:
        pil = pil.resize((rw, rh), Image.Resampling.BILINEAR)
    x = normalize(np.asarray(pil))
    sizes = {(y2 - y1, x2 - x1) for y1, y2, x1, x2 in geo.windows}
    if len(sizes) != 1:
        # Windows of unequal size would give unequal token counts and no (N, C, T, D) tensor.
        raise ValueError(
            f"image of {image.shape[0]}x{image.shape[1]} resizes to {rh}x{rw}, smaller than the "
            f"{profile.seg_crop} px seg window; windows of unequal size {sorted(sizes)}"
        )
    views = [center_pad(x[:, y1:y2, x1:x2], patch_size) for y1, y2, x1, x2 in geo.windows]
    return torch.stack(views), geo


def dpt_views(image: np.ndarray, profile: Profile, patch_size: int) -> torch.Tensor:
    """(N, 3, Hp, Wp): the image and (if ``dpt_flip``) its horizontal flip, normalised and centre-padded."""
    x = normalize(image)
    views = [x, x.flip(-1)] if profile.dpt_flip else [x]
    return center_pad(torch.stack(views), patch_size)
