"""The reference software codecs as user-supplied binaries: HM (HEVC), VTM (VVC), and vvenc/vvdec (VVC).

None of them can be installed from a package registry, so the user points at the executables (options
``encoder=``/``decoder=``/``config=``) or puts them on PATH. The call matches the CFQA reference: one frame,
all-intra configuration, 4:0:0, 10-bit input/internal/output, the packed uniformly quantised feature as raw
little-endian uint16 luma. Each call runs in a temporary folder that is removed afterwards.

To run VVC for real: build VTM (EncoderAppStatic, DecoderAppStatic, cfg/encoder_intra_vtm.cfg) or vvenc/vvdec
and pass their paths. Without a VVC decoder binary, ``vtm`` decodes with FFmpeg's native VVC decoder in PyAV.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from builders import transforms
from builders.codecs.base import Codec, CodecError, CodecUnavailable, ranges_parameters, scratch_dir

#: Wall-clock limit for one binary call; the reference software is slow on paper-size frames.
DEFAULT_TIMEOUT = 3600.0


def _resolve_binary(given: str | os.PathLike | None, default_names: tuple[str, ...]) -> Path | None:
    if given is not None:
        path = Path(given)
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
        found = shutil.which(str(given))
        return Path(found) if found else None
    for name in default_names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def _resolve_config(
    given: str | os.PathLike | None, binary: Path | None, names: tuple[str, ...]
) -> Path | None:
    """The given config, else one of ``names`` next to the binary or in the usual ``cfg/`` folders."""
    if given is not None:
        path = Path(given)
        return path.resolve() if path.is_file() else None
    if binary is None:
        return None
    for folder in (binary.parent, binary.parent / "cfg", binary.parent.parent / "cfg"):
        for name in names:
            if (folder / name).is_file():
                return (folder / name).resolve()
    return None


def write_yuv(path: Path, frame: np.ndarray) -> None:
    """Write a 2-D uint16 frame as raw little-endian 4:0:0 YUV (luma plane only)."""
    path.write_bytes(np.ascontiguousarray(frame, dtype="<u2").tobytes())


def read_yuv(path: Path, height: int, width: int) -> np.ndarray:
    """Read the luma plane of a raw 10-bit YUV file (4:0:0, or 4:2:0/4:4:4 of which only luma is kept)."""
    if not path.is_file():
        raise CodecError(f"the decoder wrote no output file {path.name}")
    data = path.read_bytes()
    luma = height * width * 2
    chroma420 = 2 * ((height + 1) // 2) * ((width + 1) // 2) * 2
    if len(data) not in (luma, luma + chroma420, 3 * luma):
        raise CodecError(
            f"decoded YUV has {len(data)} bytes; a {width}x{height} 10-bit frame needs {luma} (4:0:0), "
            f"{luma + chroma420} (4:2:0) or {3 * luma} (4:4:4)"
        )
    frame = np.frombuffer(data[:luma], dtype="<u2").reshape(height, width)
    return frame.astype(np.uint16)


class ExternalCodec(Codec):
    """A codec run as an encoder and a decoder executable talking through raw YUV and bitstream files."""

    param_name = "QP"
    encoder_names: tuple[str, ...] = ()
    decoder_names: tuple[str, ...] = ()
    config_names: tuple[str, ...] = ()
    bitstream_suffix = ".bin"

    def __init__(
        self,
        encoder: str | os.PathLike | None = None,
        decoder: str | os.PathLike | None = None,
        config: str | os.PathLike | None = None,
        ladder=None,
        profile: str = "paper",
        ranges: transforms.Ranges | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(ladder=ladder, profile=profile, ranges=ranges)
        self.timeout = float(timeout)
        self.encoder = _resolve_binary(encoder, self.encoder_names)
        self.decoder = _resolve_binary(decoder, self.decoder_names)
        self.config = _resolve_config(config, self.encoder, self.config_names)
        problem = self._problem(encoder, decoder, config)
        if problem:
            raise CodecUnavailable(problem)

    @classmethod
    def availability(cls) -> str | None:
        """None when the binaries are on PATH (and the config beside them), else what to supply."""
        enc = _resolve_binary(None, cls.encoder_names)
        dec = _resolve_binary(None, cls.decoder_names)
        config = _resolve_config(None, enc, cls.config_names)
        return cls._describe_missing(enc, dec, bool(cls.config_names), config)

    @classmethod
    def _describe_missing(
        cls,
        enc: Path | None,
        dec: Path | None,
        config_needed: bool,
        config: Path | None,
        given: tuple[Any, Any, Any] = (None, None, None),
    ) -> str | None:
        missing = []
        if enc is None:
            missing.append(f"encoder {given[0] or ' / '.join(cls.encoder_names)}")
        if dec is None and not cls._has_fallback_decoder():
            missing.append(f"decoder {given[1] or ' / '.join(cls.decoder_names)}")
        if config_needed and config is None:
            missing.append(f"config {given[2] or ' / '.join(cls.config_names)}")
        if not missing:
            return None
        return (
            f"{cls.name}: not found: {', '.join(missing)}. Pass get({cls.name!r}, encoder=..., decoder=..."
            f"{', config=...' if config_needed else ''}) or put the binaries on PATH."
        )

    def _problem(self, encoder: Any, decoder: Any, config: Any) -> str | None:
        return self._describe_missing(
            self.encoder, self.decoder, bool(self.config_names), self.config, (encoder, decoder, config)
        )

    @classmethod
    def _has_fallback_decoder(cls) -> bool:
        return False

    def version(self) -> str:
        return f"{self.encoder.name} / {self.decoder.name if self.decoder else 'PyAV'} (user-supplied)"

    def parameters(self, task: str, param: float) -> dict[str, Any]:
        return {
            "encoder": self.encoder.name,
            "decoder": self.decoder.name if self.decoder else None,
            "config": self.config.name if self.config else None,
            # W and H stand for the packed frame's width (C*D) and height (N*T).
            "encoder_args": self.encoder_args(
                Path("in.yuv"), Path("out" + self.bitstream_suffix), "W", "H", param
            )[1:],
            "transform": "uniform 10-bit, packed (N*T, C*D)",
            **ranges_parameters(task, self.ranges),
        }

    # --- command lines -----------------------------------------------------------------------------------

    def encoder_args(
        self, yuv: Path, bitstream: Path, width: int | str, height: int | str, qp: float
    ) -> list[str]:
        raise NotImplementedError

    def decoder_args(self, bitstream: Path, yuv: Path) -> list[str]:
        raise NotImplementedError

    def _run(self, args: list[str], cwd: Path, what: str) -> None:
        try:
            proc = subprocess.run(args, cwd=cwd, capture_output=True, timeout=self.timeout, check=False)
        except FileNotFoundError as err:
            raise CodecUnavailable(f"{what} {args[0]} cannot be run: {err}") from err
        except subprocess.TimeoutExpired as err:
            raise CodecError(f"{what} {Path(args[0]).name} timed out after {self.timeout:g} s") from err
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()[-5:]
            raise CodecError(
                f"{what} {Path(args[0]).name} exited with status {proc.returncode}: {' | '.join(tail)}"
            )

    def _encode(self, x: np.ndarray, task: str, param: float) -> bytes:
        frame = transforms.pack(transforms.quantize_uniform(x, task, self.ranges))
        height, width = frame.shape
        with scratch_dir(self.name) as tmp:
            yuv, bitstream = tmp / "in.yuv", tmp / ("out" + self.bitstream_suffix)
            write_yuv(yuv, frame)
            self._run(self.encoder_args(yuv, bitstream, width, height, param), tmp, "encoder")
            if not bitstream.is_file() or bitstream.stat().st_size == 0:
                raise CodecError(f"encoder {self.encoder.name} exited 0 but wrote no bitstream")
            return bitstream.read_bytes()

    def _decode(self, bitstream: bytes, shape: tuple[int, ...], task: str, param: float) -> np.ndarray:
        n, c, t, d = shape
        height, width = n * t, c * d
        frame = self._decode_frame(bitstream, height, width)
        return transforms.dequantize_uniform(transforms.unpack(frame, shape), task, self.ranges)

    def _decode_frame(self, bitstream: bytes, height: int, width: int) -> np.ndarray:
        with scratch_dir(self.name) as tmp:
            src, yuv = tmp / ("in" + self.bitstream_suffix), tmp / "out.yuv"
            src.write_bytes(bitstream)
            self._run(self.decoder_args(src, yuv), tmp, "decoder")
            return read_yuv(yuv, height, width)


class HmCodec(ExternalCodec):
    """HEVC reference software HM (TAppEncoderStatic / TAppDecoderStatic), all-intra, 4:0:0 10-bit."""

    name = "hm"
    encoder_names = ("TAppEncoderStatic", "TAppEncoder")
    decoder_names = ("TAppDecoderStatic", "TAppDecoder")
    config_names = ("encoder_intra_main_rext.cfg", "encoder_intra_main10.cfg", "encoder_intra_main.cfg")

    def encoder_args(
        self, yuv: Path, bitstream: Path, width: int | str, height: int | str, qp: float
    ) -> list[str]:
        return [
            str(self.encoder), "-c", str(self.config), "-i", str(yuv), "-b", str(bitstream),
            "-q", str(int(qp)),
            "--ConformanceWindowMode=1", "-wdt", str(width), "-hgt", str(height), "-f", "1", "-fr", "1",
            "--InternalBitDepth=10", "--InputBitDepth=10", "--InputChromaFormat=400", "--OutputBitDepth=10",
        ]  # fmt: skip

    def decoder_args(self, bitstream: Path, yuv: Path) -> list[str]:
        return [str(self.decoder), "-b", str(bitstream), "-o", str(yuv), "--OutputBitDepth=10"]


class VtmCodec(HmCodec):
    """VVC reference software VTM (EncoderAppStatic / DecoderAppStatic), the reference's exact call.

    Without a decoder binary the VVC bitstream is decoded by FFmpeg's native VVC decoder (PyAV).
    """

    name = "vtm"
    encoder_names = ("EncoderAppStatic", "EncoderApp")
    decoder_names = ("DecoderAppStatic", "DecoderApp")
    config_names = ("encoder_intra_vtm.cfg",)

    @classmethod
    def _has_fallback_decoder(cls) -> bool:
        from builders.codecs.pyav import has_codec

        return has_codec("vvc", "r")

    def _decode_frame(self, bitstream: bytes, height: int, width: int) -> np.ndarray:
        if self.decoder is not None:
            return super()._decode_frame(bitstream, height, width)
        from builders.codecs.pyav import decode_vvc

        return decode_vvc(bitstream, height, width)


class VvencCodec(ExternalCodec):
    """VVC by Fraunhofer vvenc/vvdec (vvencapp / vvdecapp): one intra frame, 4:0:0 10-bit, fixed QP."""

    name = "vvenc"
    encoder_names = ("vvencapp",)
    decoder_names = ("vvdecapp",)
    config_names = ()
    bitstream_suffix = ".266"

    @classmethod
    def _has_fallback_decoder(cls) -> bool:
        from builders.codecs.pyav import has_codec

        return has_codec("vvc", "r")

    def encoder_args(
        self, yuv: Path, bitstream: Path, width: int | str, height: int | str, qp: float
    ) -> list[str]:
        return [
            str(self.encoder), "-i", str(yuv), "-s", f"{width}x{height}", "-c", "yuv400_10", "-r", "1",
            "-f", "1", "--qp", str(int(qp)), "--preset", "medium", "--intraperiod", "1",
            "--internal-bitdepth", "10", "-o", str(bitstream),
        ]  # fmt: skip

    def decoder_args(self, bitstream: Path, yuv: Path) -> list[str]:
        return [str(self.decoder), "-b", str(bitstream), "-o", str(yuv)]

    def _decode_frame(self, bitstream: bytes, height: int, width: int) -> np.ndarray:
        if self.decoder is not None:
            return super()._decode_frame(bitstream, height, width)
        from builders.codecs.pyav import decode_vvc

        return decode_vvc(bitstream, height, width)
