"""The learned hyperprior codecs: training (per lambda, resumable), real entropy coding, error handling.

Models here are tiny (N = M = 8, a few steps) so the whole file runs in seconds; the two lambdas of the test
ladder are far apart so that the rate order is certain after so little training.
"""

from __future__ import annotations

import numpy as np
import pytest

from builders import codecs, transforms
from builders.codecs import CodecError, CodecUnavailable

pytest.importorskip("compressai")
pytest.importorskip("torch")

from builders.codecs import hyperprior  # noqa: E402 - after the importorskip guards

HIGH, LOW = 10.0, 1e-6
LADDER = [HIGH] * 5 + [LOW] * 5
TINY = {"N": 8, "M": 8, "batch_size": 2, "lr": 1e-3, "base_lr": 1e-2, "save_every": 4}


def _feature(shape, seed):
    """Smooth along T and D (plus a little noise), which a tiny autoencoder learns within a few steps."""
    rng = np.random.default_rng(seed)
    n, c, t, d = shape
    phase = rng.uniform(0, 6, (n, c, 1, 1))
    tt, dd = np.arange(t).reshape(1, 1, t, 1), np.arange(d).reshape(1, 1, 1, d)
    x = 2 * np.sin(tt / 6 + phase) + 1.5 * np.cos(dd / 9 + 2 * phase) + 0.05 * rng.standard_normal(shape)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def originals():
    return {
        "cls": [_feature((1, 1, 65, 64), s) for s in range(3)],
        "dpt": [_feature((2, 4, 33, 32), 10 + s) * (1 + np.arange(4)).reshape(1, 4, 1, 1) for s in range(3)],
    }


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, originals):
    out = tmp_path_factory.mktemp("hyperprior")
    hyperprior.train_all(
        originals, out, profile="mini",
        ladder={"hyperprior_multi_task": LADDER, "hyperprior_task_specific": LADDER},
        steps=12, base_steps=40, threads=1, **TINY,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def cls_codebook(originals):
    return {"cls": transforms.fit_codebook(originals["cls"], "cls")}


def _codec(name, model_dir):
    return codecs.get(name, model_dir=model_dir, ladder=LADDER, profile="mini")


def test_layout_and_checkpoint_contents(model_dir):
    for rel in ("multi_task", "task_specific/cls", "task_specific/dpt"):
        names = {p.name for p in (model_dir / rel).iterdir()}
        assert names == {hyperprior.lambda_name(LOW), hyperprior.lambda_name(HIGH)}
    ckpt = hyperprior.load_checkpoint(model_dir / "task_specific" / "dpt" / hyperprior.lambda_name(HIGH))
    assert ckpt["complete"] and ckpt["lambda"] == HIGH and (ckpt["N"], ckpt["M"]) == (8, 8)
    assert set(ckpt["codebooks"]) == {"dpt"} and tuple(ckpt["codebooks"]["dpt"].shape) == (4, 256)
    # Every model is fine-tuned from the base, trained at the largest lambda.
    assert ckpt["train"]["steps"] == 12 and ckpt["train"]["init_steps"] == 40
    assert ckpt["train"]["init_from"] == hyperprior.lambda_name(HIGH)
    assert (model_dir / "base" / hyperprior.lambda_name(HIGH)).is_file()
    assert not list(model_dir.rglob("*.partial.pt"))


@pytest.mark.parametrize("name", ["hyperprior_multi_task", "hyperprior_task_specific"])
@pytest.mark.parametrize("task", ["cls", "dpt"])
def test_round_trip_rate_and_distortion(name, task, model_dir, originals):
    codec = _codec(name, model_dir)
    x = originals[task][0]
    high = codec.compress(x, task, 0, item="a")
    low = codec.compress(x, task, 9, item="a")
    for rate_index, res in ((0, high), (9, low)):
        assert res.decoded.shape == x.shape and res.decoded.dtype == np.float32
        assert res.bpfp == pytest.approx(len(res.bitstream) * 8 / x.size)
        np.testing.assert_array_equal(codec.decompress(res.bitstream, x.shape, task, rate_index), res.decoded)
    assert high.bpfp > low.bpfp
    assert np.mean((high.decoded - x) ** 2) < np.mean((low.decoded - x) ** 2)
    assert codec.compress(x, task, 0).bitstream == high.bitstream
    # Every decoded value is a codebook centre of its layer.
    ckpt = hyperprior.load_checkpoint(codec.checkpoint_path(task, HIGH))
    centres = ckpt["codebooks"][task].numpy()
    for c in range(x.shape[1]):
        assert np.isin(high.decoded[:, c], centres[min(c, len(centres) - 1)]).all()
    prov = high.provenance
    assert prov["codec_param_name"] == "lambda" and prov["codec_param"] == HIGH
    assert prov["parameters"]["train"]["steps"] == 12 and "compressai" in prov["version"]


def test_finished_lambdas_are_skipped(model_dir, originals):
    path = model_dir / "multi_task" / hyperprior.lambda_name(HIGH)
    before = path.stat().st_mtime_ns
    cbs = {t: hyperprior.load_checkpoint(path)["codebooks"][t].numpy() for t in originals}
    hyperprior.train(originals, cbs, [HIGH], model_dir / "multi_task", steps=12, profile="mini", **TINY)
    assert path.stat().st_mtime_ns == before


def test_training_is_seeded_whatever_the_global_torch_state(tmp_path, originals, cls_codebook):
    torch = pytest.importorskip("torch")
    cbs = cls_codebook
    states = []
    for i, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)
        data = {"cls": originals["cls"]}
        (path,) = hyperprior.train(data, cbs, [0.01], tmp_path / str(i), steps=3, profile="mini", **TINY)
        states.append(hyperprior.load_checkpoint(path)["state_dict"])
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0, msg=key)


