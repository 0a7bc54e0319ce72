"""HM / VTM / vvenc wrappers, exercised with stand-in executables that honour the reference CLI contract.

The stand-ins are small pure-Python scripts: the encoder reads the raw 10-bit 4:0:0 YUV named by ``-i``, drops
``QP // 4`` low bits (a crude but monotone rate control), zlib-compresses and writes ``-b``; the decoder
inverts that into ``-o``. Both record their argument lists so the tests can check the reference call.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from builders import codecs, transforms
from builders.codecs import CodecError, CodecUnavailable

ENCODER = """
import json, os, sys, zlib
from array import array
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps({"encoder": args}) + "\\n")
if os.environ.get("STANDIN_MODE") == "fail":
    sys.stderr.write("standin: simulated encoder failure\\n")
    sys.exit(3)
def opt(*names):
    for n in names:
        if n in args:
            return args[args.index(n) + 1]
    return None
if opt("-s"):
    w, h = (int(v) for v in opt("-s").split("x"))
else:
    w, h = int(opt("-wdt")), int(opt("-hgt"))
if os.environ.get("STANDIN_MODE") == "silent":
    sys.exit(0)
frame = array("H", open(opt("-i"), "rb").read())  # little-endian host, as the reference software assumes
assert len(frame) == w * h, (len(frame), w, h)
shift = int(opt("-q", "--qp")) // 4
kept = array("H", ((v >> shift) << shift for v in frame))
with open(opt("-b", "-o"), "wb") as out:
    out.write(b"SI" + w.to_bytes(4, "big") + h.to_bytes(4, "big") + zlib.compress(kept.tobytes(), 9))
"""

DECODER = """
import json, os, sys, zlib
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps({"decoder": args}) + "\\n")
data = open(args[args.index("-b") + 1], "rb").read()
if data[:2] != b"SI":
    sys.stderr.write("standin: not a stand-in bitstream\\n")
    sys.exit(1)
raw = zlib.decompress(data[10:])
if os.environ.get("STANDIN_MODE") == "short":
    raw = raw[:-2]
with open(args[args.index("-o") + 1], "wb") as out:
    out.write(raw)
"""


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def standins(tmp_path, monkeypatch):
    """Stand-in encoder/decoder/config in tmp_path, a private temp folder, and the argument log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.jsonl"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("STANDIN_LOG", str(log))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    config = tmp_path / "encoder_intra.cfg"
    config.write_text("IntraPeriod : 1\n")
    return {
        "encoder": _script(bin_dir / "enc", ENCODER),
        "decoder": _script(bin_dir / "dec", DECODER),
        "config": config,
        "log": log,
        "scratch": scratch,
    }


def _standin_codec(name: str, standins: dict, **options):
    return codecs.get(
        name, encoder=standins["encoder"], decoder=standins["decoder"], config=standins["config"], **options
    )


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _feature(shape=(2, 1, 9, 24), seed=0):
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.standard_normal(shape), axis=3) * 10).astype(np.float32)


@pytest.mark.parametrize("name", ["hm", "vtm"])
def test_reference_call_round_trip_and_rate(name, standins):
    codec = _standin_codec(name, standins)
    x = _feature()
    ranges_q = transforms.quantize_uniform(x, "seg")
    rates, errors = [], []
    for rate_index in (0, 3, 6, 9):
        res = codec.compress(x, "seg", rate_index, item="voc_0001")
        assert res.bpfp == pytest.approx(len(res.bitstream) * 8 / x.size)
        again = codec.decompress(res.bitstream, x.shape, "seg", rate_index)
        np.testing.assert_array_equal(again, res.decoded)
        rates.append(res.bpfp)
        errors.append(float(np.mean((res.decoded - x) ** 2)))
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False)), rates
    assert all(a < b for a, b in zip(errors, errors[1:], strict=False)), errors
    enc = _calls(standins["log"])[0]["encoder"]
    width, height = 1 * 24, 2 * 9
    for flag in ("--ConformanceWindowMode=1", "--InputChromaFormat=400", "--InternalBitDepth=10",
                 "--InputBitDepth=10", "--OutputBitDepth=10"):  # fmt: skip
        assert flag in enc
    assert enc[enc.index("-wdt") + 1] == str(width) and enc[enc.index("-hgt") + 1] == str(height)
    assert enc[enc.index("-q") + 1] == "2" and enc[enc.index("-f") + 1] == "1"
    assert enc[enc.index("-c") + 1] == str(standins["config"].resolve())
    dec = _calls(standins["log"])[1]["decoder"]
    assert "--OutputBitDepth=10" in dec
    # The stand-in drops QP // 4 low bits: at QP 20 (rate_index 9) the decoded levels are the input's with
    # 5 bits cleared, which checks the YUV layout (row order, little-endian) end to end.
    levels = transforms.quantize_uniform(res.decoded + 1e-4, "seg")
    np.testing.assert_array_equal(levels, (ranges_q >> 5) << 5)
    assert list(standins["scratch"].iterdir()) == []  # temporary folders removed


