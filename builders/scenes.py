"""Seeded procedural scenes with a known class, per-pixel segmentation and per-pixel depth.

A scene is a room seen by a pinhole camera (focal length = image height in pixels, 1.5 m above a floor, a
back wall 7-10 m away). 1-4 flat objects stand on the floor: a large main object 2-4.5 m away and smaller
distractors behind it; each is one of 8 classes = 4 shapes (disk, square, triangle, cross) x 2 textures
(stripes, checker), coloured in the class's hue. Apparent size, floor contact row, texture period and haze
all follow the depth, so depth is learnable from one image; objects are painted far to near (painter's
occlusion). The image's class is the class with the most visible pixels. Segmentation ids: 0 = background,
class + 1 for objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("disk", "square", "triangle", "cross")
TEXTURES = ("stripes", "checker")
CLASS_NAMES = tuple(f"{s}-{t}" for s in SHAPES for t in TEXTURES)
NUM_CLASSES = len(CLASS_NAMES)
#: Segmentation classes: background + one per object class.
SEG_CLASSES = NUM_CLASSES + 1
CAMERA_HEIGHT = 1.5
MIN_DEPTH = 2.0
HAZE = np.array([0.75, 0.78, 0.82])


@dataclass
class Scene:
    """One rendered scene: RGB uint8 image, class index, seg ids (uint8) and depth in metres (float32)."""

    image: np.ndarray
    label: int
    seg: np.ndarray
    depth: np.ndarray


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of a unit shape in local coordinates u, v in [-1, 1] (v grows downwards)."""
    au, av = np.abs(u), np.abs(v)
    if kind == "disk":
        return u * u + v * v <= 1.0
    if kind == "square":
        return (au <= 0.85) & (av <= 0.85)
    if kind == "triangle":
        return (v <= 0.9) & (au <= (v + 1.0) / 1.9)
    return ((au <= 0.32) & (av <= 0.95)) | ((av <= 0.32) & (au <= 0.95))


def _texture(
    kind: str, x: np.ndarray, y: np.ndarray, period: float, angle: float, phase: float
) -> np.ndarray:
    """Binary texture (bool) in pixel coordinates, ``period`` pixels per cycle."""
    c, s = np.cos(angle), np.sin(angle)
    a = (x * c + y * s) / period + phase
    if kind == "stripes":
        return (a % 1.0) < 0.5
    b = (-x * s + y * c) / period + phase
    return (np.floor(a * 2.0) + np.floor(b * 2.0)) % 2 == 0


def _hsv(h: float, sat: float, val: float) -> np.ndarray:
    """RGB in [0, 1] of a hue in turns and a saturation/value in [0, 1]."""
    from matplotlib.colors import hsv_to_rgb

    return hsv_to_rgb([h % 1.0, sat, val]).astype(np.float32)


def _colour_pair(rng: np.random.Generator, cls: int) -> tuple[np.ndarray, np.ndarray]:
    """Light and dark colour of an object: the hue belongs to the class (8 hues, +-0.03 turn jitter).

    A class-tied hue lets a small ViT trained for minutes on CPU name the objects; shape and texture
    still separate the classes too and carry the seg boundaries.
    """
    hue = cls / NUM_CLASSES + rng.uniform(-0.03, 0.03)
    light = _hsv(hue, rng.uniform(0.55, 0.95), rng.uniform(0.65, 0.95))
    dark = _hsv(hue + rng.uniform(-0.02, 0.02), rng.uniform(0.4, 0.9), rng.uniform(0.15, 0.4))
    return light, dark


