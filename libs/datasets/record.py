"""Record episodes of any policy (the scripted expert by default) in the simulator into a LeRobot v3 dataset.

Each episode keeps its outcome, seed and the simulator's per-episode figures as columns of
``meta/episodes`` (``outcome``, ``seed``, ``figures/<name>``). ``keep`` decides which episodes are written
(``success``, a comma list of outcomes, or any predicate over the episode's metadata and frames); with a
filter, recording continues until ``episodes`` episodes were kept or ``max_attempts`` were run.

Every episode is played by the episode loop (``libs.sim.play``) with the contract checks; the recorder is
one of its observers, writing each action's frame with the observation current when it is executed (and
perturbing the executed action with recovery noise).

Each kept episode is committed to disk when it ends (``LeRobotV3Writer``): a recording killed at any point
keeps its finished episodes, and the same command with ``--resume`` records the rest, seed after seed, into
the dataset an uninterrupted run writes. A write that fails (a full disk) stops with one line; the finished
episodes stay, resumable. A learned policy's rollouts are planned as the sweep
plans a checkpoint, in its training scene (``libs.evaluation.play.rollouts``), then recorded here.

Commands:
    ./pants run libs/datasets:record -- --out DIR --episodes N [--action-space ee] [--keep success]
    ./pants run backends/torch_lerobot:rollouts -- --policy torch_lerobot:CKPT --out DIR --episodes N \
        --keep success
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from libs.datasets.action_noise import ActionNoise
from libs.datasets.judges import EpisodeJudge, keep_filter
from libs.datasets.lerobot_v3 import (
    BLOCK_POSITIONS_PATH,
    INFO_PATH,
    DatasetError,
    LeRobotV3Writer,
    depth_feature,
    rgb_feature,
    vector_feature,
    write_json_atomic,
)
from libs.errors import LabError
from libs.policy_api.types import ENVIRONMENT_STATE_KEY, STATE_KEY, TASK_KEY, Observation, Policy
from libs.sim.play.episode import play_episode
from libs.sim.play.evaluable_env import EvaluableEnv
from libs.sim.play.observers import ContractChecks, EpisodeObserver


@dataclass
class RecordSummary:
    """What a recording run produced."""

    root: Path
    episodes_kept: int
    episodes_run: int
    outcomes: dict[str, int] = field(default_factory=dict)
    kept_seeds: list[int] = field(default_factory=list)

    def line(self) -> str:
        counts = ", ".join(f"{name} {count}" for name, count in sorted(self.outcomes.items()))
        kept, run = self.episodes_kept, self.episodes_run
        return f"wrote {kept} episodes to {self.root} ({run} run; outcomes: {counts})"


def dataset_features(scene: Any, action_space: str, use_video: bool = True) -> dict[str, dict[str, Any]]:
    """Features of a recording of ``scene`` (a SceneConfig) with ``action_space`` actions."""
    from libs.sim.layout import EE_ACTION_NAMES, ENVIRONMENT_STATE_NAMES, STATE_FEATURE_NAMES

    features: dict[str, dict[str, Any]] = {STATE_KEY: vector_feature(STATE_FEATURE_NAMES)}
    if getattr(scene, "environment_state", False):
        features[ENVIRONMENT_STATE_KEY] = vector_feature(ENVIRONMENT_STATE_NAMES)
    action_names = STATE_FEATURE_NAMES if action_space == "joint" else EE_ACTION_NAMES
    features["action"] = vector_feature(action_names)
    for camera in scene.cameras:
        features[camera.rgb_key] = rgb_feature(camera.height, camera.width, use_video)
        if camera.depth:
            features[camera.depth_key] = depth_feature(camera.height, camera.width)
    return features


def _frame_from_observation(observation: Mapping[str, Any], features: Mapping[str, Any]) -> dict[str, Any]:
    frame: dict[str, Any] = {}
    for key in features:
        if key == "action":
            continue
        if key not in observation:
            raise DatasetError(
                f"the env's observation has no {key!r}: the scene's cameras do not match the dataset features"
            )
        frame[key] = observation[key]
    frame["task"] = observation.get(TASK_KEY) or ""
    return frame


def record_dataset(
    root: str | Path,
    policy: Policy | str = "scripted",
    episodes: int = 10,
    seed: int = 0,
    scene: Any = None,
    action_space: str | None = None,
    keep: str | EpisodeJudge | None = None,
    max_attempts: int | None = None,
    max_steps: int | None = None,
    task: str | None = None,
    use_video: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    action_noise: ActionNoise | None = None,
    resume: bool = False,
) -> RecordSummary:
    """Run ``policy`` for episodes with seeds ``seed, seed+1, ...`` and write the kept ones to ``root``.

    ``action_noise`` perturbs the executed actions while the frames keep the policy's own (see
    ``libs.datasets.action_noise``): demonstrations that show recovery. ``resume`` continues a recording
    that was stopped, after its last kept episode's seed."""
    if episodes < 1:
        raise DatasetError(f"episodes must be >= 1, got {episodes}")
    _check_output_folder(Path(root), episodes, resume, overwrite)
    policy = _recording_policy(policy, action_space)
    action_space = policy.spec.action_space
    episode_filter = (keep_filter(keep) if keep is None or isinstance(keep, str) else keep) or _keep_all
    max_attempts = max_attempts or (episodes if keep in (None, "", "all") else 3 * episodes)
    env = _recording_env(scene, action_space, max_steps, task)
    features = dataset_features(env.scene, action_space, use_video)
    writer = LeRobotV3Writer(
        root,
        fps=round(policy.spec.control_hz),
        features=features,
        scene_config=env.scene.to_dict(),
        overwrite=overwrite,
        resume=resume,
    )
    recorder = _Recorder(env, policy, writer, features, action_noise, episode_filter)
    summary = _summary_so_far(writer, seed)
    bar = _progress(episodes, enabled=progress, initial=summary.episodes_kept)
    try:
        recorder.block_positions = _block_positions_so_far(writer, env, summary.kept_seeds)
        _record_or_stop(recorder, summary, seed, episodes, max_attempts, bar)
        if summary.episodes_kept == 0:
            raise DatasetError(
                f"none of {summary.episodes_run} episodes passed --keep {keep!r} "
                f"(outcomes: {summary.outcomes}): relax the filter or run more attempts"
            )
        writer.finalize()
    finally:
        bar.close()
        env.close()
    return summary


