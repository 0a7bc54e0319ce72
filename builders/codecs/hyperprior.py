"""Learned codec: CompressAI ``bmshj2018-hyperprior`` on k-means-indexed packed features.

Two variants: multi-task (one model per lambda for all tasks) and task-specific (one per task and lambda).
Input transform (the CFQA reference): a 256-level 1-D k-means codebook per task (per layer for ``dpt``),
index = LOWER centre, model input = index / 256 on the packed (N*T, C*D) frame, padded to a multiple of 64.
After decoding, index = clip(round(y * 256), 0, 255) -> centre. Real entropy coding: ``update()`` then
``compress()``/``decompress()`` strings; the bitstream is ``len(y_string) (4 bytes, big-endian) | y_string |
z_string`` so that it decodes from the bytes and the feature shape alone.

Training (:func:`train`, :func:`train_all`): one model per lambda, loss ``lambda * 255^2 * MSE + bpp``
(CompressAI's RateDistortionLoss), Adam (lr 1e-4; aux lr 1e-3 for the entropy bottleneck's quantiles),
gradient clipping 1.0, random crops of the index frames. A checkpoint per lambda, written atomically;
finished lambdas are skipped and an interrupted one resumes from its last partial checkpoint. Layout
written by :func:`train_all` and read by the codecs (``model_dir``)::

    model_dir/multi_task/lambda<λ>.pt
    model_dir/task_specific/<task>/lambda<λ>.pt
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import struct
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from builders import transforms
from builders.codecs import ladders
from builders.codecs.base import Codec, CodecError, CodecUnavailable

FORMAT = "cfqa-hyperprior/1"
ARCH = "bmshj2018-hyperprior"
PAD_MULTIPLE = 64

#: Training settings per profile. ``paper``: the reference's quality-1 architecture and 256x256 crops (steps
#: are the caller's budget). ``mini``: a narrower network (N=16: twice as fast to code as N=32 at the same
#: top quality after so little training), 64x64 crops, one briefly trained base model fine-tuned per lambda
#: with few steps, so that all 40 mini models train in about two minutes on 2 CPU cores.
TRAIN_PROFILES: dict[str, dict[str, Any]] = {
    "paper": {
        "N": 128, "M": 192, "crop_size": 256, "batch_size": 16, "steps": 100_000, "base_steps": 0,
        "lr": 1e-4, "base_lr": 1e-4, "aux_lr": 1e-3, "clip": 1.0, "save_every": 1000,
    },
    "mini": {
        "N": 16, "M": 48, "crop_size": 64, "batch_size": 8, "steps": 20, "base_steps": 300,
        "lr": 1e-3, "base_lr": 3e-3, "aux_lr": 1e-3, "clip": 1.0, "save_every": 50,
    },
}  # fmt: skip


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - the [build] extra installs torch
        raise CodecUnavailable("torch is not installed: pip install 'cfqa[build]'") from err
    return torch


def _compressai() -> Any:
    try:
        with warnings.catch_warnings():
            # compressai's import scripts a function with the deprecated torch.jit.script.
            warnings.simplefilter("ignore", FutureWarning)
            import compressai
            import compressai.losses
            import compressai.models
            import compressai.models.utils
    except ImportError as err:  # pragma: no cover
        raise CodecUnavailable(
            "compressai is not installed: pip install --no-deps compressai==1.2.8 (see README, Install)"
        ) from err
    return compressai


def build_model(N: int, M: int) -> Any:
    """A CompressAI ScaleHyperprior (bmshj2018-hyperprior) with one input and one output channel."""
    compressai = _compressai()
    conv, deconv = compressai.models.utils.conv, compressai.models.utils.deconv
    model = compressai.models.ScaleHyperprior(N=N, M=M)
    model.g_a[0] = conv(1, N)
    model.g_s[-1] = deconv(N, 1)
    return model


def lambda_name(lam: float) -> str:
    """The checkpoint file name for lambda ``lam``."""
    return f"lambda{float(lam):g}.pt"


def _save_atomic(obj: Any, path: Path) -> None:
    torch = _torch()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`train`; raise ValueError naming the file if it is not one."""
    torch = _torch()
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise ValueError(f"{path}: not a readable checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} checkpoint")
    return ckpt


# --- training --------------------------------------------------------------------------------------------


