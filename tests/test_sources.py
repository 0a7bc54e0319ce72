"""Source-data adapters on fabricated local folders (builders.sources)."""

import numpy as np
import pytest
from PIL import Image

from builders import sources


def _jpeg(path, h=20, w=30, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


@pytest.fixture
def imagenet(tmp_path):
    root = tmp_path / "val"
    for i, wnid in enumerate(["n01440764", "n01443537", "n01484850"]):
        _jpeg(root / wnid / f"ILSVRC2012_val_0000000{i + 1}.JPEG", seed=i)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "n01484850" / "ILSVRC2012_val_00000009.JPEG")
    return root


def test_imagenet_class_folders(imagenet, tmp_path):
    lst = tmp_path / "cls.txt"
    lst.write_text(
        "ILSVRC2012_val_00000002.JPEG 1\nILSVRC2012_val_00000003.JPEG\nILSVRC2012_val_00000009.JPEG 2\n"
    )
    samples = sources.load_samples("cls", imagenet, lst)
    assert [s.name for s in samples] == [
        "ILSVRC2012_val_00000002",
        "ILSVRC2012_val_00000003",
        "ILSVRC2012_val_00000009",
    ]
    assert [s.target for s in samples] == [1, 2, 2]
    assert samples[0].image.shape == (20, 30, 3) and samples[0].image.dtype == np.uint8
    assert samples[2].image.shape == (10, 10, 3)  # a grey JPEG comes back as RGB
    assert len(sources.load_samples("cls", imagenet, lst, limit=1)) == 1


def test_imagenet_errors(imagenet, tmp_path):
    lst = tmp_path / "cls.txt"
    lst.write_text("ILSVRC2012_val_00000002.JPEG 0\n")
    with pytest.raises(ValueError, match="disagrees"):
        sources.load_samples("cls", imagenet, lst)
    lst.write_text("ILSVRC2012_val_00000077.JPEG 0\n")
    with pytest.raises(FileNotFoundError, match="cls.txt:1.*00000077"):
        sources.load_samples("cls", imagenet, lst)
    with pytest.raises(FileNotFoundError, match="list file"):
        sources.load_samples("cls", imagenet, tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="folder"):
        sources.load_samples("cls", tmp_path / "nowhere", lst)


def test_imagenet_flat_folder(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    _jpeg(root / "a.JPEG")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "b.png")
    (root / "broken.JPEG").write_bytes(b"not an image")
    lst = tmp_path / "flat.txt"
    lst.write_text("a.JPEG 417\nb.png 3\n")
    assert [s.target for s in sources.load_samples("cls", root, lst)] == [417, 3]
    lst.write_text("a.JPEG\n")
    with pytest.raises(ValueError, match="no class index"):
        sources.load_samples("cls", root, lst)
    lst.write_text("broken.JPEG 1\n")
    with pytest.raises(ValueError, match="broken.JPEG: cannot decode"):
        sources.load_samples("cls", root, lst)


def test_voc(tmp_path):
    root = tmp_path / "VOC2012"
    names = ["2007_000033", "2007_000042"]
    for i, name in enumerate(names):
        _jpeg(root / "JPEGImages" / f"{name}.jpg", h=12, w=16, seed=i)
        mask = np.zeros((12, 16), np.uint8)
        mask[2:6, 3:9] = 15
        mask[0] = 255
        im = Image.fromarray(mask, mode="L").convert("P")
        (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        im.save(root / "SegmentationClass" / f"{name}.png")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(names) + "\n")
    samples = sources.load_samples("seg", root)
    assert [s.name for s in samples] == names
    assert samples[0].target.dtype == np.uint8 and samples[0].target.shape == (12, 16)
    assert set(np.unique(samples[0].target)) == {0, 15, 255}
    (root / "SegmentationClass" / f"{names[1]}.png").unlink()
    with pytest.raises(FileNotFoundError, match="2007_000042"):
        sources.load_samples("seg", root)


def test_nyu_layouts(tmp_path):
    root = tmp_path / "nyu"
    _jpeg(root / "bathroom" / "rgb_00045.jpg", h=8, w=10)
    depth_mm = np.full((8, 10), 2500, np.uint16)
    depth_mm[0, 0] = 0
    Image.fromarray(depth_mm).save(root / "bathroom" / "sync_depth_00045.png")
    lst = tmp_path / "nyu_test.txt"
    lst.write_text("bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579\n")
    (s,) = sources.load_samples("dpt", root, lst)
    assert s.name == "rgb_00045" and s.target.dtype == np.float32
    assert s.target[1, 1] == pytest.approx(2.5) and s.target[0, 0] == 0

    _jpeg(root / "rgb" / "img7.png", h=8, w=10)
    (root / "depth").mkdir()
    np.save(root / "depth" / "img7.npy", np.full((8, 10), 3.25, np.float32))
    lst.write_text("img7\n")
    (s,) = sources.load_samples("dpt", root, lst)
    assert s.name == "img7" and float(s.target.mean()) == pytest.approx(3.25)
    np.save(root / "depth" / "img7.npy", np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="does not match"):
        sources.load_samples("dpt", root, lst)


def test_duplicate_names(tmp_path):
    root = tmp_path / "flat"
    _jpeg(root / "a.JPEG")
    lst = tmp_path / "l.txt"
    lst.write_text("a.JPEG 1\na.JPEG 1\n")
    with pytest.raises(ValueError, match="twice"):
        sources.load_samples("cls", root, lst)


def test_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        sources.load_samples("det", tmp_path)


def test_skimage_samples():
    samples = sources.skimage_samples()
    names = {s.name for s in samples}
    assert {"astronaut", "coffee", "chelsea"} <= names
    for s in samples:
        assert s.image.dtype == np.uint8 and s.image.ndim == 3
    moto = [s for s in samples if s.name == "stereo_motorcycle"]
    if moto:
        assert moto[0].target.shape == moto[0].image.shape[:2] and moto[0].target.max() == pytest.approx(10.0)
