"""Benchmark: mini-profile training throughput with 1 thread vs all cores, and the default budget's time.

Trains the default mini configuration (hidden 192, 6 blocks, 3 heads, batch 32, 112 px) for a few steps
with ``torch.set_num_threads(1)`` (the baseline) and with all cores (at most 4), each from the same seed,
and prints samples/s, CPU seconds per step, the speed ratio and the projected time of the default budget
(``MiniConfig().train_steps`` steps). On a machine shared with other busy processes the multi-thread run
can be SLOWER than one thread (threads wait for each other); ``builders.mini.default_threads`` probes that.

    .venv/bin/python bench/mini_train.py [--steps 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from builders.mini import MiniConfig, make_heads, make_model, train  # noqa: E402
from builders.scenes import generate_scenes, stack_scenes  # noqa: E402


def run(threads: int, steps: int, data: dict) -> tuple[float, float]:
    """(samples/s, CPU seconds per step) of ``steps`` training steps with ``threads`` threads."""
    torch.set_num_threads(threads)
    cfg = MiniConfig(train_steps=steps, warmup_steps=1)
    model = make_model(cfg)
    heads = make_heads(cfg, model)
    train(model, heads, data, MiniConfig(train_steps=1, warmup_steps=1))  # warm-up: allocator, thread pool
    cpu = time.process_time()
    stats = train(model, heads, data, cfg)
    return stats["samples_per_s"], (time.process_time() - cpu) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    cores = min(4, os.cpu_count() or 1)
    t = time.perf_counter()
    data = stack_scenes(generate_scenes(400, seed=0))
    per_scene = (time.perf_counter() - t) / 400
    default = MiniConfig()
    print(
        f"scenes: {per_scene * 1e3:.1f} ms each -> {default.n_train} training scenes in "
        f"{per_scene * default.n_train:.1f} s"
    )
    base, base_cpu = run(1, args.steps, data)
    print(
        f"1 thread : {base:6.1f} samples/s, {base_cpu:.2f} CPU s/step, "
        f"default budget ({default.train_steps} steps) "
        f"{default.train_steps * default.batch_size / base:.0f} s"
    )
    if cores > 1:
        multi, multi_cpu = run(cores, args.steps, data)
        print(
            f"{cores} threads: {multi:6.1f} samples/s, {multi_cpu:.2f} CPU s/step, "
            f"default budget {default.train_steps * default.batch_size / multi:.0f} s, "
            f"ratio {multi / base:.2f}x vs 1 thread"
        )
    print(f"load average now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