def test_interrupted_training_resumes_to_the_same_model(tmp_path, originals, cls_codebook, monkeypatch):
    torch = pytest.importorskip("torch")
    cbs = cls_codebook
    data = {"cls": originals["cls"]}
    settings = {"steps": 8, "profile": "mini", "threads": 1, **TINY}
    straight = hyperprior.train(data, cbs, [0.01], tmp_path / "straight", **settings)

    real_sample, calls = hyperprior._sample_batch, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt("simulated interruption")
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(hyperprior, "_sample_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        hyperprior.train(data, cbs, [0.01], tmp_path / "resumed", **settings)
    partial = tmp_path / "resumed" / "lambda0.01.partial.pt"
    assert partial.is_file() and hyperprior.load_checkpoint(partial)["step"] == 4
    assert not (tmp_path / "resumed" / "lambda0.01.pt").exists()
    monkeypatch.setattr(hyperprior, "_sample_batch", real_sample)
    (resumed,) = hyperprior.train(data, cbs, [0.01], tmp_path / "resumed", **settings)
    a = hyperprior.load_checkpoint(straight[0])["state_dict"]
    b = hyperprior.load_checkpoint(resumed)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    assert not partial.exists()


def test_missing_models_and_bad_bitstreams(model_dir, tmp_path, originals):
    with pytest.raises(CodecUnavailable, match="no model_dir given"):
        codecs.get("hyperprior_multi_task")
    x = originals["cls"][0]
    empty = codecs.get("hyperprior_task_specific", model_dir=tmp_path, ladder=LADDER)
    where = r"hyperprior_task_specific \[task=cls item=q rate_index=0 "
    with pytest.raises(CodecUnavailable, match=where + r".*task_specific/cls/lambda10\.pt"):
        empty.compress(x, "cls", 0, item="q")
    codec = _codec("hyperprior_multi_task", model_dir)
    with pytest.raises(CodecUnavailable, match="no codebook for task 'seg'"):
        codec.compress(_feature((2, 1, 9, 32), 0), "seg", 0)
    where = r"hyperprior_multi_task \[task=cls item=q rate_index=3 \(lambda 10\)\]"
    with pytest.raises(CodecError, match=where):
        codec.decompress(b"\xff\xff\xff\xffjunk", x.shape, "cls", 3, item="q")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: not a readable checkpoint"):
        hyperprior.load_checkpoint(tmp_path / "bad.pt")
