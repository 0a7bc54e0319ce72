"""The PyAV codecs (hevc: x265 + FFmpeg HEVC decoder; av1: SVT-AV1 + dav1d) on small real tensors."""

from __future__ import annotations

import numpy as np
import pytest

from builders import codecs, transforms
from builders.codecs import CodecError

pytest.importorskip("av")

PYAV_CODECS = [name for name in ("hevc", "av1") if codecs.unavailable_reason(name) is None]


def _smooth_feature(shape, seed=0):
    """A feature with structure along T and D (like real ones), so that the codecs have something to do."""
    rng = np.random.default_rng(seed)
    n, c, t, d = shape
    base = np.cumsum(rng.standard_normal((n, c, t, d)), axis=3) / np.sqrt(d)
    return (base * 2.0 + rng.standard_normal(shape) * 0.3).astype(np.float32)


@pytest.fixture(scope="module")
def mini_cls():
    x = _smooth_feature((1, 1, 65, 96))
    return x, transforms.fit_ranges({"cls": [x]})


def _mse(a, b):
    return float(np.mean((a.astype(np.float64) - b) ** 2))


@pytest.mark.parametrize("name", PYAV_CODECS)
def test_round_trip_rate_and_distortion_over_the_ladder(name, mini_cls):
    x, ranges = mini_cls
    codec = codecs.get(name, profile="mini", ranges=ranges)
    rates, errors = [], []
    for rate_index in range(10):
        res = codec.compress(x, "cls", rate_index, item="img0")
        assert res.decoded.shape == x.shape and res.decoded.dtype == np.float32
        assert res.bpfp == pytest.approx(len(res.bitstream) * 8 / x.size)
        again = codec.decompress(res.bitstream, x.shape, "cls", rate_index)
        np.testing.assert_array_equal(again, res.decoded)
        rates.append(res.bpfp)
        errors.append(_mse(x, res.decoded))
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False)), rates
    assert all(a <= b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] > 20 * errors[0]
    prov = res.provenance
    assert prov["codec"] == name and prov["rate_index"] == 9 and prov["codec_param"] == codec.ladder("cls")[9]
    assert "PyAV" in prov["version"]


@pytest.mark.parametrize("name", PYAV_CODECS)
def test_bytes_are_deterministic(name, mini_cls):
    x, ranges = mini_cls
    codec = codecs.get(name, profile="mini", ranges=ranges)
    assert codec.compress(x, "cls", 2).bitstream == codec.compress(x.copy(), "cls", 2).bitstream


def test_hevc_is_a_plain_annexb_stream_without_x265_sei(mini_cls):
    x, ranges = mini_cls
    res = codecs.get("hevc", profile="mini", ranges=ranges).compress(x, "cls", 0)
    assert res.bitstream.startswith(b"\x00\x00\x00\x01") or res.bitstream.startswith(b"\x00\x00\x01")
    assert b"x265" not in res.bitstream  # info=0: no informational SEI with the encoder's settings


def test_hevc_paper_ladder_is_near_lossless_at_qp2():
    x = _smooth_feature((2, 4, 9, 24), seed=1) * 20
    codec = codecs.get("hevc")
    res = codec.compress(x, "dpt", 0)
    q = transforms.dequantize_uniform(transforms.quantize_uniform(x, "dpt"), "dpt")
    lo, hi = (np.array(v) for v in transforms.PAPER_RANGES["dpt"])
    # QP 2 on a 10-bit frame: within a few quantisation steps of the uniform transform's own output.
    assert np.all(np.abs(res.decoded - q) <= 4 * ((hi - lo) / 1023).reshape(1, 4, 1, 1) + 1e-4)
    assert res.provenance["parameters"]["options"]["x265-params"].startswith("qp=2:")


@pytest.mark.parametrize("name", PYAV_CODECS)
def test_tiny_frames_are_padded_and_cropped(name):
    x = _smooth_feature((1, 1, 3, 5))
    res = codecs.get(name, ranges={"cls": (-5.0, 5.0)}, profile="mini").compress(x, "cls", 0)
    assert res.decoded.shape == x.shape
    assert np.abs(res.decoded - x).max() < 0.5  # range 10: a few per cent at the top mini rate


@pytest.mark.parametrize("name", PYAV_CODECS)
def test_bad_input_names_codec_item_and_rate_point(name, mini_cls):
    x, ranges = mini_cls
    codec = codecs.get(name, profile="mini", ranges=ranges)
    bad = x.copy()
    bad[0, 0, 3, 3] = np.nan
    where = rf"{name} \[task=cls item=img7 rate_index=4 \(QP \d+\)\]"
    with pytest.raises(ValueError, match=where + ".*non-finite"):
        codec.compress(bad, "cls", 4, item="img7")
    with pytest.raises(ValueError, match="rate_index must be an int in 0..9"):
        codec.compress(x, "cls", 10)
    with pytest.raises(ValueError, match="4-D"):
        codec.compress(x[0], "cls", 0)
    with pytest.raises(CodecError, match=rf"{name} \[task=cls item=img7 rate_index=1"):
        codec.decompress(b"\x00\x00\x01\x26garbage" * 4, x.shape, "cls", 1, item="img7")
    with pytest.raises(CodecError, match="empty bitstream"):
        codec.decompress(b"", x.shape, "cls", 1)
    good = codec.compress(x, "cls", 0)
    with pytest.raises(CodecError, match="expected"):
        codec.decompress(good.bitstream, (1, 1, 130, 96), "cls", 0)


def test_options_survive_json_as_the_pipeline_passes_them(mini_cls):
    import json

    x, _ = mini_cls
    dpt = _smooth_feature((2, 4, 9, 24), seed=3)
    ranges = transforms.fit_ranges({"cls": [x], "dpt": [dpt]})
    options = json.loads(json.dumps({"ranges": ranges, "profile": "mini", "ladder": list(range(30, 40))}))
    codec = codecs.get("hevc", **options)
    direct = codecs.get("hevc", ranges=ranges, profile="mini", ladder=list(range(30, 40)))
    assert codec.compress(dpt, "dpt", 3).bitstream == direct.compress(dpt, "dpt", 3).bitstream
    assert json.loads(json.dumps(codec.compress(dpt, "dpt", 3).provenance))["codec_param"] == 33.0
