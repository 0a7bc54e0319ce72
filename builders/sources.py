"""Source data: the images and targets the original features are computed from.

Adapters for local copies of the paper's data (nothing is downloaded):

ImageNet val (``task="cls"``), class-folder layout ``<root>/<wnid>/<file>.JPEG`` (torchvision
``ImageFolder``: class index = position of the wnid among the sorted folder names) or a flat folder
``<root>/<file>.JPEG``. List file: one image per line, ``<file or relative path> [<class index>]``; the last
token is the class index (required for a flat folder, checked against the folder otherwise).

PASCAL VOC2012 val (``task="seg"``), ``<root>/JPEGImages/<name>.jpg`` and the palette masks
``<root>/SegmentationClass/<name>.png`` (class ids 0-20, 255 = ignored border). List file: one name per
line (default ``<root>/ImageSets/Segmentation/val.txt``).

NYUv2 test (``task="dpt"``), either the BTS/DINOv2 split layout, list lines
``<rgb relative path> <depth relative path> [focal]`` with 16-bit PNG depth in millimetres
(e.g. ``bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579``), or a simple layout with list
lines ``<name>`` and files ``<root>/rgb/<name>.{png,jpg}`` + ``<root>/depth/<name>.{npy,png}`` (``.npy``
float metres, ``.png`` uint16 millimetres). Depth 0 = no measurement.

A sample's ``name`` is the image file name without directories and extension (cut at the first '.'),
as the reference scripts name their feature files; names must be unique.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


@dataclass
class Sample:
    """One source item: ``image`` RGB uint8 (H, W, 3); ``target`` the class index (cls), the uint8 (H, W)
    class mask with 255 = ignore (seg) or the float32 (H, W) depth in metres with 0 = no value (dpt)."""

    name: str
    image: np.ndarray
    target: int | np.ndarray


def sample_name(token: str) -> str:
    """The original id of a list-file token: file name without directories, cut at the first '.'."""
    return os.path.basename(token.strip()).split(".", 1)[0]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 (H, W, 3) array of an image file (grey/CMYK/palette images are converted)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: cannot decode image ({exc})") from exc


def read_list(list_file: str | os.PathLike) -> list[list[str]]:
    """Non-empty, non-comment lines of a list file, split on whitespace."""
    path = Path(list_file)
    if not path.is_file():
        raise FileNotFoundError(f"list file not found: {path}")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append(line.split())
    if not rows:
        raise ValueError(f"{path}: list file has no entries")
    return rows


def _check_unique(samples_names: list[str], list_file) -> None:
    seen: set[str] = set()
    for name in samples_names:
        if name in seen:
            raise ValueError(f"{list_file}: name {name!r} appears twice (names must be unique)")
        seen.add(name)


def _limit(rows: list, limit: int | None) -> list:
    return rows if limit is None else rows[: int(limit)]


def load_imagenet(
    root: str | os.PathLike, list_file: str | os.PathLike, *, limit: int | None = None
) -> list[Sample]:
    """ImageNet val samples named in ``list_file`` (see the module docstring for the layouts)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet val folder not found: {root}")
    class_dirs = sorted(p.name for p in root.iterdir() if p.is_dir())
    index: dict[str, tuple[Path, int | None]] = {}
    if class_dirs:
        for ci, wnid in enumerate(class_dirs):
            for entry in os.scandir(root / wnid):
                index[entry.name] = (Path(entry.path), ci)
    rows = _limit(read_list(list_file), limit)
    samples = []
    for lineno, row in enumerate(rows, 1):
        token = row[0]
        listed = int(row[-1]) if len(row) > 1 else None
        direct = root / token
        if direct.is_file():
            path, folder_class = direct, (class_dirs.index(direct.parent.name) if class_dirs else None)
        elif os.path.basename(token) in index:
            path, folder_class = index[os.path.basename(token)]
        else:
            raise FileNotFoundError(f"{list_file}:{lineno}: image {token!r} not found under {root}")
        if listed is None and folder_class is None:
            raise ValueError(f"{list_file}:{lineno}: no class index for {token!r} (flat folder needs one)")
        if listed is not None and folder_class is not None and listed != folder_class:
            raise ValueError(
                f"{list_file}:{lineno}: class index {listed} of {token!r} disagrees with its folder "
                f"{path.parent.name!r} (index {folder_class})"
            )
        samples.append(
            Sample(sample_name(token), read_image(path), int(listed if listed is not None else folder_class))
        )
    _check_unique([s.name for s in samples], list_file)
    return samples


def read_voc_mask(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W) class ids of a VOC ``SegmentationClass`` palette PNG (255 = ignore)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"segmentation mask not found: {path}")
    with Image.open(path) as im:
        if im.mode not in ("P", "L"):
            raise ValueError(f"{path}: expected a palette or grey PNG of class ids, got mode {im.mode}")
        return np.asarray(im, dtype=np.uint8).copy()


