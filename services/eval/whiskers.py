"""``./pants run services/eval:whiskers -- --policy scripted --seed 0 --out results/whiskers``

Plays episodes of a policy as the sweep plays them (its worker: the checkpoint's decided scene, the
training-scene check, every contract check), forward-simulates each predicted chunk from a copy of the
state, and writes per seed: the whisker MP4 (overhead + free 3-D view), a summary PNG, the recording
(``.npz``), the diagnostics (``diagnostics.json``, also printed: the likely causes of failure) and
optionally a rerun ``.rrd``. Torch and JAX checkpoints run through ``services/eval:whiskers-torch_lerobot``
and ``services/eval:whiskers-jax_openpi``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from libs.compute_threads import add_threads_flag, decide_and_apply
from libs.config_flags import add_flags, config_from_flags
from libs.errors import one_line_errors
from libs.evaluation.plan.tasks import EnvSettings
from libs.viz.video import VideoSettings
from libs.viz.whiskers import WHISKER_MODES, WhiskerError


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--size {text!r} is not HEIGHTxWIDTH: e.g. --size 240x320")
    return int(match.group(1)), int(match.group(2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whiskers",
        description="Draw what a policy intends: forward-simulate every predicted chunk, diagnose failures.",
    )
    parser.add_argument(
        "--policy",
        required=True,
        help="scripted | torch_lerobot:<checkpoint> | jax_openpi:<checkpoint> | remote:ws://...",
    )
    parser.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    parser.add_argument(
        "--episodes", type=int, default=1, help="episodes, seeds SEED, SEED+1, ... (default 1)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per seed)")
    parser.add_argument(
        "--mode",
        choices=WHISKER_MODES,
        default="dynamic",
        help="dynamic: full physics with contacts (default); "
        "kinematic: joints placed at targets, no contacts",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="LeRobot dataset whose action stats the diagnostics use (default: the checkpoint's)",
    )
    add_flags(
        parser, EnvSettings, only=("scene_path", "max_steps", "task", "check_scene", "allow_input_drift")
    )
    parser.add_argument(
        "--size", type=parse_size, default=(240, 320), help="each video view HxW (default 240x320)"
    )
    parser.add_argument("--past", type=int, default=8, help="earlier chunks drawn, fading (default 8)")
    parser.add_argument("--no-video", action="store_true", help="skip the MP4 (rendering is the slow part)")
    parser.add_argument("--rrd", action="store_true", help="also write a rerun recording (.rrd)")
    add_threads_flag(parser)
    return parser


def dataset_action_stats(dataset: str) -> Mapping[str, Any]:
    """The ``action`` stats of ``--dataset`` (instead of the checkpoint card's)."""
    from libs.datasets.lerobot_v3 import LeRobotV3Dataset

    stats = LeRobotV3Dataset(dataset).stats
    if not stats or "action" not in stats:
        raise WhiskerError(
            f"dataset {dataset} has no action stats in meta/stats.json: run the dataset doctor with --fix"
        )
    return stats["action"]


@one_line_errors
def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    decide_and_apply(1, arguments.threads)  # one model here, before its stack is imported
    from libs.evaluation.plan.checkpoints import plan_one_checkpoint
    from libs.evaluation.plan.tasks import EpisodeTask
    from libs.evaluation.play.episode_worker import EpisodeWorker
    from libs.evaluation.play.whiskers import play_with_whiskers, write_whisker_outputs

    if arguments.episodes < 1:
        print("error: --episodes must be at least 1", file=sys.stderr)
        return 2
    video = None if arguments.no_video else VideoSettings(*arguments.size, past_chunks=arguments.past)
    # One checkpoint, planned as the sweep plans each: its card read once, the scene decided from it
    # (a policy whose card comes only with loading it, as a remote one's, is decided by the worker).
    target = plan_one_checkpoint(arguments.policy, arguments.scene_path)
    worker = EpisodeWorker(config_from_flags(EnvSettings, arguments))
    _, card_action_stats, env = worker.prepared(target)
    action_stats = dataset_action_stats(arguments.dataset) if arguments.dataset else card_action_stats
    seeds = [arguments.seed + i for i in range(arguments.episodes)]
    for seed in tqdm(seeds, desc="whisker episodes", unit="episode", disable=len(seeds) == 1):
        result, episode = play_with_whiskers(worker, EpisodeTask(target, seed), arguments.mode)
        with tqdm(
            total=len(episode.actual_qpos), desc=f"rendering seed {seed}", unit="frame", disable=video is None
        ) as bar:
            outputs = write_whisker_outputs(
                episode,
                env,
                arguments.out / f"seed_{seed}",
                action_stats,
                video=video,
                failure=result.record.failure_detail,
                rrd=arguments.rrd,
                progress=bar,
            )
        print_episode(result, episode, outputs)
    return 0


def print_episode(result: Any, episode: Any, outputs: Any) -> None:
    """One episode's outcome, failure, likely causes and files."""
    from libs.viz.diagnostics import findings_lines

    record = result.record
    print(f"seed {record.seed}: {record.outcome} after {record.steps} steps, whiskers {episode.mode_label}")
    if record.failure_detail:
        print(f"  failure: {record.failure_detail}")
    for line in findings_lines(outputs.findings):
        print(line)
    for name, path in outputs.files.items():
        print(f"  {name}: {path}")


if __name__ == "__main__":
    sys.exit(main())
