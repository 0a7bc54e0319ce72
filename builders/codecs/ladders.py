"""Rate ladders: the 10 codec parameters per (profile, codec, task), highest rate (rate_index 0) first.

One table, so that calibration changes one place. ``paper`` holds the reference's QPs and lambdas;
``mini`` the ladders chosen by measurement for the offline mini profile (65-token, 192-dim DINOv2 features
with data-derived ranges), each spanning near-lossless to clearly damaging (see ``bench/codecs.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from builders.transforms import TASKS

POINTS = 10

_HM_QPS = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
_HYBRID_LAMBDAS = [0.0005, 0.001, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.007, 0.01, 0.015]
_CLS_LAMBDAS = [0.0016, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.008, 0.01, 0.012, 0.015]


def _same(points: Sequence[float]) -> dict[str, list[float]]:
    return {task: list(points) for task in TASKS}


def _lambda_ladder(lambdas: Sequence[float]) -> list[float]:
    """Lambdas ascend with rate, so rate_index 0 (highest rate) is the largest lambda."""
    return sorted(lambdas, reverse=True)


# The reference published the task-specific lambda list for cls only; seg's and dpt's lists are not known
# here, so they reuse the multi-task list (stated in the provenance as the ladder).
LADDERS: dict[str, dict[str, dict[str, list[float]]]] = {
    "paper": {
        "hm": _same(_HM_QPS),
        "vtm": _same(_HM_QPS),
        "hevc": _same(_HM_QPS),
        "vvenc": _same(_HM_QPS),
        # SVT-AV1 quantiser (0..63), matching the HEVC ladder's distortion range on 10-bit frames.
        "av1": _same([2, 4, 7, 9, 12, 14, 17, 19, 22, 25]),
        "hyperprior_multi_task": _same(_lambda_ladder(_HYBRID_LAMBDAS)),
        "hyperprior_task_specific": {
            "cls": _lambda_ladder(_CLS_LAMBDAS),
            "seg": _lambda_ladder(_HYBRID_LAMBDAS),
            "dpt": _lambda_ladder(_HYBRID_LAMBDAS),
        },
    },
    "mini": {
        "hm": _same([24, 27, 30, 33, 36, 39, 42, 45, 48, 51]),
        "vtm": _same([24, 27, 30, 33, 36, 39, 42, 45, 48, 51]),
        "hevc": _same([24, 27, 30, 33, 36, 39, 42, 45, 48, 51]),
        "vvenc": _same([24, 27, 30, 33, 36, 39, 42, 45, 48, 51]),
        "av1": _same([20, 25, 30, 35, 40, 45, 50, 55, 59, 63]),
        "hyperprior_multi_task": _same([0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005]),
        "hyperprior_task_specific": _same([0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005]),
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
