"""builders.codecs registry (get / available / register) and the rate-ladder table."""

from __future__ import annotations

import numpy as np
import pytest

from builders import codecs
from builders.codecs import Codec, ladders

BUILT_IN = {"hevc", "av1", "hm", "vtm", "vvenc", "hyperprior_multi_task", "hyperprior_task_specific"}


class _Identity(Codec):
    """A lossless test codec: float32 bytes in, the same array out."""

    name = "identity_test"

    def version(self) -> str:
        return "1"

    def _encode(self, x, task, param):
        return x.astype("<f4").tobytes()

    def _decode(self, bitstream, shape, task, param):
        return np.frombuffer(bitstream, dtype="<f4").reshape(shape)


def test_built_in_names_and_availability():
    assert BUILT_IN <= set(codecs.names())
    here = codecs.available()
    assert set(here) <= set(codecs.names())
    for name in codecs.names():
        reason = codecs.unavailable_reason(name)
        assert (name in here) == (reason is None)
        if reason is not None:
            assert name in reason
    with pytest.raises(ValueError, match="unknown codec 'x264'"):
        codecs.get("x264")


def test_register_a_user_codec():
    codecs.register("identity_test", _Identity)
    try:
        with pytest.raises(ValueError, match="already registered"):
            codecs.register("identity_test", _Identity)
        codec = codecs.get("identity_test", ladder=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        x = np.random.default_rng(0).standard_normal((1, 1, 3, 4)).astype(np.float32)
        res = codec.compress(x, "cls", 2, item="a")
        np.testing.assert_array_equal(res.decoded, x)
        assert res.bpfp == 32.0 and res.codec_param == 3.0
        assert res.provenance == {
            "codec": "identity_test", "version": "1", "profile": "paper", "task": "cls", "rate_index": 2,
            "codec_param_name": "QP", "codec_param": 3.0, "parameters": {},
        }  # fmt: skip
        assert "identity_test" in codecs.available()
        codecs.register("identity_test", "builders.codecs.pyav:HevcCodec", overwrite=True)
        assert codecs.get("identity_test", ladder=list(range(10))).name == "hevc"
    finally:
        codecs._REGISTRY.pop("identity_test", None)


def test_paper_ladders_follow_the_reference():
    assert ladders.get_ladder("hm")["cls"] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert ladders.get_ladder("vtm")["dpt"] == ladders.get_ladder("hm")["dpt"]
    hybrid = ladders.get_ladder("hyperprior_multi_task")["seg"]
    assert hybrid[0] == 0.015 and hybrid[-1] == 0.0005  # rate_index 0 = highest rate = largest lambda
    assert ladders.get_ladder("hyperprior_task_specific")["cls"][:2] == [0.015, 0.012]


@pytest.mark.parametrize("profile", ladders.profiles())
def test_every_ladder_has_ten_points_ordered_by_rate(profile):
    for codec, table in ladders.LADDERS[profile].items():
        for task, points in table.items():
            assert len(points) == 10, (profile, codec, task)
            if codec.startswith("hyperprior"):
                assert points == sorted(points, reverse=True), (profile, codec, task)
            else:
                assert points == sorted(points) and len(set(points)) == 10, (profile, codec, task)


def test_explicit_ladders():
    per_task = ladders.resolve("hevc", "paper", {"cls": list(range(30, 40))})
    assert per_task == {"cls": [float(v) for v in range(30, 40)]}
    assert ladders.resolve("hevc", "mini", None) == ladders.get_ladder("hevc", "mini")
    with pytest.raises(ValueError, match="has 3 points, expected 10"):
        ladders.resolve("hevc", "paper", [1, 2, 3])
    with pytest.raises(ValueError, match="no 'paper' rate ladder for codec 'mine'"):
        ladders.get_ladder("mine")
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        ladders.get_ladder("hevc", "huge")
