"""Seconds per episode of the JAX policy, from the object state and from images: eager rendering, images
drawn on demand, and on demand + lockstep batches, each policy's physical limit beside it and each row's
peak RSS (the rows, limits and table are ``eval_speed_rows``'s, shared with ``eval_speed.py``; this script
is its twin in the JAX resolve). There is no ``lerobot-eval`` row: LeRobot cannot load a JAX checkpoint.

    ./pants run benchmarks:eval_speed_jax -- --workdir /tmp/eval_speed_jax --episodes 4 --rounds 3

The first run records scripted demonstrations (with the object state and no cameras; with the default
cameras) and trains the repository's own configs for a few hundred steps into ``--workdir``: ``so101_state``
and ``so101_cpu`` at their real sizes (success does not matter for speed). One XLA thread, as the LeRobot
rows run one torch thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import benchmarks  # noqa: F401  (picks the headless GL backend before mujoco is imported)
from benchmarks.eval_speed_rows import (
    HARNESS_MODES,
    Rows,
    add_harness_arguments,
    counting_infer_batch,
    load_line,
    measure_harness_round,
    print_table,
    print_table_so_far,
    release_freed_memory,
)

#: name -> (config, recorded with the object state and no cameras)
POLICIES: dict[str, tuple[str, bool]] = {
    "jax_state": ("so101_state", True),
    "jax_vision": ("so101_cpu", False),
}
NO_LEROBOT_EVAL = "No lerobot-eval row: LeRobot's lerobot-eval cannot load a JAX (openpi-style) checkpoint."


def prepare(workdir: Path, train_steps: int, policies: list[str]) -> dict[str, Path]:
    """One dataset per kind of input and one checkpoint per policy, made once and reused."""
    from backends.jax_openpi import train as train_lib
    from backends.jax_openpi.config import get_config
    from libs.datasets.record import record_scripted_dataset
    from libs.sim.scene_config import SceneConfig

    checkpoints = {}
    for name in policies:
        config_name, state_only = POLICIES[name]
        dataset = workdir / ("demos_state" if state_only else "demos")
        if not (dataset / "meta" / "info.json").is_file():
            scene = SceneConfig()
            if state_only:
                scene = dataclasses.replace(scene.with_cameras([]), environment_state=True)
            record_scripted_dataset(dataset, episodes=10, seed=0, scene=scene, progress=True)
        run = workdir / f"run_{name}"
        if not (run / "checkpoints" / f"{train_steps:06d}").is_dir():
            config = get_config(config_name).replace(save_interval=train_steps)
            train_lib.train(config, dataset, run, train_steps, compute_missing_norm_stats=True)
        checkpoints[name] = run / "checkpoints" / f"{train_steps:06d}"
    return checkpoints


def describe(policy: object) -> str:
    config = policy.config  # type: ignore[attr-defined]
    inputs = f"{len(config.cameras)} cameras {config.model.image_size[0]}²" if config.cameras else "state"
    return (
        f"JAX {config.name} ({inputs}), chunk {config.model.action_horizon}, "
        f"{config.n_action_steps} executed, {config.num_sample_steps} Euler steps"
    )


def measure(
    args: argparse.Namespace, checkpoints: dict[str, Path], policies: list[str], modes: list[str]
) -> Rows:
    from backends.jax_openpi.adapter import JaxOpenpiPolicy

    seeds = list(range(args.episodes))
    rows = Rows()
    for round_index in range(args.rounds):
        round_label = f"round {round_index + 1}/{args.rounds}"
        for name in policies:
            policy = JaxOpenpiPolicy(checkpoints[name])
            rows.labels.setdefault(name, describe(policy))
            predictions = counting_infer_batch(policy)
            measure_harness_round(rows, name, policy, seeds, args.max_steps, modes, predictions, round_label)
            del policy, predictions
            release_freed_memory()
        if round_index + 1 < args.rounds:
            print_table_so_far(rows, modes, round_label)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_harness_arguments(parser, "/tmp/so101_eval_speed_jax", POLICIES, HARNESS_MODES)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    policies = [name for name in args.policies.split(",") if name]
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = [name for name in policies if name not in POLICIES] + [
        m for m in modes if m not in HARNESS_MODES
    ]
    if unknown:
        parser.error(f"unknown {unknown}: policies are {list(POLICIES)}, modes {list(HARNESS_MODES)}")

    from libs.compute_threads import apply_threads

    apply_threads(1)  # before JAX starts its CPU client
    args.workdir.mkdir(parents=True, exist_ok=True)
    checkpoints = prepare(args.workdir, args.train_steps, policies)
    load_before = os.getloadavg()
    rows = measure(args, checkpoints, policies, modes)
    load_after = os.getloadavg()
    title = (
        f"Seconds per episode ({args.max_steps}-step limit, {args.episodes} episodes × {args.rounds} rounds, "
        "median; ratios are medians of per-round ratios; one XLA thread)"
    )
    print_table(rows, modes, title, notes=[NO_LEROBOT_EVAL])
    print(load_line(load_before, load_after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