def _index_frames(
    originals: Mapping[str, Sequence[np.ndarray]], codebooks: Mapping[str, np.ndarray]
) -> list[list[np.ndarray]]:
    """Per task, the packed index frames / 256 (float32), the model's input domain."""
    frames = []
    for task, feats in originals.items():
        if task not in codebooks:
            raise ValueError(f"train: no codebook for task {task!r}")
        task_frames = []
        for i, feat in enumerate(feats):
            arr = transforms.check_feature(feat, f"train: {task} original {i}")
            idx = transforms.codebook_index(arr, codebooks[task])
            task_frames.append(transforms.pack(idx).astype(np.float32) / 256.0)
        if not task_frames:
            raise ValueError(f"train: no originals for task {task!r}")
        frames.append(task_frames)
    return frames


def _sample_batch(
    frames: list[list[np.ndarray]], rng: np.random.Generator, batch: int, crop: int
) -> np.ndarray:
    """Random crops: a task uniformly (multi-task training sees every task equally), a frame, a position."""
    out = np.empty((batch, 1, crop, crop), dtype=np.float32)
    for b in range(batch):
        task_frames = frames[int(rng.integers(len(frames)))]
        frame = task_frames[int(rng.integers(len(task_frames)))]
        h, w = frame.shape
        if h < crop or w < crop:
            frame = np.pad(frame, ((0, max(0, crop - h)), (0, max(0, crop - w))), mode="edge")
            h, w = frame.shape
        top, left = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
        out[b, 0] = frame[top : top + crop, left : left + crop]
    return out


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op torch threads (None: leave torch's setting alone).

    Small convolutions gain nothing from a second thread and lose a lot when the cores are shared (by
    pipeline workers or other jobs): one thread per codec call is the default.
    """
    torch = _torch()
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resolve_device(device: str | None) -> str:
    torch = _torch()
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _train_one(
    frames: list[list[np.ndarray]],
    lam: float,
    path: Path,
    steps: int,
    settings: dict[str, Any],
    seed: int,
    device: str,
    init_state: dict[str, Any] | None,
    meta: dict[str, Any],
    extra: dict[str, Any],
    lr: float,
    log: Callable[[str], None] | None,
) -> Path:
    """Train (or resume, or skip) the model for one lambda; returns the final checkpoint path."""
    torch = _torch()
    compressai = _compressai()
    if path.is_file() and load_checkpoint(path).get("complete"):
        return path
    partial = path.with_name(path.name.replace(".pt", ".partial.pt"))
    # A seed per lambda, set before the weights are initialised, so that every lambda's run is
    # reproducible on its own, in any process, and after a resume.
    lam_seed = [seed, int(round(float(lam) * 1e9))]
    rng = np.random.default_rng(lam_seed)
    torch.manual_seed(int(np.random.default_rng(lam_seed).integers(2**31)))
    model = build_model(settings["N"], settings["M"]).to(device)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=lr)
    aux_opt = torch.optim.Adam(aux_params, lr=settings["aux_lr"])
    start = 0
    if partial.is_file():
        state = load_checkpoint(partial)
        model.load_state_dict(state["state_dict"], strict=False)
        opt.load_state_dict(state["optimizer"])
        aux_opt.load_state_dict(state["aux_optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        start = int(state["step"])
    elif init_state is not None:
        model.load_state_dict(init_state, strict=False)
    criterion = compressai.losses.RateDistortionLoss(lmbda=float(lam))
    model.train()
    began = time.perf_counter()
    for step in range(start, steps):
        batch = torch.from_numpy(_sample_batch(frames, rng, settings["batch_size"], settings["crop_size"]))
        batch = batch.to(device)
        out = criterion(model(batch), batch)
        opt.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(main_params, settings["clip"])
        opt.step()
        aux_opt.zero_grad()
        model.aux_loss().backward()
        aux_opt.step()
        done = step + 1
        if done % settings["save_every"] == 0 and done < steps:
            _save_atomic(
                {
                    "format": FORMAT, "complete": False, "step": done, "state_dict": model.state_dict(),
                    "optimizer": opt.state_dict(), "aux_optimizer": aux_opt.state_dict(),
                    "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                },
                partial,
            )  # fmt: skip
    model.eval()
    model.update(force=True)
    final_loss = float(out["loss"].detach()) if steps > start else float("nan")
    _save_atomic(
        {
            "format": FORMAT, "complete": True, "arch": ARCH, "N": settings["N"], "M": settings["M"],
            "lambda": float(lam), "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "train": meta | {"steps": int(steps), "lr": lr, "final_loss": final_loss, "device": device},
            **extra,
        },
        path,
    )  # fmt: skip
    partial.unlink(missing_ok=True)
    if log:
        log(f"{path}: lambda {lam:g}, {steps - start} steps in {time.perf_counter() - began:.1f} s")
    return path


def train(
    originals: Mapping[str, Sequence[np.ndarray]],
    codebooks: Mapping[str, np.ndarray],
    lambdas: Sequence[float],
    out_dir: str | os.PathLike,
    steps: int | None = None,
    crop_size: int | None = None,
    seed: int = 42,
    device: str | None = None,
    profile: str = "paper",
    init_from: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
    threads: int | None = None,
    **settings: Any,
) -> list[Path]:
    """Train one hyperprior per lambda on random crops of the originals' index frames; returns the paths.

    ``originals`` maps task -> list of float32 (N, C, T, D) originals (several tasks = a multi-task model);
    ``codebooks`` maps task -> (L, 256) centres (:func:`builders.transforms.fit_codebook`). Each lambda is
    saved to ``out_dir/lambda<λ>.pt`` (atomic; skipped when complete; resumed from ``.partial.pt``).
    ``init_from`` is a finished checkpoint to fine-tune from. ``settings`` override
    :data:`TRAIN_PROFILES` [profile] (N, M, batch_size, lr, base_lr, aux_lr, clip, save_every).
    """
    if profile not in TRAIN_PROFILES:
        raise ValueError(f"unknown training profile {profile!r}; expected one of {sorted(TRAIN_PROFILES)}")
    unknown = set(settings) - set(TRAIN_PROFILES[profile])
    if unknown:
        raise ValueError(f"train: unknown settings {sorted(unknown)}")
    cfg = TRAIN_PROFILES[profile] | settings
    cfg["crop_size"] = int(crop_size or cfg["crop_size"])
    steps = int(cfg["steps"] if steps is None else steps)
    if steps < 1 or not lambdas:
        raise ValueError(
            f"train: need steps >= 1 and at least one lambda (got steps={steps}, {len(lambdas)} lambdas)"
        )
    frames = _index_frames(originals, codebooks)
    device = _resolve_device(device)
    init_state, init_name = None, None
    if init_from is not None:
        base = load_checkpoint(Path(init_from))
        if (base.get("N"), base.get("M")) != (cfg["N"], cfg["M"]):
            raise ValueError(
                f"{init_from}: N/M {base.get('N')}/{base.get('M')} differ from {cfg['N']}/{cfg['M']}"
            )
        init_state, init_name = base["state_dict"], Path(init_from).name
    meta = {
        "profile": profile, "tasks": sorted(originals),
        "originals": {t: len(v) for t, v in originals.items()},
        "crop_size": cfg["crop_size"], "batch_size": cfg["batch_size"], "aux_lr": cfg["aux_lr"],
        "clip": cfg["clip"],
        "seed": seed, "init_from": init_name,
        "init_steps": int(base["train"]["steps"]) if init_from is not None else 0,
    }  # fmt: skip
    # Codebooks travel with the weights so that a checkpoint decodes on its own.
    extra = {
        "codebooks": {t: _torch().from_numpy(np.asarray(codebooks[t], dtype=np.float32)) for t in originals}
    }
    out = []
    for lam in lambdas:
        path = Path(out_dir) / lambda_name(lam)
        with _torch().random.fork_rng(devices=[]), torch_threads(threads):
            # fork_rng: seeding here must not change the caller's torch random stream.
            _train_one(
                frames, float(lam), path, steps, cfg, seed, device, init_state, meta, extra, cfg["lr"], log
            )
        out.append(path)
    return out


def train_all(
    originals: Mapping[str, Sequence[np.ndarray]],
    model_dir: str | os.PathLike,
    profile: str = "paper",
    ladder_profile: str | None = None,
    ladder: Mapping[str, Any] | None = None,
    codebooks: Mapping[str, np.ndarray] | None = None,
    seed: int = 42,
    device: str | None = None,
    steps: int | None = None,
    base_steps: int | None = None,
    log: Callable[[str], None] | None = None,
    threads: int | None = None,
    **settings: Any,
) -> dict[str, list[Path]]:
    """Train both variants for every lambda of the ladders: ``multi_task`` and ``task_specific/<task>``.

    Codebooks are fitted per task (:func:`builders.transforms.fit_codebook`, 10 originals, seed 42) unless
    given. ``ladder`` maps a codec name to a ladder overriding the table's (as ``get(name, ladder=...)``).
    With ``base_steps`` > 0 (the mini profile) one multi-task base model is trained first at the largest
    lambda and every per-lambda model is fine-tuned from it for ``steps`` steps.
    """
    ladder_profile = ladder_profile or profile
    model_dir = Path(model_dir)
    cfg = TRAIN_PROFILES[profile] | settings
    base_steps = int(cfg["base_steps"] if base_steps is None else base_steps)
    if codebooks is None:
        codebooks = {
            task: transforms.fit_codebook(list(feats), task, seed=seed) for task, feats in originals.items()
        }
    written: dict[str, list[Path]] = {}
    ladder = ladder or {}
    multi = ladders.resolve("hyperprior_multi_task", ladder_profile, ladder.get("hyperprior_multi_task"))
    specific = ladders.resolve(
        "hyperprior_task_specific", ladder_profile, ladder.get("hyperprior_task_specific")
    )
    init_from = None
    if base_steps > 0:
        # The base is trained at the largest lambda (the highest rate): fine-tuning lowers the rate within a
        # few steps, while raising quality takes many.
        base_lambda = max(lam for ladder_ in (multi, specific) for task in originals for lam in ladder_[task])
        base_settings = settings | {"lr": cfg["base_lr"]}
        (init_from,) = train(
            originals, codebooks, [base_lambda], model_dir / "base", steps=base_steps, seed=seed,
            device=device,
            profile=profile, log=log, threads=threads, **base_settings,
        )  # fmt: skip
    multi_lambdas = sorted({lam for task in originals for lam in multi[task]}, reverse=True)
    written["multi_task"] = train(
        originals, codebooks, multi_lambdas, model_dir / "multi_task", steps=steps, seed=seed, device=device,
        profile=profile, init_from=init_from, log=log, threads=threads, **settings,
    )  # fmt: skip
    for task, feats in originals.items():
        written[f"task_specific/{task}"] = train(
            {task: feats}, codebooks, specific[task], model_dir / "task_specific" / task, steps=steps,
            seed=seed,
            device=device, profile=profile, init_from=init_from, log=log, threads=threads, **settings,
        )  # fmt: skip
    return written


# --- the codecs ------------------------------------------------------------------------------------------


def _pad_amounts(size: int) -> tuple[int, int]:
    total = (-size) % PAD_MULTIPLE
    return total // 2, total - total // 2


class _HyperpriorCodec(Codec):
    """A trained hyperprior per (task, lambda), loaded from ``model_dir`` on first use."""

    param_name = "lambda"
    subdir = ""

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        ladder=None,
        profile: str = "paper",
        ranges: transforms.Ranges | None = None,
        device: str = "cpu",
        threads: int | None = 1,
    ) -> None:
        # ``ranges`` is accepted for a uniform call signature; this codec uses the checkpoints' codebooks.
        super().__init__(ladder=ladder, profile=profile, ranges=None)
        if model_dir is None:
            raise CodecUnavailable(
                f"{self.name}: no model_dir given; train the models with "
                "builders.codecs.hyperprior.train_all "
                f"and pass get({self.name!r}, model_dir=...)"
            )
        self.model_dir = Path(model_dir)
        self.device = device
        self.threads = threads
        self._models: dict[tuple[str, float], tuple[Any, dict[str, Any]]] = {}

    @classmethod
    def availability(cls) -> str | None:
        """None when torch and compressai are installed, else what is missing."""
        # find_spec, not import: importing compressai takes seconds (it pulls in torch_geometric).
        hints = {"torch": "pip install cfqa[build]", "compressai": "pip install --no-deps compressai==1.2.8"}
        for module, hint in hints.items():
            if importlib.util.find_spec(module) is None:
                return f"{cls.name}: {module} is not installed ({hint})"
        return None

    def checkpoint_path(self, task: str, lam: float) -> Path:
        """Where the model for ``task`` at lambda ``lam`` is expected."""
        raise NotImplementedError

    def _model(self, task: str, lam: float) -> tuple[Any, dict[str, Any]]:
        key = (task, float(lam))
        if key not in self._models:
            path = self.checkpoint_path(task, lam)
            if not path.is_file():
                raise CodecUnavailable(
                    f"no trained model {path} (train it with builders.codecs.hyperprior.train_all)"
                )
            ckpt = load_checkpoint(path)
            if not ckpt.get("complete"):
                raise CodecUnavailable(f"{path} is an unfinished training checkpoint")
            if task not in ckpt.get("codebooks", {}):
                raise CodecUnavailable(
                    f"{path} has no codebook for task {task!r} (trained on {ckpt['train']['tasks']})"
                )
            model = build_model(ckpt["N"], ckpt["M"])
            # The checkpoint holds the CDF tables computed by update() at the end of training; update()
            # without force only fills them in when missing, so encoder and decoder share exactly these.
            model.load_state_dict(ckpt["state_dict"], strict=False)
            model.eval().to(self.device)
            model.update()
            self._models[key] = (model, ckpt)
        return self._models[key]

    def version(self) -> str:
        compressai = _compressai()
        return f"compressai {compressai.__version__} {ARCH}, torch {_torch().__version__}"

    def parameters(self, task: str, param: float) -> dict[str, Any]:
        try:
            _, ckpt = self._model(task, param)
        except CodecUnavailable:
            return {"arch": ARCH, "checkpoint": None}
        return {
            "arch": ARCH, "N": ckpt["N"], "M": ckpt["M"],
            "checkpoint": self.checkpoint_path(task, param).name, "train": ckpt["train"],
            "transform": "k-means 256-level codebook index / 256, packed, padded to 64",
        }  # fmt: skip

    def _encode(self, x: np.ndarray, task: str, param: float) -> bytes:
        torch = _torch()
        model, ckpt = self._model(task, param)
        frame = transforms.pack(transforms.codebook_index(x, ckpt["codebooks"][task].numpy()))
        (top, bottom), (left, right) = _pad_amounts(frame.shape[0]), _pad_amounts(frame.shape[1])
        # Edge padding, as for small frames in training: no artificial step for the codec to spend bits on.
        padded = np.pad(frame.astype(np.float32) / 256.0, ((top, bottom), (left, right)), mode="edge")
        with torch.no_grad(), torch_threads(self.threads):
            out = model.compress(torch.from_numpy(padded)[None, None].to(self.device))
        (y_string,), (z_string,) = out["strings"]
        return struct.pack(">I", len(y_string)) + y_string + z_string

    def _decode(self, bitstream: bytes, shape: tuple[int, ...], task: str, param: float) -> np.ndarray:
        torch = _torch()
        model, ckpt = self._model(task, param)
        n, c, t, d = shape
        height, width = n * t, c * d
        if len(bitstream) < 4:
            raise CodecError(f"bitstream of {len(bitstream)} bytes is too short")
        (y_len,) = struct.unpack(">I", bitstream[:4])
        if y_len > len(bitstream) - 4:
            raise CodecError(
                f"bitstream header names a {y_len}-byte latent string but only {len(bitstream) - 4} follow"
            )
        strings = [[bitstream[4 : 4 + y_len]], [bitstream[4 + y_len :]]]
        (top, bottom), (left, right) = _pad_amounts(height), _pad_amounts(width)
        z_shape = ((height + top + bottom) // PAD_MULTIPLE, (width + left + right) // PAD_MULTIPLE)
        with torch.no_grad(), torch_threads(self.threads):
            x_hat = model.decompress(strings, z_shape)["x_hat"][0, 0].cpu().numpy()
        y = x_hat[top : top + height, left : left + width]
        if not np.all(np.isfinite(y)):
            raise CodecError("the decoder produced non-finite values")
        index = np.clip(np.round(y * 256.0), 0, 255).astype(np.uint8)
        return transforms.codebook_lookup(transforms.unpack(index, shape), ckpt["codebooks"][task].numpy())


class MultiTaskHyperprior(_HyperpriorCodec):
    """One hyperprior per lambda trained on crops of all three tasks (``model_dir/multi_task``)."""

    name = "hyperprior_multi_task"

    def checkpoint_path(self, task: str, lam: float) -> Path:
        return self.model_dir / "multi_task" / lambda_name(lam)


class TaskSpecificHyperprior(_HyperpriorCodec):
    """One hyperprior per task and lambda (``model_dir/task_specific/<task>``)."""

    name = "hyperprior_task_specific"

    def checkpoint_path(self, task: str, lam: float) -> Path:
        return self.model_dir / "task_specific" / task / lambda_name(lam)