def load_voc(
    root: str | os.PathLike, list_file: str | os.PathLike | None = None, *, limit: int | None = None
) -> list[Sample]:
    """VOC2012 val samples (image + class mask) named in ``list_file``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"VOC2012 folder not found: {root}")
    list_file = list_file or root / "ImageSets" / "Segmentation" / "val.txt"
    samples = []
    for lineno, row in enumerate(_limit(read_list(list_file), limit), 1):
        name = sample_name(row[0])
        img_path = root / "JPEGImages" / f"{name}.jpg"
        mask_path = root / "SegmentationClass" / f"{name}.png"
        for p in (img_path, mask_path):
            if not p.is_file():
                raise FileNotFoundError(f"{list_file}:{lineno}: {p} not found for {name!r}")
        image, mask = read_image(img_path), read_voc_mask(mask_path)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"{mask_path}: mask {mask.shape} does not match image {image.shape[:2]}")
        samples.append(Sample(name, image, mask))
    _check_unique([s.name for s in samples], list_file)
    return samples


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """float32 (H, W) depth in metres from ``.npy`` (metres) or a 16-bit ``.png`` (millimetres)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"depth map not found: {path}")
    if path.suffix == ".npy":
        depth = np.load(path).astype(np.float32)
    else:
        with Image.open(path) as im:
            mode = im.mode
            raw = np.asarray(im)
        if mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(f"{path}: expected a 16-bit depth PNG in millimetres, got mode {mode}")
        depth = raw.astype(np.float32) / 1000.0
    if depth.ndim != 2:
        raise ValueError(f"{path}: depth map must be 2-D, got shape {depth.shape}")
    return depth


def _find(folder: Path, name: str, exts: tuple[str, ...]) -> Path | None:
    for ext in exts:
        if (folder / f"{name}{ext}").is_file():
            return folder / f"{name}{ext}"
    return None


def load_nyu(
    root: str | os.PathLike, list_file: str | os.PathLike, *, limit: int | None = None
) -> list[Sample]:
    """NYUv2 test samples (image + depth in metres) named in ``list_file``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"NYUv2 folder not found: {root}")
    samples = []
    for lineno, row in enumerate(_limit(read_list(list_file), limit), 1):
        if len(row) >= 2:
            img_path, depth_path = root / row[0], root / row[1]
        else:
            name = sample_name(row[0])
            img_path = _find(root / "rgb", name, (".png", ".jpg", ".jpeg"))
            depth_path = _find(root / "depth", name, (".npy", ".png"))
            if img_path is None or depth_path is None:
                raise FileNotFoundError(
                    f"{list_file}:{lineno}: rgb/depth files for {name!r} not found under {root}"
                )
        for p in (img_path, depth_path):
            if not p.is_file():
                raise FileNotFoundError(f"{list_file}:{lineno}: {p} not found")
        image, depth = read_image(img_path), read_depth(depth_path)
        if depth.shape != image.shape[:2]:
            raise ValueError(f"{depth_path}: depth {depth.shape} does not match image {image.shape[:2]}")
        samples.append(Sample(sample_name(row[0]), image, depth))
    _check_unique([s.name for s in samples], list_file)
    return samples


def load_samples(
    task: str,
    root: str | os.PathLike,
    list_file: str | os.PathLike | None = None,
    *,
    limit: int | None = None,
) -> list[Sample]:
    """The samples of ``task`` from a local copy of its paper source (ImageNet val, VOC2012 val, NYUv2 test).

    ``list_file`` names the selected items (100 in the paper), in order; ``limit`` keeps the first ones.
    """
    if task == "cls":
        if list_file is None:
            raise ValueError("cls needs a list file of the selected ImageNet val images")
        return load_imagenet(root, list_file, limit=limit)
    if task == "seg":
        return load_voc(root, list_file, limit=limit)
    if task == "dpt":
        if list_file is None:
            raise ValueError("dpt needs a list file of the selected NYUv2 test images")
        return load_nyu(root, list_file, limit=limit)
    raise ValueError(f"unknown task {task!r}; expected cls, seg or dpt")


def skimage_samples() -> list[Sample]:
    """Real photographs that scikit-image ships, as an extra real-image check (no download).

    cls targets are -1 (no ImageNet label), so use them for predictions, not ranks; the
    ``stereo_motorcycle`` left view comes as a ``dpt`` sample whose target is relative depth
    (1 / disparity, scaled to a 10 m maximum; 0 where the disparity is unknown).
    """
    from skimage import data

    samples = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "cat"):
        loader = getattr(data, name, None)
        if loader is None:
            continue
        img = np.asarray(loader())
        if img.ndim == 3 and img.shape[2] == 3:
            samples.append(Sample(name, img.astype(np.uint8), -1))
    try:
        left, _, disp = data.stereo_motorcycle()
    except Exception:  # the stereo pair is fetched by pooch in some scikit-image builds
        return samples
    disp = np.asarray(disp, dtype=np.float32)
    valid = np.isfinite(disp) & (disp > 0)
    depth = np.zeros_like(disp)
    depth[valid] = 1.0 / disp[valid]
    if valid.any():
        depth[valid] *= 10.0 / depth[valid].max()
    samples.append(Sample("stereo_motorcycle", np.asarray(left, dtype=np.uint8), depth))
    return samples