def test_paper_provenance_names_the_binaries(standins):
    codec = _standin_codec("hm", standins)
    prov = codec.compress(_feature(), "seg", 9).provenance
    assert prov["codec"] == "hm" and prov["codec_param"] == 20.0
    assert prov["parameters"]["encoder"] == "enc"
    assert "--InputChromaFormat=400" in prov["parameters"]["encoder_args"]


def test_missing_binaries_make_the_codec_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "TAppEncoderStatic" in (codecs.unavailable_reason("hm") or "")
    assert "hm" not in codecs.available() and "vtm" not in codecs.available()
    with pytest.raises(CodecUnavailable, match=r"hm: not found: encoder TAppEncoderStatic"):
        codecs.get("hm")
    with pytest.raises(CodecUnavailable, match=r"vtm: not found: encoder /no/such/EncoderAppStatic"):
        codecs.get("vtm", encoder="/no/such/EncoderAppStatic")


def test_missing_config_is_named(standins):
    with pytest.raises(CodecUnavailable, match=r"config .*missing.cfg"):
        codecs.get(
            "hm", encoder=standins["encoder"], decoder=standins["decoder"], config="/nowhere/missing.cfg"
        )


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", r"encoder enc exited with status 3: standin: simulated encoder failure"),
        ("silent", r"encoder enc exited 0 but wrote no bitstream"),
        ("short", r"decoded YUV has \d+ bytes"),
    ],
)
def test_failures_name_codec_item_and_rate_point(mode, message, standins, monkeypatch):
    codec = _standin_codec("hm", standins)
    monkeypatch.setenv("STANDIN_MODE", mode)
    with pytest.raises(CodecError, match=rf"hm \[task=seg item=voc_7 rate_index=5 \(QP 12\)\]: .*{message}"):
        codec.compress(_feature(), "seg", 5, item="voc_7")
    assert list(standins["scratch"].iterdir()) == []


def test_undecodable_bitstream(standins):
    codec = _standin_codec("hm", standins)
    with pytest.raises(CodecError, match=r"hm \[task=seg item=x rate_index=0 \(QP 2\)\]: decoder dec exited"):
        codec.decompress(b"garbage", (2, 1, 9, 24), "seg", 0, item="x")
    assert list(standins["scratch"].iterdir()) == []


def test_vtm_without_decoder_binary_uses_pyav_vvc(standins, tmp_path, monkeypatch):
    pytest.importorskip("av")
    from builders.codecs.pyav import has_codec

    if not has_codec("vvc", "r"):
        pytest.skip("this PyAV has no VVC decoder")
    monkeypatch.setenv("PATH", str(tmp_path))
    codec = codecs.get("vtm", encoder=standins["encoder"], config=standins["config"])
    assert codec.decoder is None and "PyAV" in codec.version()
    # The stand-in's bytes are not VVC: FFmpeg's VVC decoder must refuse them with a clear error.
    with pytest.raises(CodecError, match=r"vtm \[task=seg item=- rate_index=0 \(QP 2\)\]: .*(vvc|frames)"):
        codec.compress(_feature(), "seg", 0)


def test_vvenc_call(standins):
    codec = codecs.get("vvenc", encoder=standins["encoder"], decoder=standins["decoder"], profile="mini")
    res = codec.compress(_feature(), "seg", 0)
    assert res.decoded.shape == (2, 1, 9, 24)
    enc = _calls(standins["log"])[0]["encoder"]
    assert enc[enc.index("-s") + 1] == "24x18" and enc[enc.index("-c") + 1] == "yuv400_10"
    assert enc[enc.index("--qp") + 1] == "24"


def test_standins_are_real_executables(standins):
    assert os.access(standins["encoder"], os.X_OK)


def test_binaries_found_on_path_with_their_config(standins, tmp_path, monkeypatch):
    bin_dir = tmp_path / "hm-bin"
    bin_dir.mkdir()
    _script(bin_dir / "TAppEncoderStatic", ENCODER)
    _script(bin_dir / "TAppDecoderStatic", DECODER)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert "config encoder_intra_main_rext.cfg" in (codecs.unavailable_reason("hm") or "")
    (bin_dir / "encoder_intra_main_rext.cfg").write_text("IntraPeriod : 1\n")
    assert "hm" in codecs.available()
    codec = codecs.get("hm")
    assert codec.config == (bin_dir / "encoder_intra_main_rext.cfg").resolve()
    assert codec.compress(_feature(), "seg", 0).decoded.shape == (2, 1, 9, 24)
