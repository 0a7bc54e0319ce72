"""Feature extraction layouts with a tiny random Dinov2 (paper and mini preprocessing)."""

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from builders import preprocess  # noqa: E402
from builders.features import dpt_layers, extract  # noqa: E402

D = 32


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def model():
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    cfg = Dinov2Config(hidden_size=D, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=56)
    return Dinov2Model(cfg).eval()


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_cls_layout_is_prenorm_last_block(model):
    img = _image(375, 500)
    feat = extract(model, img, "cls")
    assert feat.shape == (1, 1, 257, D) and feat.dtype == np.float32
    view = preprocess.cls_view(img, preprocess.PAPER)
    with torch.no_grad():
        out = model(pixel_values=view, output_hidden_states=True)
    np.testing.assert_array_equal(feat[0, 0], out.hidden_states[-1][0].numpy())
    # The final norm is NOT in the feature: applying it gives the model's normalised output.
    with torch.no_grad():
        normed = model.layernorm(torch.from_numpy(feat[0, 0]))
    np.testing.assert_allclose(normed.numpy(), out.last_hidden_state[0].numpy(), atol=1e-5)


@pytest.mark.parametrize(("h", "w", "n"), [(375, 500, 2), (500, 375, 2), (500, 500, 1)])
def test_seg_windows(model, h, w, n):
    feat = extract(model, _image(h, w), "seg")
    assert feat.shape == (n, 1, 1370, D)


def test_seg_geometry_matches_mmseg_slide():
    geo = preprocess.seg_geometry(375, 500, preprocess.PAPER)
    assert geo.resized == (512, 683)
    assert geo.windows == ((0, 512, 0, 512), (0, 512, 171, 683))


def test_dpt_layout_and_flip(model):
    img = _image(480, 640)
    feat = extract(model, img, "dpt")
    assert feat.shape == (2, 4, 1611, D)
    flipped = extract(model, np.ascontiguousarray(img[:, ::-1]), "dpt")
    # View 1 is the horizontal flip: the flipped image's view 0 is the same computation.
    np.testing.assert_allclose(flipped[0], feat[1], atol=1e-5)
    assert not np.allclose(feat[0], feat[1])


def test_dpt_layers_rule():
    assert dpt_layers(40) == (9, 19, 29, 39)
    assert dpt_layers(12) == (2, 5, 8, 11)
    assert dpt_layers(24) == (4, 11, 17, 23)
    assert dpt_layers(6) == (0, 2, 3, 5)
    with pytest.raises(ValueError):
        dpt_layers(3)


def test_center_padding():
    assert preprocess.pad_amounts(480, 14) == (5, 5)
    assert preprocess.pad_amounts(640, 14) == (2, 2)
    x = torch.ones(1, 3, 480, 640)
    padded = preprocess.center_pad(x, 14)
    assert padded.shape == (1, 3, 490, 644)
    assert padded[..., :5, :].abs().sum() == 0 and padded[..., 5:485, 2:642].eq(1).all()


def test_mini_profile_small_views(model):
    assert extract(model, _image(112, 112), "cls", profile="mini").shape == (1, 1, 65, D)
    assert extract(model, _image(112, 160), "seg", profile="mini").shape == (2, 1, 65, D)
    assert extract(model, _image(112, 112), "dpt", profile="mini").shape == (2, 4, 65, D)


def test_deterministic_bytes(model):
    img = _image(120, 150, seed=3)
    a = extract(model, img, "seg", profile="mini")
    b = extract(model, img, "seg", profile="mini")
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((50, 50), np.uint8), "RGB"),
        (np.zeros((50, 50, 4), np.uint8), "RGB"),
        (np.zeros((50, 50, 3), np.float32), "uint8"),
    ],
)
def test_bad_images(model, image, match):
    with pytest.raises(ValueError, match=match):
        extract(model, image, "cls", name="bad.png")


def test_unknown_task_and_profile(model):
    with pytest.raises(ValueError, match="task"):
        extract(model, _image(60, 60), "det")
    with pytest.raises(ValueError, match="profile"):
        extract(model, _image(60, 60), "cls", profile="huge")


@pytest.mark.parametrize(("h", "w"), [(375, 500), (500, 333), (224, 224)])
def test_cls_view_matches_torchvision_eval_transform(h, w):
    tv = pytest.importorskip("torchvision.transforms")
    from PIL import Image

    img = _image(h, w, seed=h)
    ref = tv.Compose(
        [
            tv.Resize(256, interpolation=tv.InterpolationMode.BICUBIC),
            tv.CenterCrop(224),
            tv.ToTensor(),
            tv.Normalize(preprocess.IMAGENET_MEAN, preprocess.IMAGENET_STD),
        ]
    )(Image.fromarray(img))
    torch.testing.assert_close(preprocess.cls_view(img, preprocess.PAPER)[0], ref, atol=1e-6, rtol=1e-6)
