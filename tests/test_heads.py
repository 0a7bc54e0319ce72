"""Task heads: official checkpoint formats (fabricated), official computation order, save/load."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

from builders import heads as H  # noqa: E402
from builders import preprocess  # noqa: E402
from builders.features import extract  # noqa: E402

D = 32


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def model():
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    cfg = Dinov2Config(hidden_size=D, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=56)
    m = Dinov2Model(cfg).eval()
    with torch.no_grad():  # a non-trivial final norm, so a head that skipped it would be caught
        m.layernorm.weight.uniform_(0.5, 1.5)
        m.layernorm.bias.uniform_(-0.2, 0.2)
    return m


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Fabricated head checkpoints with the official key layouts."""
    g = torch.Generator().manual_seed(1)
    folder = tmp_path_factory.mktemp("ckpt")
    cls = {"weight": torch.randn(1000, 2 * D, generator=g), "bias": torch.randn(1000, generator=g)}
    seg = {
        "meta": {"CLASSES": ["background"] + [f"c{i}" for i in range(20)], "iter": 40000},
        "state_dict": {
            "decode_head.conv_seg.weight": torch.randn(21, D, 1, 1, generator=g),
            "decode_head.conv_seg.bias": torch.randn(21, generator=g),
            "decode_head.bn.weight": torch.rand(D, generator=g) + 0.5,
            "decode_head.bn.bias": torch.randn(D, generator=g) * 0.1,
            "decode_head.bn.running_mean": torch.randn(D, generator=g) * 0.1,
            "decode_head.bn.running_var": torch.rand(D, generator=g) + 0.5,
            "decode_head.bn.num_batches_tracked": torch.tensor(40000),
        },
    }
    dpt = {
        "meta": {"epoch": 1},
        "state_dict": {
            "decode_head.conv_depth.weight": torch.randn(256, 8 * D, 1, 1, generator=g) * 0.05,
            "decode_head.conv_depth.bias": torch.randn(256, generator=g) * 0.05,
        },
    }
    paths = {}
    for name, obj in [("linear_head", cls), ("voc2012_linear_head", seg), ("nyu_linear4_head", dpt)]:
        paths[name] = folder / f"dinov2_vit_test14_{name}.pth"
        torch.save(obj, paths[name])
    return paths, cls, seg["state_dict"], dpt["state_dict"]


@pytest.fixture(scope="module")
def official(model, checkpoints):
    paths = checkpoints[0]
    return H.official_heads(
        model,
        cls_head=paths["linear_head"],
        seg_head=paths["voc2012_linear_head"],
        dpt_head=paths["nyu_linear4_head"],
    )


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_cls_head_matches_hub_classifier(model, checkpoints, official):
    _, cls_sd, _, _ = checkpoints
    feat = extract(model, _image(300, 400), "cls")
    with torch.no_grad():
        out = model(pixel_values=preprocess.cls_view(_image(300, 400), preprocess.PAPER))
        x = out.last_hidden_state[0]  # final-norm tokens, as the hub's forward_features gives them
        ref = F.linear(torch.cat([x[0], x[1:].mean(0)]), cls_sd["weight"], cls_sd["bias"]).numpy()
    np.testing.assert_allclose(official.cls_logits(feat), ref, rtol=1e-4, atol=1e-4)
    value = official.task_value("cls", feat, int(np.argmax(ref)))
    assert value["raw"] == 1.0 and value["raw_ce"] > 0


def test_seg_head_matches_mmseg_slide_inference(model, checkpoints, official):
    _, _, seg_sd, _ = checkpoints
    img = _image(375, 500, seed=2)
    feat = extract(model, img, "seg")
    geo = preprocess.seg_geometry(375, 500, preprocess.PAPER)
    # Reference: mmseg order with F.interpolate (upsample each window's logits, average, resize, argmax).
    with torch.no_grad():
        toks = model.layernorm(torch.from_numpy(feat[:, 0]))[:, 1:]
        maps = toks.transpose(1, 2).reshape(len(geo.windows), D, 37, 37)
        bn = F.batch_norm(
            maps,
            seg_sd["decode_head.bn.running_mean"],
            seg_sd["decode_head.bn.running_var"],
            seg_sd["decode_head.bn.weight"],
            seg_sd["decode_head.bn.bias"],
            eps=1e-5,
        )
        logits = F.conv2d(bn, seg_sd["decode_head.conv_seg.weight"], seg_sd["decode_head.conv_seg.bias"])
        acc = torch.zeros(1, 21, *geo.resized)
        cnt = torch.zeros(1, 1, *geo.resized)
        for i, (y1, y2, x1, x2) in enumerate(geo.windows):
            up = F.interpolate(
                logits[i : i + 1], size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False
            )
            acc[:, :, y1:y2, x1:x2] += up
            cnt[:, :, y1:y2, x1:x2] += 1
        ref = (
            F.interpolate(acc / cnt, size=(375, 500), mode="bilinear", align_corners=False)[0]
            .argmax(0)
            .numpy()
        )
    pred = official.seg_predict(feat, (375, 500))
    assert pred.shape == (375, 500)
    assert (pred == ref).mean() > 0.999
    value = official.task_value("seg", feat, ref.astype(np.uint8))
    assert value["raw"] > 99.0 and value["raw_ce"] is None


