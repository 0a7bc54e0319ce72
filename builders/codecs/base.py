"""What every codec shares: the result type, the error type and the compress/decompress skeleton."""

from __future__ import annotations

import abc
import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from builders import transforms
from builders.codecs import ladders


class CodecError(RuntimeError):
    """A codec failed on one item at one rate point; the message names codec, task, item and rate point."""


class CodecUnavailable(CodecError):
    """The codec cannot run here (no binary, library or model); the message says what to supply."""


@dataclass(frozen=True)
class CodecResult:
    """One compressed feature: the bytes, their rate, the feature decoded from those bytes, and provenance."""

    bitstream: bytes
    bpfp: float
    decoded: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    codec_param: float = 0.0
    codec_param_name: str = ""


def bpfp(num_bytes: int, shape: Sequence[int]) -> float:
    """Bits per feature point of ``num_bytes`` for an original of ``shape`` (N, C, T, D)."""
    return float(num_bytes) * 8.0 / float(np.prod(shape))


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder removed on exit whatever happens (codecs that talk to binaries through files)."""
    path = Path(tempfile.mkdtemp(prefix=f"cfqa-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Codec(abc.ABC):
    """A feature codec with 10 rate points (``rate_index`` 0 = highest rate).

    Subclasses implement :meth:`_encode` and :meth:`_decode` on the task's pre-codec representation; the
    skeleton here validates input, counts bits, decodes from the bytes alone and wraps any failure in a
    :class:`CodecError` naming codec, task, item and rate point.
    """

    name: str = ""
    param_name: str = "QP"

    def __init__(
        self,
        ladder: Mapping[str, Sequence[float]] | Sequence[float] | None = None,
        profile: str = "paper",
        ranges: transforms.Ranges | None = None,
    ) -> None:
        self.profile = profile
        self.ranges = ranges
        self._ladder = ladders.resolve(self.name, profile, ladder)

    # --- rate ladder -------------------------------------------------------------------------------------

    def ladder(self, task: str) -> list[float]:
        """The 10 codec parameters (QP or lambda) for ``task``, highest rate first."""
        if task not in self._ladder:
            raise ValueError(f"{self.name}: no rate ladder for task {task!r} (have {sorted(self._ladder)})")
        return list(self._ladder[task])

    def codec_param(self, task: str, rate_index: int) -> float:
        """The codec parameter at ``rate_index`` for ``task``."""
        points = self.ladder(task)
        if not isinstance(rate_index, int | np.integer) or not 0 <= int(rate_index) < len(points):
            raise ValueError(
                f"{self.name}: rate_index must be an int in 0..{len(points) - 1}, got {rate_index!r}"
            )
        return points[int(rate_index)]

    # --- public API --------------------------------------------------------------------------------------

    def compress(self, x: np.ndarray, task: str, rate_index: int, item: str | None = None) -> CodecResult:
        """Encode ``x`` (N, C, T, D) at ``rate_index``, then decode the bytes with the real decoder."""
        where = self._where(task, rate_index, item)
        param = self.codec_param(task, rate_index)
        try:
            arr = transforms.check_feature(x)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        try:
            bitstream = self._encode(arr, task, param)
        except (CodecError, ValueError) as err:
            raise type(err)(f"{where}: {err}") from err
        except (OSError, RuntimeError) as err:
            raise CodecError(f"{where}: encoding failed: {err}") from err
        if not bitstream:
            raise CodecError(f"{where}: the encoder produced an empty bitstream")
        decoded = self.decompress(bitstream, arr.shape, task, rate_index, item=item)
        return CodecResult(
            bitstream=bitstream,
            bpfp=bpfp(len(bitstream), arr.shape),
            decoded=decoded,
            provenance=self.provenance(task, rate_index),
            codec_param=float(param),
            codec_param_name=self.param_name,
        )

    def decompress(
        self, bitstream: bytes, shape: Sequence[int], task: str, rate_index: int, item: str | None = None
    ) -> np.ndarray:
        """Decode ``bitstream`` to a float32 array of ``shape`` (N, C, T, D) from the bytes alone."""
        where = self._where(task, rate_index, item)
        param = self.codec_param(task, rate_index)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 4 or min(shape) <= 0:
            raise ValueError(f"{where}: shape must be 4 positive ints (N, C, T, D), got {shape}")
        if not bitstream:
            raise CodecError(f"{where}: empty bitstream")
        try:
            out = self._decode(bytes(bitstream), shape, task, param)
        except CodecError as err:
            raise type(err)(f"{where}: {err}") from err
        except (OSError, ValueError, RuntimeError) as err:
            # Garbage bytes surface as ValueError/OSError from the decoders: that is a decode failure.
            raise CodecError(f"{where}: decoding failed: {err}") from err
        if out.shape != shape:
            raise CodecError(f"{where}: decoded shape {out.shape} differs from {shape}")
        return out.astype(np.float32, copy=False)

    def provenance(self, task: str, rate_index: int) -> dict[str, Any]:
        """Codec name, version and parameters for one rate point (JSON-serialisable)."""
        return {
            "codec": self.name,
            "version": self.version(),
            "profile": self.profile,
            "task": task,
            "rate_index": int(rate_index),
            "codec_param_name": self.param_name,
            "codec_param": float(self.codec_param(task, rate_index)),
            "parameters": self.parameters(task, self.codec_param(task, rate_index)),
        }

    # --- for subclasses ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def version(self) -> str:
        """Encoder/decoder version string."""

    def parameters(self, task: str, param: float) -> dict[str, Any]:
        """Settings that determine the bytes at codec parameter ``param`` (JSON-serialisable)."""
        return {}

    @abc.abstractmethod
    def _encode(self, x: np.ndarray, task: str, param: float) -> bytes:
        """Encode a validated float32 (N, C, T, D) feature at codec parameter ``param``."""

    @abc.abstractmethod
    def _decode(self, bitstream: bytes, shape: tuple[int, ...], task: str, param: float) -> np.ndarray:
        """Decode bytes to an (N, C, T, D) array."""

    def _where(self, task: str, rate_index: int, item: str | None) -> str:
        try:
            point = f"{self.param_name} {self.codec_param(task, rate_index):g}"
        except ValueError:
            point = "invalid"
        return f"{self.name} [task={task} item={item or '-'} rate_index={rate_index} ({point})]"


def ranges_parameters(task: str, ranges: transforms.Ranges | None) -> dict[str, Any]:
    """The uniform-quantisation range of ``task`` as provenance (plain lists)."""
    table = transforms.PAPER_RANGES if ranges is None else ranges
    lo, hi = table[task]
    return {
        "range_lo": np.asarray(lo, dtype=float).tolist(),
        "range_hi": np.asarray(hi, dtype=float).tolist(),
    }