def _record_or_stop(
    recorder: _Recorder, summary: RecordSummary, seed: int, episodes: int, max_attempts: int, bar: Any
) -> None:
    """``recorder.record``, a failed write (a full disk, a lost mount) turned into one line that says the
    finished episodes are kept and how to go on."""
    try:
        recorder.record(summary, seed, episodes, max_attempts, bar)
    except OSError as error:
        kept = summary.episodes_kept
        raise DatasetError(
            f"writing {summary.root} failed after {kept} episodes ({error.strerror or error}): the {kept} "
            "finished episodes are kept; free the disk (or fix the folder) and rerun with --resume"
        ) from error


def _check_output_folder(root: Path, episodes: int, resume: bool, overwrite: bool) -> None:
    """A folder left by a stopped recording asks for --resume (or --overwrite), in one line."""
    if resume or overwrite or not root.is_dir():
        return
    info = root / INFO_PATH
    if info.is_file():
        kept = int(json.loads(info.read_text()).get("total_episodes", 0))
    elif any((root / name).exists() for name in ("data", "videos", "meta")):
        kept = 0  # stopped before its first episode was committed
    else:
        return  # not a recording: the writer says the folder is taken
    if kept < episodes:
        raise DatasetError(
            f"{root} holds a stopped recording ({kept} of {episodes} episodes): add --resume to continue "
            "it, or --overwrite to start over"
        )


def _summary_so_far(writer: LeRobotV3Writer, seed: int) -> RecordSummary:
    """What a resumed recording had already kept; it goes on after the last kept episode's seed (the
    episodes after it that the filter left out are played again, to the same outcome)."""
    rows = writer.episode_rows
    summary = RecordSummary(root=writer.root, episodes_kept=len(rows), episodes_run=0)
    for row in rows:
        outcome = str(row.get("outcome"))
        summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
        summary.kept_seeds.append(int(row["seed"]))
    if summary.kept_seeds:
        if min(summary.kept_seeds) < seed:
            raise DatasetError(
                f"{writer.root} was recorded from seed {min(summary.kept_seeds)}, not --seed {seed}: resume "
                "it with the --seed it was started with"
            )
        summary.episodes_run = max(summary.kept_seeds) + 1 - seed
    return summary


def _block_positions_so_far(
    writer: LeRobotV3Writer, env: Any, kept_seeds: Sequence[int]
) -> list[list[float]]:
    """The kept episodes' initial block xy: those written, the rest (a kill between the episode's commit
    and this file's) from a reset with its seed, which places the block as the episode did."""
    path = writer.root / BLOCK_POSITIONS_PATH
    positions: list[list[float]] = json.loads(path.read_text())[: len(kept_seeds)] if path.is_file() else []
    for episode_seed in kept_seeds[len(positions) :]:
        env.reset(seed=episode_seed)
        positions.append([round(float(value), 4) for value in np.asarray(env.block_position)[:2]])
    return positions