def test_dpt_head_matches_hub_linear4(model, checkpoints, official):
    _, _, _, dpt_sd = checkpoints
    img = _image(100, 130, seed=4)  # pads to 112 x 140: 8 x 10 patches
    feat = extract(model, img, "dpt")
    assert feat.shape == (2, 4, 81, D)
    # Reference: the hub's order (resize_concat x4 upsample of every [patch, cls] map, then the conv).
    with torch.no_grad():
        views = []
        for v in range(2):
            maps = []
            for layer in range(4):
                tok = torch.from_numpy(feat[v, layer])
                patch = tok[1:].T.reshape(1, D, 8, 10)
                maps.append(torch.cat([patch, tok[0][None, :, None, None].expand_as(patch)], 1))
            x = torch.cat(
                [F.interpolate(m, size=(32, 40), mode="bilinear", align_corners=False) for m in maps], 1
            )
            logit = F.conv2d(
                x, dpt_sd["decode_head.conv_depth.weight"], dpt_sd["decode_head.conv_depth.bias"]
            )
            logit = torch.relu(logit) + 0.1
            logit = logit / logit.sum(1, keepdim=True)
            depth = torch.einsum("ikmn,k->imn", logit, torch.linspace(0.001, 10, 256))[:, None]
            depth = F.interpolate(
                depth.clamp(0.001, 10), size=(100, 130), mode="bilinear", align_corners=False
            )
            views.append(depth[0, 0] if v == 0 else depth[0, 0].flip(-1))
        ref = ((views[0] + views[1]) / 2).numpy()
    pred = official.dpt_predict(feat, (100, 130))
    np.testing.assert_allclose(pred, ref, rtol=1e-4, atol=1e-4)
    assert official.task_value("dpt", feat, ref)["raw"] == pytest.approx(0.0, abs=1e-4)


def test_paper_dpt_shape_check(model, official):
    feat = np.zeros((2, 4, 1611, D), np.float32)
    assert official.dpt_predict(feat, (480, 640)).shape == (480, 640)
    with pytest.raises(ValueError, match="does not match the head"):
        official.dpt_predict(feat, (470, 640))
    with pytest.raises(ValueError, match="does not match the head"):
        official.cls_logits(np.zeros((1, 1, 256, D), np.float32))
    with pytest.raises(ValueError, match="4-D"):
        official.seg_predict(np.zeros((2, 1370, D), np.float32), (375, 500))


def test_save_load_roundtrip(model, official, tmp_path):
    path = official.save(tmp_path / "heads.safetensors")
    again = H.load(path)
    for task, shape in [("cls", (375, 500)), ("seg", (375, 500)), ("dpt", (100, 130))]:
        feat = extract(model, _image(*shape, seed=5), task)
        target = 7 if task == "cls" else (np.ones(shape, np.uint8) if task == "seg" else np.full(shape, 2.0))
        assert again.task_value(task, feat, target) == official.task_value(task, feat, target)
    assert again.profile == official.profile and again.meta["source"] == "official"


def test_checkpoint_errors(model, checkpoints, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        H.official_cls_head(tmp_path / "nope.pth", model)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"decode_head.conv_seg.weight": torch.zeros(21, D, 1, 1)}}, bad)
    with pytest.raises(ValueError, match="conv_seg.bias"):
        H.official_seg_head(bad, model)
    torch.save({"weight": torch.zeros(1000, 3 * D), "bias": torch.zeros(1000)}, bad)
    with pytest.raises(ValueError, match="shape"):
        H.official_cls_head(bad, model)
    with pytest.raises(ValueError, match="not a CFQA"):
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
        H.load(tmp_path / "x.safetensors")


def test_missing_head(official):
    partial = H.TaskHeads(cls=official.heads["cls"])
    with pytest.raises(ValueError, match="no seg head"):
        partial.seg_predict(np.zeros((2, 1, 1370, D), np.float32), (375, 500))


def test_resize_equals_interpolate():
    x = torch.randn(2, 5, 7, 9)
    for size in [(28, 36), (3, 4), (7, 9)]:
        ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        torch.testing.assert_close(H.resize(x, size), ref, atol=1e-5, rtol=1e-5)


def test_depth_head_fast_path_equals_explicit_with_batchnorm():
    torch.manual_seed(3)
    head = H.DepthHead(16, n_bins=32, bn=True)
    with torch.no_grad():
        head.bn.running_mean.uniform_(-1, 1)
        head.bn.running_var.uniform_(0.5, 2)
        head.bn.weight.uniform_(0.5, 1.5)
        head.bn.bias.uniform_(-0.5, 0.5)
    head.eval()
    tokens = torch.randn(2, 4, 1 + 6 * 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            head.logits(tokens, (6, 5)), head._logits_explicit(tokens, (6, 5)), atol=1e-4, rtol=1e-4
        )
    # Training mode keeps autograd working through the explicit path.
    head.train()
    head(tokens, (6, 5)).sum().backward()
    assert head.conv_depth.weight.grad is not None


def test_resize_cache_usable_by_autograd_after_inference():
    with torch.inference_mode():
        H.resize(torch.randn(1, 2, 5, 6), (20, 24))
    x = torch.randn(1, 2, 5, 6, requires_grad=True)
    H.resize(x, (20, 24)).sum().backward()
    assert x.grad is not None
