"""Standard video codecs through PyAV (its wheel bundles FFmpeg with x265, SVT-AV1, dav1d, a VVC decoder).

- ``hevc``: x265, one intra frame, 4:0:0 ``gray10le``, constant QP, ``info=0`` (no version SEI: overhead);
  decoded by FFmpeg's native HEVC decoder. The bytes are a plain Annex B elementary stream.
- ``av1``: SVT-AV1, one key frame, ``yuv420p10le`` with neutral chroma (SVT-AV1 has no 4:0:0 input), constant
  quantiser; decoded by dav1d. The bytes are the encoder's low-overhead OBU stream.

Both codecs see the packed, 10-bit uniformly quantised feature (:mod:`builders.transforms`). Frames smaller
than the encoders accept are edge-padded and cropped after decoding; the padding's bits count in BPFP.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import numpy as np

from builders import transforms
from builders.codecs.base import Codec, CodecError, CodecUnavailable, ranges_parameters

# SVT-AV1 prints a banner per encoder instance to stderr unless told otherwise (1 = errors only);
# it reads this variable when an encoder is created.
os.environ.setdefault("SVT_LOG", "1")

#: Smallest frame side the encoders accept here (x265 refuses sides below 16, SVT-AV1 below 4).
MIN_SIDE = 16


def _import_av() -> Any:
    try:
        import av
    except ImportError as err:  # pragma: no cover - the [build] extra installs av
        raise CodecUnavailable("PyAV is not installed: pip install 'cfqa[build]'") from err
    return av


def has_codec(name: str, mode: str) -> bool:
    """Whether the installed PyAV/FFmpeg has codec ``name`` for ``mode`` ('r' decode, 'w' encode)."""
    try:
        av = _import_av()
        av.codec.Codec(name, mode)
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False
    return True


def pyav_version() -> str:
    """PyAV and libavcodec versions (the encoders are built into that FFmpeg)."""
    av = _import_av()
    major, minor, micro = av.library_versions["libavcodec"]
    return f"PyAV {av.__version__}, libavcodec {major}.{minor}.{micro}"


def pad_frame(frame: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """Edge-pad a 2-D frame so both sides are at least ``min_side`` (a no-op for real feature frames)."""
    h, w = frame.shape
    if h >= min_side and w >= min_side:
        return frame
    return np.pad(frame, ((0, max(0, min_side - h)), (0, max(0, min_side - w))), mode="edge")


def _write_plane(plane: Any, values: np.ndarray) -> None:
    """Copy a uint16 2-D array into a PyAV plane, honouring its row stride."""
    rows = np.frombuffer(plane, dtype=np.uint16).reshape(-1, plane.line_size // 2)
    rows[: values.shape[0], : values.shape[1]] = values


def _read_plane(plane: Any, height: int, width: int) -> np.ndarray:
    rows = np.frombuffer(plane, dtype=np.uint16).reshape(-1, plane.line_size // 2)
    return rows[:height, :width].copy()


def encode_frame(codec_name: str, pix_fmt: str, luma: np.ndarray, options: dict[str, str]) -> bytes:
    """Encode one 10-bit frame (luma given; chroma planes, if any, set to mid-grey) and flush the encoder."""
    av = _import_av()
    height, width = luma.shape
    ctx = av.CodecContext.create(codec_name, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base = Fraction(1, 1)
    ctx.gop_size = 1
    ctx.options = options
    frame = av.VideoFrame(width, height, pix_fmt)
    _write_plane(frame.planes[0], luma)
    for plane in frame.planes[1:]:
        _write_plane(plane, np.full((plane.height, plane.width), 512, dtype=np.uint16))
    frame.pts = 0
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


def decode_frame(decoder_name: str, bitstream: bytes, height: int, width: int) -> np.ndarray:
    """Decode exactly one frame from ``bitstream`` and return its luma plane cropped to (height, width)."""
    av = _import_av()
    ctx = av.CodecContext.create(decoder_name, "r")
    ctx.thread_count = 1
    try:
        frames = list(ctx.decode(av.Packet(bitstream))) + list(ctx.decode(None))
    except av.error.FFmpegError as err:
        raise CodecError(
            f"{decoder_name} could not decode the bitstream ({len(bitstream)} bytes): {err}"
        ) from err
    if len(frames) != 1:
        raise CodecError(
            f"{decoder_name} decoded {len(frames)} frames from {len(bitstream)} bytes, expected 1"
        )
    out = frames[0]
    if not out.format.name.startswith(("gray10", "yuv420p10", "yuv400p10")):
        raise CodecError(f"{decoder_name} decoded pixel format {out.format.name}, expected a 10-bit format")
    if out.height < height or out.width < width:
        raise CodecError(
            f"{decoder_name} decoded a {out.width}x{out.height} frame, expected {width}x{height}"
        )
    return _read_plane(out.planes[0], height, width)


class _PyAVCodec(Codec):
    """Uniform 10-bit quantisation + packing + one PyAV-encoded frame."""

    encoder: str = ""
    decoder: str = ""
    pix_fmt: str = ""

    def __init__(self, ladder=None, profile: str = "paper", ranges: transforms.Ranges | None = None) -> None:
        super().__init__(ladder=ladder, profile=profile, ranges=ranges)

    @classmethod
    def availability(cls) -> str | None:
        """None when this codec runs here, else what is missing."""
        if not has_codec(cls.encoder, "w"):
            return f"{cls.name}: the installed PyAV has no {cls.encoder} encoder"
        if not has_codec(cls.decoder, "r"):
            return f"{cls.name}: the installed PyAV has no {cls.decoder} decoder"
        return None

    def version(self) -> str:
        return f"{self.encoder} / {self.decoder} via {pyav_version()}"

    def _options(self, param: float) -> dict[str, str]:
        raise NotImplementedError

    def parameters(self, task: str, param: float) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "pix_fmt": self.pix_fmt,
            "options": self._options(param),
            "transform": "uniform 10-bit, packed (N*T, C*D)",
            **ranges_parameters(task, self.ranges),
        }

    def _encode(self, x: np.ndarray, task: str, param: float) -> bytes:
        frame = transforms.pack(transforms.quantize_uniform(x, task, self.ranges))
        return encode_frame(self.encoder, self.pix_fmt, pad_frame(frame), self._options(param))

    def _decode(self, bitstream: bytes, shape: tuple[int, ...], task: str, param: float) -> np.ndarray:
        n, c, t, d = shape
        frame = decode_frame(self.decoder, bitstream, n * t, c * d)
        return transforms.dequantize_uniform(transforms.unpack(frame, shape), task, self.ranges)


class HevcCodec(_PyAVCodec):
    """HEVC by x265 through PyAV: one intra frame, 4:0:0 10-bit, constant QP, no informational SEI."""

    name = "hevc"
    param_name = "QP"
    encoder = "libx265"
    decoder = "hevc"
    pix_fmt = "gray10le"

    #: x265 preset per profile: the mini profile encodes 12,000 small frames, where ``ultrafast`` is 3-5x
    #: quicker than ``medium`` for a few per cent more rate at equal QP.
    PRESETS = {"paper": "medium", "mini": "ultrafast"}

    def __init__(
        self,
        ladder=None,
        profile: str = "paper",
        ranges: transforms.Ranges | None = None,
        preset: str | None = None,
    ) -> None:
        super().__init__(ladder=ladder, profile=profile, ranges=ranges)
        self.preset = preset or self.PRESETS.get(profile, "medium")

    def _options(self, param: float) -> dict[str, str]:
        # pools=none / frame-threads=1: one core per encode (the pipeline parallelises over features).
        params = f"qp={int(param)}:keyint=1:info=0:log-level=error:pools=none:frame-threads=1"
        return {"preset": self.preset, "x265-params": params}


class Av1Codec(_PyAVCodec):
    """AV1 by SVT-AV1 through PyAV: one key frame, 10-bit luma (neutral 4:2:0 chroma), constant quantiser."""

    name = "av1"
    param_name = "QP"
    encoder = "libsvtav1"
    decoder = "libdav1d"
    pix_fmt = "yuv420p10le"

    def __init__(
        self, ladder=None, profile: str = "paper", ranges: transforms.Ranges | None = None, preset: int = 8
    ) -> None:
        super().__init__(ladder=ladder, profile=profile, ranges=ranges)
        self.preset = int(preset)

    def _options(self, param: float) -> dict[str, str]:
        # rc=0 with a fixed qp: constant quantiser; lp=1: one core per encode; no temporal filtering.
        return {"preset": str(self.preset), "svtav1-params": f"rc=0:qp={int(param)}:lp=1:enable-tf=0"}


def decode_vvc(bitstream: bytes, height: int, width: int) -> np.ndarray:
    """Decode a one-frame VVC bitstream with FFmpeg's native VVC decoder; returns the (height, width) luma."""
    if not has_codec("vvc", "r"):
        raise CodecUnavailable("the installed PyAV has no VVC decoder")
    return decode_frame("vvc", bitstream, height, width)