@dataclass
class _Recorder:
    """Plays episodes into the writer, keeping those ``episode_filter`` accepts."""

    env: EvaluableEnv
    policy: Policy
    writer: LeRobotV3Writer
    features: Mapping[str, Any]
    action_noise: ActionNoise | None
    episode_filter: EpisodeJudge
    #: Each kept episode's initial block xy (the --grid map's overlay of where the training data was).
    block_positions: list[list[float]] = field(default_factory=list)

    def record(self, summary: RecordSummary, seed: int, episodes: int, max_attempts: int, bar: Any) -> None:
        """Episodes from seed ``seed + summary.episodes_run`` on until ``episodes`` are kept or
        ``max_attempts`` run, each kept one committed with its block position."""
        while summary.episodes_kept < episodes and summary.episodes_run < max_attempts:
            episode_seed = seed + summary.episodes_run
            frame_writer = FrameWriter(self.writer, self.features, self.env, self.action_noise)
            metadata, frames, block_xy = _record_episode(self.env, self.policy, frame_writer, episode_seed)
            summary.episodes_run += 1
            outcome = str(metadata["outcome"])
            summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
            # An episode stopped before its first step (a rollout's first chunk was unsafe) has no frames.
            if _length(frames) > 0 and self.episode_filter(metadata, frames):
                self.writer.save_episode(metadata)
                summary.episodes_kept += 1
                summary.kept_seeds.append(episode_seed)
                self.block_positions.append(block_xy)
                write_json_atomic(self.writer.root / BLOCK_POSITIONS_PATH, self.block_positions)
                bar.update(1)
            else:
                self.writer.clear_episode()
            bar.set_postfix(run=summary.episodes_run, last=outcome)


def _recording_policy(policy: Policy | str, action_space: str | None) -> Policy:
    """The policy a string names; its action space must be the one asked for."""
    from libs.policy_api.registry import make_policy

    if isinstance(policy, str):
        policy = make_policy(policy)
    if action_space is not None and policy.spec.action_space != action_space:
        raise DatasetError(
            f"the policy emits {policy.spec.action_space!r} actions but action_space={action_space!r}: "
            "record with the policy's action space"
        )
    return policy


def _recording_env(scene: Any, action_space: str, max_steps: int | None, task: str | None) -> Any:
    from libs.sim.env import SO101PickPlaceEnv

    env_kwargs: dict[str, Any] = {"scene": scene, "action_space": action_space}
    if max_steps is not None:
        env_kwargs["max_steps"] = max_steps
    if task is not None:
        env_kwargs["task"] = task
    return SO101PickPlaceEnv(**env_kwargs)


def record_scripted_dataset(
    root: str | Path,
    episodes: int = 10,
    seed: int = 0,
    scene: Any = None,
    action_space: str = "joint",
    **kwargs: Any,
) -> RecordSummary:
    """The scripted expert's demonstrations (see ``record_dataset`` for the other arguments)."""
    from libs.sim.scripted_policy import ScriptedPolicy

    policy = ScriptedPolicy(action_space=action_space)
    return record_dataset(
        root, policy, episodes=episodes, seed=seed, scene=scene, action_space=action_space, **kwargs
    )


class FrameWriter(EpisodeObserver):
    """The recorder as an observer of the episode loop: before each step, the frame (the current
    observation with the action) goes to the writer, and the executed action gets the recovery noise."""

    def __init__(
        self,
        writer: LeRobotV3Writer,
        features: Mapping[str, Any],
        env: EvaluableEnv,
        action_noise: ActionNoise | None,
    ) -> None:
        self.writer, self.features, self.env, self.action_noise = writer, features, env, action_noise
        self.noise: Any = None
        #: Where the block started (table x, y), taken at the first action.
        self.block_xy: list[float] = []

    def on_reset(self, env: EvaluableEnv, seed: int) -> None:
        self.noise = self.action_noise.process(seed, env.action_space_name) if self.action_noise else None
        self.block_xy = []

    def before_step(self, observation: Observation, action: np.ndarray) -> np.ndarray:
        if not self.block_xy:  # the first action comes right after reset: where the block starts
            self.block_xy.extend(round(float(value), 4) for value in np.asarray(self.env.block_position)[:2])
        frame = _frame_from_observation(observation, self.features)
        frame["action"] = action
        self.writer.add_frame(frame)
        return self.noise.perturb(action) if self.noise is not None else action


def _record_episode(
    env: EvaluableEnv, policy: Policy, frames: FrameWriter, seed: int
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[float]]:
    played = play_episode(policy, env, seed, [ContractChecks(), frames])
    metadata: dict[str, Any] = {"outcome": played.outcome, "seed": seed}
    for name, value in played.figures.to_dict().items():
        if name != "outcome":
            metadata[f"figures/{name}"] = value
    return metadata, frames.writer.buffered_episode(), frames.block_xy


def _length(frames: Mapping[str, Any]) -> int:
    return min((len(values) for values in frames.values()), default=0)


def _keep_all(metadata: Mapping[str, Any], frames: Mapping[str, np.ndarray]) -> bool:
    return True


