"""Seconds per episode of LeRobot checkpoints: eager rendering, images drawn on demand, on demand + lockstep
batches, and LeRobot's own ``lerobot-eval`` (through this lab's env plugin) — same checkpoint, same seeds,
same machine, the modes run in turn within each round so their ratios are paired; medians over rounds.

    ./pants run benchmarks:eval_speed -- --workdir /tmp/eval_speed --episodes 4 --rounds 3

The first run records scripted demonstrations and trains three small checkpoints into ``--workdir`` (a few
hundred steps: success does not matter for speed): ACT (chunk 30, all 30 executed), Diffusion
(n_action_steps 8, n_obs_steps 2) and ACT with temporal ensembling (a new chunk every step: the per-step
policy). One torch thread, one process: episodes/min/core is 60 / seconds per episode. The load average is
printed with the table: the figures are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import benchmarks  # noqa: F401  (picks the headless GL backend before mujoco is imported)

POLICIES: dict[str, tuple[str, dict[str, Any], str]] = {
    "act": ("act", {}, "ACT, chunk 30, 30 executed"),
    "diffusion": ("diffusion", {}, "Diffusion, 8 executed, n_obs_steps 2"),
    "act_ensemble": (
        "act",
        {"n_action_steps": 1, "temporal_ensemble_coeff": 0.01},
        "ACT + temporal ensemble (per step)",
    ),
}
MODES = ("eager", "on_demand", "on_demand_batched", "lerobot_eval")


def prepare(workdir: Path, train_steps: int, policies: list[str]) -> dict[str, Path]:
    """The dataset and one checkpoint per policy, made once and reused."""
    from backends.torch_lerobot.train import train_policy
    from libs.datasets.record import record_scripted_dataset

    dataset = workdir / "demos"
    if not (dataset / "meta" / "info.json").is_file():
        record_scripted_dataset(dataset, episodes=10, seed=0, progress=True)
    checkpoints = {}
    for name in policies:
        policy_type, overrides, _ = POLICIES[name]
        run = workdir / f"run_{name}"
        final = run / "checkpoints" / f"{train_steps:06d}" / "pretrained_model"
        if not final.is_dir():
            train_policy(
                policy_type,
                dataset,
                run,
                steps=train_steps,
                policy_overrides=overrides,
                threads=1,
                log_freq=50,
            )
        checkpoints[name] = final
    return checkpoints


def _env(policy: Any, max_steps: int, image_rendering: str) -> Any:
    from libs.sim.env import SO101PickPlaceEnv
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig.from_dict(policy.card.scene)
    scene = scene.with_cameras([camera.name for camera in policy.spec.cameras])
    return SO101PickPlaceEnv(scene=scene, max_steps=max_steps, image_rendering=image_rendering)


def harness_seconds(policy: Any, seeds: list[int], max_steps: int, mode: str) -> float:
    """Seconds per episode through the harness (contract checks included), policy already loaded."""
    from libs.evaluation.play.evaluated_episode import evaluate_episode, evaluate_lockstep
    from libs.sim.play.episode import EpisodeStart

    stats = policy.card.action_stats
    if mode == "on_demand_batched":
        envs = [_env(policy, max_steps, "on_demand") for _ in seeds]
        try:
            envs[0].reset(seed=0)  # renderers and GL contexts made outside the timing, as for the others
            for env in envs:
                env.reset(seed=0)
            started = time.perf_counter()
            evaluate_lockstep(policy, envs, [EpisodeStart(seed) for seed in seeds], action_stats=stats)
            return (time.perf_counter() - started) / len(seeds)
        finally:
            for env in envs:
                env.close()
    env = _env(policy, max_steps, "eager" if mode == "eager" else "on_demand")
    try:
        env.reset(seed=0)
        started = time.perf_counter()
        for seed in seeds:
            evaluate_episode(policy, env, seed, action_stats=stats)
        return (time.perf_counter() - started) / len(seeds)
    finally:
        env.close()


def lerobot_eval_seconds(checkpoint: Path, episodes: int, max_steps: int, out: Path) -> float:
    """``lerobot-eval`` as a user runs it (its defaults: batch 1 here, videos of the first episodes), in this
    process; its own ``eval_ep_s`` (the rollouts, not loading)."""
    from backends.torch_lerobot import lerobot_eval

    argv = [
        "lerobot-eval",
        "--env.type=so101_pick_place",
        f"--env.scene_path={checkpoint / 'card.json'}",  # the checkpoint's training scene
        f"--env.episode_length={max_steps}",
        f"--policy.path={checkpoint}",
        "--policy.device=cpu",
        f"--eval.n_episodes={episodes}",
        "--eval.batch_size=1",
        "--eval.use_async_envs=false",
        "--seed=0",
        f"--output_dir={out}",
    ]
    saved = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            lerobot_eval.main()
    finally:
        sys.argv = saved
    info = json.loads((out / "eval_info.json").read_text())
    return float(_find(info, "eval_ep_s"))


def _find(tree: Any, key: str) -> Any:
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/so101_eval_speed"))
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=4, help="episodes per mode per round (= batch size)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--modes", default=",".join(MODES))
    return parser


def measure(
    args: argparse.Namespace, checkpoints: dict[str, Path], policies: list[str], modes: list[str]
) -> dict[tuple[str, str], list[float]]:
    """Seconds per episode of every (policy, mode), one value per round; the modes run in turn within a
    round so that their ratios are paired."""
    from backends.torch_lerobot.adapter import LeRobotPolicy

    seeds = list(range(args.episodes))
    seconds: dict[tuple[str, str], list[float]] = {}
    for round_index in range(args.rounds):
        for name in policies:
            policy = LeRobotPolicy(checkpoints[name], device="cpu")
            for mode in modes:
                if mode == "lerobot_eval":
                    out = args.workdir / "lerobot_eval" / f"{name}_{round_index}_{time.time_ns()}"
                    value = lerobot_eval_seconds(checkpoints[name], args.episodes, args.max_steps, out)
                else:
                    value = harness_seconds(policy, seeds, args.max_steps, mode)
                seconds.setdefault((name, mode), []).append(value)
                print(f"round {round_index + 1}/{args.rounds} {name:13s} {mode:18s} {value:6.2f} s/episode")
    return seconds


def _paired_ratio(seconds: dict[tuple[str, str], list[float]], name: str, mode: str, baseline: str) -> str:
    """Median over rounds of baseline seconds / this mode's seconds, or a dash without the baseline."""
    if (name, baseline) not in seconds:
        return "–"
    ratios = [b / v for b, v in zip(seconds[(name, baseline)], seconds[(name, mode)], strict=True)]
    return f"{statistics.median(ratios):.2f}"


