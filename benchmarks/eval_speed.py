"""Seconds per episode of LeRobot checkpoints: eager rendering, images drawn on demand, on demand + lockstep
batches, and LeRobot's own ``lerobot-eval`` (through this lab's env plugin) — same checkpoint, same seeds,
same machine, the modes run in turn within each round so their ratios are paired; medians over rounds. Each
policy's physical limit is measured beside it (``eval_speed_rows``: the episode's physics and the images it
reads with no policy, plus its chunks each timed alone), and each row's peak RSS.

    ./pants run benchmarks:eval_speed -- --workdir /tmp/eval_speed --episodes 4 --rounds 3

The first run records scripted demonstrations and trains one small checkpoint per policy into ``--workdir``
(a few hundred steps at the ``cpu`` preset's sizes: success does not matter for speed): ACT, Diffusion, ACT
with temporal ensembling (a new chunk every step: the per-step policy), and SmolVLA and Pi0 on tiny random
backbones built there (the real ones come from a hub this lab cannot reach). One torch thread, one process:
episodes/min/core is 60 / seconds per episode. The load average is printed with the table: the figures are
only as quiet as the machine. The JAX policy runs in its own resolve: ``benchmarks/eval_speed_jax.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import benchmarks  # noqa: F401  (picks the headless GL backend before mujoco is imported)
from benchmarks.eval_speed_rows import (
    HARNESS_MODES,
    LEROBOT_EVAL,
    Rows,
    add_harness_arguments,
    load_line,
    measure_harness_round,
    peak_rss,
    print_table,
    print_table_so_far,
    release_freed_memory,
    report,
)

#: name -> (policy type, config overrides on the cpu preset)
POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "act": ("act", {}),
    "act_ensemble": ("act", {"n_action_steps": 1, "temporal_ensemble_coeff": 0.01}),
    "diffusion": ("diffusion", {}),
    "smolvla": ("smolvla", {}),
    "pi0": ("pi0", {}),
}
MODES = (*HARNESS_MODES, LEROBOT_EVAL)


def prepare(workdir: Path, train_steps: int, policies: list[str]) -> dict[str, Path]:
    """The dataset and one checkpoint per policy, made once and reused."""
    from backends.torch_lerobot.train import train_policy
    from libs.datasets.record import record_scripted_dataset

    dataset = workdir / "demos"
    if not (dataset / "meta" / "info.json").is_file():
        record_scripted_dataset(dataset, episodes=10, seed=0, progress=True)
    checkpoints = {}
    for name in policies:
        policy_type, overrides = POLICIES[name]
        run = workdir / f"run_{name}"
        final = run / "checkpoints" / f"{train_steps:06d}" / "pretrained_model"
        tiny = (
            {"tiny_backbone_dir": workdir / f"backbone_{policy_type}"}
            if policy_type in ("smolvla", "pi0")
            else {}
        )
        if not final.is_dir():
            train_policy(
                policy_type,
                dataset,
                run,
                steps=train_steps,
                policy_overrides=overrides,
                threads=1,
                log_freq=50,
                **tiny,
            )
        checkpoints[name] = final
    return checkpoints


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
    add_harness_arguments(parser, "/tmp/so101_eval_speed", POLICIES, MODES)
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="measure this trained checkpoint as policy NAME instead of training one (repeatable): a tiny "
        "model that has not learned the action range ends its episodes early on a contract violation",
    )
    return parser


def given_checkpoints(parser: argparse.ArgumentParser, values: list[str]) -> dict[str, Path]:
    found = {}
    for value in values:
        name, _, directory = value.partition("=")
        if name not in POLICIES or not directory:
            parser.error(f"--checkpoint {value!r}: use NAME=DIR with NAME one of {list(POLICIES)}")
        found[name] = Path(directory)
    return found


def describe(policy: Any) -> str:
    """The row's label, from the checkpoint's config."""
    config = policy.config
    label = {"act": "ACT", "diffusion": "Diffusion", "smolvla": "SmolVLA (tiny)", "pi0": "Pi0 (tiny)"}
    words = [label.get(config.type, config.type), f"chunk {policy.spec.chunk_length}"]
    if getattr(config, "temporal_ensemble_coeff", None) is not None:
        words.append("temporal ensemble (a chunk every step)")
    else:
        words.append(f"{config.n_action_steps} executed")
    if config.n_obs_steps > 1:
        words.append(f"n_obs_steps {config.n_obs_steps}")
    steps = getattr(config, "num_inference_steps", None) or getattr(config, "num_steps", None)
    if steps:
        words.append(f"{steps} denoising steps")
    return ", ".join(words)


def counting_chunks(policy: Any) -> Any:
    """A running count of the chunks ``policy`` computes (rows through ``predict_action_chunk``)."""
    import torch

    count = [0]
    model = policy.policy
    original = model.predict_action_chunk

    def counted(batch: dict[str, Any], **kwargs: Any) -> Any:
        count[0] += next(value.shape[0] for value in batch.values() if isinstance(value, torch.Tensor))
        return original(batch, **kwargs)

    model.predict_action_chunk = counted
    return lambda: count[0]


def measure(
    args: argparse.Namespace, checkpoints: dict[str, Path], policies: list[str], modes: list[str]
) -> Rows:
    """Every (policy, mode), one value per round; the modes run in turn within a round so that their ratios
    are paired. ``lerobot-eval`` runs after the harness modes with this process's policy freed."""
    from backends.torch_lerobot.adapter import LeRobotPolicy

    seeds = list(range(args.episodes))
    rows = Rows()
    harness_modes = [mode for mode in modes if mode != LEROBOT_EVAL]
    for round_index in range(args.rounds):
        round_label = f"round {round_index + 1}/{args.rounds}"
        for name in policies:
            policy = LeRobotPolicy(checkpoints[name], device="cpu")
            given = args.given.get(name)
            rows.labels.setdefault(name, describe(policy) + (f", from {given}" if given else ""))
            predictions = counting_chunks(policy)
            measure_harness_round(
                rows, name, policy, seeds, args.max_steps, harness_modes, predictions, round_label
            )
            del policy, predictions
            release_freed_memory()
            if LEROBOT_EVAL in modes:
                out = args.workdir / "lerobot_eval" / f"{name}_{round_index}_{time.time_ns()}"
                with peak_rss() as peak:
                    value = lerobot_eval_seconds(checkpoints[name], args.episodes, args.max_steps, out)
                rows.add(name, LEROBOT_EVAL, value, peak[0])
                report(round_label, name, LEROBOT_EVAL, value, peak[0])
                release_freed_memory()
        if round_index + 1 < args.rounds:
            print_table_so_far(rows, modes, round_label)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    policies = [name for name in args.policies.split(",") if name]
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = [name for name in policies if name not in POLICIES] + [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown {unknown}: policies are {list(POLICIES)}, modes {list(MODES)}")

    import torch  # noqa: F401  (apply_threads sets an imported torch's threads too)

    from libs.compute_threads import apply_threads

    apply_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.given = given_checkpoints(parser, args.checkpoint)
    to_train = [name for name in policies if name not in args.given]
    checkpoints = {**prepare(args.workdir, args.train_steps, to_train), **args.given}
    load_before = os.getloadavg()
    rows = measure(args, checkpoints, policies, modes)
    load_after = os.getloadavg()
    title = (
        f"Seconds per episode ({args.max_steps}-step limit, {args.episodes} episodes × {args.rounds} rounds, "
        "median; ratios are medians of per-round ratios; one torch thread)"
    )
    print_table(rows, modes, title)
    print(load_line(load_before, load_after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