class _NoProgress:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, enabled: bool, initial: int = 0) -> Any:
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="episodes kept", unit="ep")


# --------------------------------------------------------------------------------------------------- CLI
def recording_parser(prog: str, with_policy: bool) -> argparse.ArgumentParser:
    """``record``'s options; with ``with_policy``, ``rollouts``' (``libs.evaluation.play.rollouts``)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    if with_policy:
        parser.add_argument(
            "--policy", required=True, help="scripted | torch_lerobot:DIR | jax_openpi:DIR | remote:ws://…"
        )
        parser.add_argument(
            "--no-scene-check",
            action="store_true",
            help="record in a scene whose cameras differ from the checkpoint's training scene",
        )
    parser.add_argument(
        "--out", required=True, type=Path, help="new dataset directory (or a stopped one, with --resume)"
    )
    parser.add_argument("--episodes", type=int, default=10, help="episodes to keep")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (then +1 each)")
    parser.add_argument("--action-space", choices=["joint", "ee"], default=None)
    parser.add_argument("--keep", default=None, help="all | success | outcome list | classifier:DIR")
    parser.add_argument("--max-attempts", type=int, default=None, help="default: 3 × episodes with --keep")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument(
        "--scene",
        type=Path,
        default=None,
        help="scene.json to record in (default: a checkpoint's training scene, else the bench scene)",
    )
    parser.add_argument("--image-size", default=None, help="HxW for every camera, e.g. 96x128")
    parser.add_argument("--depth", action="store_true", help="add depth images for every camera")
    parser.add_argument(
        "--environment-state",
        action="store_true",
        help="add observation.environment_state (block pose, bowl xy: privileged object state)",
    )
    parser.add_argument("--no-cameras", action="store_true", help="record no images (state-based policies)")
    parser.add_argument("--images", action="store_true", help="store PNG images in parquet instead of video")
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        metavar="STD",
        help="perturb the executed actions (labels stay clean) by correlated noise of this std: degrees per "
        "arm joint (joint) or metres (ee); demonstrations that show recovery, as DART does",
    )
    parser.add_argument(
        "--noise-steps", type=float, default=8.0, help="the noise's correlation time, control steps"
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped recording in --out (same options) up to --episodes",
    )
    return parser


def scene_from_args(
    scene_path: Path | None,
    image_size: str | None,
    depth: bool,
    environment_state: bool = False,
    no_cameras: bool = False,
) -> Any:
    """The scene ``record`` records in: ``--scene`` (else the bench scene) with the command's changes."""
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig.load(scene_path) if scene_path else SceneConfig()
    return apply_scene_options(scene, image_size, depth, environment_state, no_cameras)


def apply_scene_options(
    scene: Any,
    image_size: str | None,
    depth: bool,
    environment_state: bool = False,
    no_cameras: bool = False,
) -> Any:
    """``scene`` with ``--image-size``, ``--depth``, ``--environment-state`` and ``--no-cameras`` applied."""
    from dataclasses import replace

    if image_size:
        try:
            height, width = (int(part) for part in image_size.lower().split("x"))
        except ValueError as error:
            raise DatasetError(f"--image-size {image_size!r} must look like 96x128") from error
        scene = scene.with_image_size(height, width)
    if depth:
        scene = replace(scene, cameras=tuple(replace(camera, depth=True) for camera in scene.cameras))
    if environment_state:
        scene = replace(scene, environment_state=True)
    if no_cameras:
        if not scene.environment_state:
            raise DatasetError(
                "--no-cameras leaves only the joint state, which cannot locate the block: "
                "add --environment-state"
            )
        scene = replace(scene, cameras=())
    return scene


def recording_options(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options every recording passes to ``record_dataset`` (all but the policy and scene)."""
    return dict(
        episodes=args.episodes,
        seed=args.seed,
        keep=args.keep,
        max_attempts=args.max_attempts,
        max_steps=args.max_steps,
        use_video=not args.images,
        overwrite=args.overwrite,
        resume=args.resume,
        action_noise=ActionNoise(args.noise, args.noise_steps) if args.noise > 0 else None,
    )


def run_recording(record: Callable[[], RecordSummary]) -> int:
    """A recording command's exit status: its summary line, or one ``error:`` line for bad input."""
    try:
        summary = record()
    except (LabError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.line())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``record``: the scripted expert's demonstrations."""
    args = recording_parser("record", with_policy=False).parse_args(argv)

    def record() -> RecordSummary:
        scene = scene_from_args(
            args.scene, args.image_size, args.depth, args.environment_state, args.no_cameras
        )
        return record_scripted_dataset(
            args.out, action_space=args.action_space or "joint", scene=scene, **recording_options(args)
        )

    return run_recording(record)


if __name__ == "__main__":
    sys.exit(main())