def print_table(
    args: argparse.Namespace,
    seconds: dict[tuple[str, str], list[float]],
    policies: list[str],
    modes: list[str],
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Seconds per episode ({args.max_steps}-step limit, {args.episodes} episodes × "
        f"{args.rounds} rounds, median; ratios are medians of per-round ratios)"
    )
    for column in ("policy", "mode", "s / episode", "episodes/min/core", "× eager", "× lerobot-eval"):
        table.add_column(column, justify="left" if column in ("policy", "mode") else "right")
    for name in policies:
        for mode in modes:
            median = statistics.median(seconds[(name, mode)])
            table.add_row(
                POLICIES[name][2],
                mode.replace("_", " "),
                f"{median:.2f}",
                f"{60.0 / median:.1f}",
                _paired_ratio(seconds, name, mode, "eager"),
                _paired_ratio(seconds, name, mode, "lerobot_eval"),
            )
    Console(width=140).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    policies = [name for name in args.policies.split(",") if name]
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = [name for name in policies if name not in POLICIES] + [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown {unknown}: policies are {list(POLICIES)}, modes {list(MODES)}")

    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    checkpoints = prepare(args.workdir, args.train_steps, policies)
    load_before = os.getloadavg()
    seconds = measure(args, checkpoints, policies, modes)
    load_after = os.getloadavg()
    print_table(args, seconds, policies, modes)
    print(
        f"load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in load_after)} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
