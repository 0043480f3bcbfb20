"""Evaluation throughput: serial in-process vs Ray with 1..N workers, and the harness's own overhead.

    ./pants run benchmarks:eval_scaling_run -- --episodes 24

Prints two tables (scripted policy, no cameras rendered, so the numbers measure the harness and the physics):
- harness overhead: seconds per episode of the bare env loop (reset, infer, step) vs ``evaluate_episode`` with
  every contract check and record keeping; target ≤ 5%;
- throughput: episodes per minute serially in this process, then on Ray with 1, 2, … workers up to the
  core count; speedup is relative to Ray with 1 worker; target ≥ 0.85 × workers on idle cores.
Ray's start-up happens once, before the rows, and is printed separately (not in the rows); each sweep's
actor start-up (policy load + env build per worker) is included, as a user experiences it; use more
episodes to amortise it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from libs.evaluation.play.episode_worker import make_env
from libs.evaluation.play.evaluated_episode import evaluate_episode
from libs.evaluation.sweep import EnvSettings, SweepConfig, connect_ray, evaluate
from libs.policy_api.registry import make_policy

OVERHEAD_TARGET = 0.05
SPEEDUP_TARGET = 0.85


def bare_loop_seconds(policy: Any, env: Any, seeds: range) -> tuple[float, int]:
    """Per-episode time of the loop every evaluation needs at minimum: no checks, no bookkeeping."""
    total_steps = 0
    started = time.perf_counter()
    for seed in seeds:
        observation, _ = env.reset(seed=seed)
        policy.reset()
        policy.attach_env(env)
        queue: list = []
        while True:
            if not queue:
                queue = list(policy.infer(observation)[: policy.spec.n_action_steps])
            observation, _, terminated, truncated, _ = env.step(queue.pop(0))
            total_steps += 1
            if terminated or truncated:
                break
    return (time.perf_counter() - started) / len(seeds), total_steps


def harness_seconds(policy: Any, env: Any, seeds: range) -> tuple[float, int]:
    total_steps = 0
    started = time.perf_counter()
    for seed in seeds:
        total_steps += evaluate_episode(policy, env, seed, keep_chunks=True).record.steps
    return (time.perf_counter() - started) / len(seeds), total_steps


def sweep_seconds(episodes: int, max_steps: int | None, serial: bool, workers: int | None) -> float:
    config = SweepConfig(
        policy="scripted",
        episodes=episodes,
        env=EnvSettings(max_steps=max_steps),
        serial=serial,
        workers=workers,
        progress=False,
    )
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        evaluate(config, Path(out), argv=["benchmark"])
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=24, help="episodes per throughput row")
    parser.add_argument("--overhead-episodes", type=int, default=8, help="episodes for the overhead table")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the overhead measurement")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    arguments = parser.parse_args()
    seeds = range(arguments.overhead_episodes)
    policy = make_policy("scripted")
    env = make_env(EnvSettings(max_steps=arguments.max_steps), policy.spec.action_space, ())
    bare_loop_seconds(policy, env, range(1))  # warm caches (IK model, renderer-free env)
    bare, harness = [], []
    for _ in range(arguments.repeats):  # interleaved, so drifting machine load hits both alike
        bare.append(bare_loop_seconds(policy, env, seeds))
        harness.append(harness_seconds(policy, env, seeds))
    bare_s = statistics.median(seconds for seconds, _ in bare)
    harness_s = statistics.median(seconds for seconds, _ in harness)
    steps = bare[0][1] / len(seeds)
    print(
        f"\nHarness overhead ({len(seeds)} episodes, median of {arguments.repeats}, "
        f"{steps:.0f} steps/episode)"
    )
    print(f"{'loop':<28}{'s/episode':>12}{'ms/step':>10}{'overhead':>10}")
    print(f"{'bare env loop':<28}{bare_s:>12.3f}{1000 * bare_s / steps:>10.3f}{'':>10}")
    overhead = (harness_s - bare_s) / bare_s
    per_step = 1000 * harness_s / steps
    print(f"{'evaluate_episode (checks)':<28}{harness_s:>12.3f}{per_step:>10.3f}{overhead:>10.1%}")
    print(f"target: overhead <= {OVERHEAD_TARGET:.0%}: {'met' if overhead <= OVERHEAD_TARGET else 'MISSED'}")

    rows: list[tuple[str, int, float]] = []
    serial_s = sweep_seconds(arguments.episodes, arguments.max_steps, serial=True, workers=None)
    rows.append(("serial, in-process", 1, serial_s))
    ray_start = time.perf_counter()
    connect_ray(None, arguments.max_workers)
    ray_start_s = time.perf_counter() - ray_start
    for workers in range(1, arguments.max_workers + 1):
        seconds = sweep_seconds(arguments.episodes, arguments.max_steps, serial=False, workers=workers)
        rows.append((f"ray, {workers} worker(s)", workers, seconds))
    ray_one = rows[1][2]
    print(
        f"\nThroughput ({arguments.episodes} episodes per row; "
        f"Ray start-up {ray_start_s:.1f} s, not included)"
    )
    print(f"{'mode':<24}{'seconds':>10}{'episodes/min':>14}{'speedup':>10}{'per worker':>12}")
    for name, workers, seconds in rows:
        per_minute = 60.0 * arguments.episodes / seconds
        speedup = ray_one / seconds
        efficiency = f"{speedup / workers:.2f}" if name.startswith("ray") else ""
        print(f"{name:<24}{seconds:>10.1f}{per_minute:>14.1f}{speedup:>10.2f}{efficiency:>12}")
    worst = min(ray_one / seconds / workers for name, workers, seconds in rows if name.startswith("ray"))
    verdict = "met" if worst >= SPEEDUP_TARGET else "MISSED"
    print(f"target: speedup >= {SPEEDUP_TARGET} x workers (worst row {worst:.2f}): {verdict}")
    load = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} cores visible; load average {load:.1f} (other jobs skew the speedup)")


if __name__ == "__main__":
    main()
