"""Rate ladders: the 10 codec parameters per (profile, codec, task), highest rate (rate_index 0) first.

One table, so that calibration changes one place. ``paper`` holds the reference's QPs and lambdas;
``mini`` the ladders chosen by measurement for the offline mini profile (65-token, 192-dim DINOv2 features
with data-derived ranges), each spanning near-lossless (for the learned codecs: their best after the short
mini training) to clearly damaging, with BPFP and decoded error monotone in rate_index (``bench/codecs.py``).
x265 on these frames: QP 24 gives token cosine ~0.997, QP 51 ~0.82-0.91; QP <= 20 is lossless in effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from builders.transforms import TASKS

POINTS = 10

_HM_QPS = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
_HYBRID_LAMBDAS = [0.0005, 0.001, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.007, 0.01, 0.015]
_CLS_LAMBDAS = [0.0016, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.008, 0.01, 0.012, 0.015]
_MINI_QPS = [24, 27, 30, 33, 36, 39, 42, 45, 48, 51]
_MINI_LAMBDAS = [0.01, 0.0015, 0.001, 0.0006, 0.0004, 0.0003, 0.0002, 0.00015, 0.0001, 0.00006]


def _same(points: Sequence[float]) -> dict[str, list[float]]:
    return {task: list(points) for task in TASKS}


def _lambda_ladder(lambdas: Sequence[float]) -> list[float]:
    """Lambdas ascend with rate, so rate_index 0 (highest rate) is the largest lambda."""
    return sorted(lambdas, reverse=True)


# The reference published the task-specific lambda list for cls only; seg's and dpt's lists are not known
# here, so they reuse the multi-task list (the provenance records the lambda of every point).
LADDERS: dict[str, dict[str, dict[str, list[float]]]] = {
    "paper": {
        "hm": _same(_HM_QPS),
        "vtm": _same(_HM_QPS),
        "hevc": _same(_HM_QPS),
        "vvenc": _same(_HM_QPS),
        # SVT-AV1 quantiser (0..63): qp 1..10 spans the MSE range of x265 QP 2..20 on a synthetic 257x1536
        # frame with the paper's cls range (bench/codecs.py); no reference exists for AV1.
        "av1": _same([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        "hyperprior_multi_task": _same(_lambda_ladder(_HYBRID_LAMBDAS)),
        "hyperprior_task_specific": {
            "cls": _lambda_ladder(_CLS_LAMBDAS),
            "seg": _lambda_ladder(_HYBRID_LAMBDAS),
            "dpt": _lambda_ladder(_HYBRID_LAMBDAS),
        },
    },
    "mini": {
        "hm": _same(_MINI_QPS),
        "vtm": _same(_MINI_QPS),
        "hevc": _same(_MINI_QPS),
        "vvenc": _same(_MINI_QPS),
        "av1": _same([20, 25, 30, 35, 40, 45, 50, 55, 59, 63]),
        # Trained with the mini schedule (hyperprior.TRAIN_PROFILES["mini"]): a base at the top lambda, 20
        # fine-tuning steps per lambda. Below 0.0015 the rate falls steadily; above it the short training,
        # not lambda, limits quality, so more high lambdas would only repeat the top point.
        "hyperprior_multi_task": _same(_MINI_LAMBDAS),
        "hyperprior_task_specific": _same(_MINI_LAMBDAS),
    },
}


def profiles() -> list[str]:
    """Profiles with a ladder table."""
    return sorted(LADDERS)


def get_ladder(codec: str, profile: str = "paper") -> dict[str, list[float]]:
    """The per-task ladder of ``codec`` in ``profile`` (a copy)."""
    if profile not in LADDERS:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(profiles())}")
    if codec not in LADDERS[profile]:
        raise ValueError(f"no {profile!r} rate ladder for codec {codec!r}; pass ladder=[...] (10 points)")
    return {task: list(points) for task, points in LADDERS[profile][codec].items()}


def resolve(
    codec: str, profile: str, ladder: Mapping[str, Sequence[float]] | Sequence[float] | None
) -> dict[str, list[float]]:
    """An explicit ``ladder`` (one list for all tasks, or one per task) or the table's; 10 points each."""
    if ladder is None:
        table = get_ladder(codec, profile)
    elif isinstance(ladder, Mapping):
        table = {str(task): [float(p) for p in points] for task, points in ladder.items()}
    else:
        table = _same([float(p) for p in ladder])
    for task, points in table.items():
        if len(points) != POINTS:
            raise ValueError(f"{codec}: ladder for {task!r} has {len(points)} points, expected {POINTS}")
    return table