def render_scene(
    rng: np.random.Generator, height: int = 112, width: int = 112, max_objects: int = 4
) -> Scene:
    """Render one scene of ``height`` x ``width`` pixels with 1..``max_objects`` objects."""
    f = float(height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + np.float32(0.5)
    horizon = rng.uniform(0.25, 0.45) * height
    wall = rng.uniform(7.0, 10.0)
    below = yy > horizon
    floor_z = np.where(below, CAMERA_HEIGHT * f / np.maximum(yy - horizon, 1e-6), np.inf)
    depth = np.minimum(floor_z, wall)
    is_floor = floor_z < wall

    # Floor: checker tiles fixed in world coordinates (perspective cue); wall: smooth shading.
    # Greyish room colours, so that the saturated objects stand out.
    wall_col = _hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.45, 0.9))
    floor_col = _hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.35, 0.85))
    world_x = (xx - width / 2) * depth / f
    tiles = (np.floor(world_x / 0.6) + np.floor(depth / 0.6)) % 2
    floor_rgb = floor_col * (0.85 + 0.15 * tiles)[..., None]
    grad = 0.85 + 0.15 * np.cos(xx / width * np.pi * rng.uniform(0.5, 2.0) + rng.uniform(0, 6.3))
    wall_rgb = wall_col * grad[..., None]
    rgb = np.where(is_floor[..., None], floor_rgb, wall_rgb)
    seg = np.zeros((height, width), dtype=np.uint8)

    n = int(rng.integers(1, max_objects + 1))
    objects = []
    # The first object is the main one: near and large, so that the image has a class one can name
    # (like an ImageNet photo); the others are smaller distractors behind it, for seg and depth.
    main_z = rng.uniform(MIN_DEPTH, 4.5)
    for i in range(n):
        cls = int(rng.integers(NUM_CLASSES))
        objects.append(
            {
                "cls": cls,
                "z": main_z if i == 0 else rng.uniform(min(main_z + 0.5, wall - 0.5), wall - 0.5),
                "size": rng.uniform(1.0, 1.6) if i == 0 else rng.uniform(0.5, 1.0),
                "cx": rng.uniform(0.25, 0.75) * width if i == 0 else rng.uniform(0.05, 0.95) * width,
                "angle": rng.uniform(0, np.pi),
                "phase": rng.uniform(0, 1),
                "colours": _colour_pair(rng, cls),
            }
        )
    for ob in sorted(objects, key=lambda o: -o["z"]):
        z, half = ob["z"], ob["size"] * f / ob["z"] / 2.0
        cy = horizon + CAMERA_HEIGHT * f / z - half
        # Work on the object's bounding box only: most of the frame is untouched.
        r0, r1 = max(int(cy - half) - 1, 0), min(int(cy + half) + 2, height)
        c0, c1 = max(int(ob["cx"] - half) - 1, 0), min(int(ob["cx"] + half) + 2, width)
        if r0 >= r1 or c0 >= c1:
            continue
        bx, by = xx[r0:r1, c0:c1] - ob["cx"], yy[r0:r1, c0:c1] - cy
        shape, texture = SHAPES[ob["cls"] // 2], TEXTURES[ob["cls"] % 2]
        mask = _shape_mask(shape, bx / half, by / half)
        period = max(0.14 * f / z, 2.5)
        tex = _texture(texture, bx, by, period, ob["angle"], ob["phase"])
        col_a, col_b = ob["colours"]
        rgb[r0:r1, c0:c1][mask] = np.where(tex[mask][:, None], col_a, col_b)
        seg[r0:r1, c0:c1][mask] = ob["cls"] + 1
        depth[r0:r1, c0:c1][mask] = z

    haze = np.clip(depth / 10.0, 0, 1)[..., None] * 0.45
    rgb = rgb * (1 - haze) + HAZE * haze
    rgb = rgb + rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(0.02)
    image = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    counts = np.bincount(seg.ravel(), minlength=SEG_CLASSES)[1:]
    label = int(np.argmax(counts))
    return Scene(image=image, label=label, seg=seg, depth=depth.astype(np.float32))


def generate_scenes(
    n: int, seed: int, *, height: int = 112, width: int = 112, stream: int = 0
) -> list[Scene]:
    """``n`` scenes from the random stream (``seed``, ``stream``); distinct streams never share scenes."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))
    return [render_scene(rng, height, width) for _ in range(n)]


def stack_scenes(scenes: list[Scene]) -> dict[str, np.ndarray]:
    """Arrays: ``image`` (n, H, W, 3) uint8, ``label`` (n,) int64, ``seg`` (n, H, W) uint8, ``depth``."""
    return {
        "image": np.stack([s.image for s in scenes]),
        "label": np.array([s.label for s in scenes], dtype=np.int64),
        "seg": np.stack([s.seg for s in scenes]),
        "depth": np.stack([s.depth for s in scenes]),
    }
