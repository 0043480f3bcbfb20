"""Dataset converters: each reads a LeRobot v3 dataset and writes a NEW one; the source is never touched.

- ``gripper``: the gripper columns of state and action between 0–100 (this stack, LeRobot's SO-101) and 0–1
  (openpi); the feature's ``info.gripper_range`` records which one a dataset uses.
- ``openpi``: openpi's LeRobot layout (keys ``image``, ``wrist_image``, ``state``, ``actions``; gripper 0–1),
  and back (``from-openpi``), the original key of every renamed feature kept in its ``info.source_key``.
- ``ee``: joint actions → end-effector actions ``[x, y, z, tail_x, tail_y, tail_z, gripper]`` (layout and
  why in ``libs.sim.layout``) by forward kinematics of the SO-101 arm (``libs.sim.physics.ArmKinematics``:
  the env's ``gripperframe`` site, its position, and its z axis for the tail); ee actions of the old
  unit-vector layout (``approach_x/y/z``) are rewritten to the tail layout.
- ``depth``: depth kept as float32 (H, W) arrays (this lab's layout before LeRobot 0.6.1's depth maps) →
  LeRobot depth images (16-bit PNG millimetres, ``is_depth_map``; see ``libs.datasets.lerobot_v3``).
- ``rerecord``: replay each episode's actions from its recorded seed in another scene or camera config
  (depth, FOV, resolution) — the physics does not depend on the cameras, so the motions are identical.
- ``merge``, ``split``, ``filter`` (by outcome, by an episode list, or by an episode judge such as the visual
  success classifier).

Frames are re-encoded by the writer, so every output is a complete, consistent dataset with fresh stats.

    ./pants run libs/datasets:convert -- gripper SRC OUT --to 0-1
    ./pants run libs/datasets:convert -- openpi SRC OUT          (from-openpi SRC OUT to go back)
    ./pants run libs/datasets:convert -- ee SRC OUT
    ./pants run libs/datasets:convert -- depth SRC OUT
    ./pants run libs/datasets:convert -- rerecord SRC OUT --image-size 240x320 --depth --fovy overhead=58
    ./pants run libs/datasets:convert -- merge OUT SRC1 SRC2 ...
    ./pants run libs/datasets:convert -- split SRC OUT_DIR --fractions train=0.9,val=0.1
    ./pants run libs/datasets:convert -- filter SRC OUT --keep success | --episodes 0,3 | --exclude-episodes 2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libs.datasets.lerobot_v3 import (
    DEFAULT_FEATURES,
    VISUAL_DTYPES,
    DatasetError,
    LeRobotV3Dataset,
    LeRobotV3Writer,
    depth_feature,
    is_legacy_depth_feature,
    vector_feature,
)

#: Episodes-parquet columns LeRobot defines; every other column is ours (outcome, seed, figures/...) and is
#: carried over by the converters.
_LEROBOT_EPISODE_COLUMNS = ("episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index")
_LEROBOT_EPISODE_PREFIXES = ("data/", "videos/", "stats/", "meta/")

OPENPI_KEYS = {"rgb": "image", "wrist": "wrist_image", "state": "state", "action": "actions"}
GRIPPER_RANGES = ("0-100", "0-1")

#: One episode in memory: parquet columns and camera frames by feature key, the per-frame task strings and
#: our episode metadata.
Episode = dict[str, Any]
EpisodeTransform = Callable[[Episode], Episode]


# ------------------------------------------------------------------------------------------------- core
def extra_metadata(dataset: LeRobotV3Dataset, episode_index: int) -> dict[str, Any]:
    """Our own episode columns (outcome, seed, figures/...) of one episode."""
    return {
        key: value
        for key, value in dataset.episode_metadata(episode_index).items()
        if key not in _LEROBOT_EPISODE_COLUMNS and not key.startswith(_LEROBOT_EPISODE_PREFIXES)
    }


def read_episode(dataset: LeRobotV3Dataset, episode_index: int) -> Episode:
    columns = dataset.episode(episode_index)
    for key in dataset.camera_keys:
        if dataset.features[key]["dtype"] == "video":
            columns[key] = dataset.video_frames(episode_index, key)
    tasks = dataset.tasks
    return {
        "columns": columns,
        "tasks": [tasks[int(i)] for i in columns["task_index"]],
        "metadata": extra_metadata(dataset, episode_index),
    }


def user_features(dataset: LeRobotV3Dataset) -> dict[str, dict[str, Any]]:
    """The recorded features without LeRobot's index columns and without per-video encoder info."""
    features = {}
    for key, feature in dataset.features.items():
        if key in DEFAULT_FEATURES:
            continue
        copied = dict(feature)
        if feature["dtype"] == "video":
            # Encoder details are rewritten by the writer; our own annotations (source_key) are kept.
            ours = {
                name: value
                for name, value in (feature.get("info") or {}).items()
                if not name.startswith("video.") and name not in ("has_audio", "is_depth_map")
            }
            copied.pop("info", None)
            if ours:
                copied["info"] = ours
        features[key] = copied
    return features


def write_episodes(
    out: str | Path,
    episodes: Iterable[Episode],
    features: Mapping[str, Mapping[str, Any]],
    fps: int,
    scene_config: Mapping[str, Any] | None,
    robot_type: str | None = "so101",
    total: int | None = None,
    progress: bool = True,
) -> Path:
    """Write in-memory episodes (see ``read_episode``) as a new dataset."""
    keys = list(features)
    iterator: Iterable[Episode] = episodes
    if progress:
        from tqdm import tqdm

        iterator = tqdm(episodes, total=total, desc=f"writing {Path(out).name}", unit="ep")
    with LeRobotV3Writer(out, fps, features, robot_type=robot_type, scene_config=scene_config) as writer:
        for episode in iterator:
            columns = episode["columns"]
            for step, task in enumerate(episode["tasks"]):
                frame = {key: columns[key][step] for key in keys}
                frame["task"] = task
                writer.add_frame(frame)
            writer.save_episode(episode["metadata"])
    return Path(out)


def convert(
    src: str | Path,
    out: str | Path,
    transform: EpisodeTransform | None = None,
    features: Mapping[str, Mapping[str, Any]] | None = None,
    episodes: Sequence[int] | None = None,
    scene_config: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Copy ``episodes`` (default: all) of ``src`` to ``out`` through ``transform``."""
    _refuse_same(src, out)
    dataset = LeRobotV3Dataset(src)
    selected = list(dataset.episode_indices if episodes is None else episodes)
    if not selected:
        raise DatasetError(f"no episode of {src} selected: nothing to write to {out}")
    transform = transform or (lambda episode: episode)
    return write_episodes(
        out,
        (transform(read_episode(dataset, index)) for index in selected),
        features if features is not None else user_features(dataset),
        dataset.fps,
        scene_config if scene_config is not None else dataset.scene_config,
        robot_type=dataset.info.get("robot_type"),
        total=len(selected),
        progress=progress,
    )


def _refuse_same(src: str | Path, out: str | Path) -> None:
    if Path(src).resolve() == Path(out).resolve():
        raise DatasetError(
            f"output {out} is the source dataset: converters never modify a source, pick a new path"
        )


# -------------------------------------------------------------------------------------------------- gripper
def gripper_range(feature: Mapping[str, Any]) -> str:
    return (feature.get("info") or {}).get("gripper_range", "0-100")


def _gripper_columns(feature: Mapping[str, Any]) -> list[int]:
    return [i for i, name in enumerate(feature.get("names") or []) if "gripper" in str(name)]


def convert_gripper(src: str | Path, out: str | Path, to: str, progress: bool = True) -> Path:
    """Scale the gripper columns of state and action to ``to`` ("0-1" or "0-100")."""
    if to not in GRIPPER_RANGES:
        raise DatasetError(f"--to {to!r}: use one of {GRIPPER_RANGES}")
    dataset = LeRobotV3Dataset(src)
    features = user_features(dataset)
    scaled = {}
    for key, feature in features.items():
        columns = _gripper_columns(feature)
        if not columns or feature["dtype"] in VISUAL_DTYPES:
            continue
        current = gripper_range(feature)
        if current == to:
            raise DatasetError(f"{key} of {src} already has its gripper in {to}: nothing to convert")
        scaled[key] = (columns, 0.01 if to == "0-1" else 100.0)
        feature["info"] = {**(feature.get("info") or {}), "gripper_range": to}
    if not scaled:
        raise DatasetError(
            f"{src} has no feature with a 'gripper' dimension name: cannot convert the gripper"
        )

    def transform(episode: Episode) -> Episode:
        for key, (columns, factor) in scaled.items():
            values = episode["columns"][key].astype(np.float32, copy=True)
            values[:, columns] = values[:, columns] * np.float32(factor)
            episode["columns"][key] = values
        return episode

    return convert(src, out, transform, features, progress=progress)


# ---------------------------------------------------------------------------------------------- openpi layout
def convert_to_openpi(
    src: str | Path, out: str | Path, image_camera: str | None = None, wrist_camera: str | None = None,
    progress: bool = True,
) -> Path:  # fmt: skip
    """openpi's LeRobot keys (image, wrist_image, state, actions) with the gripper in 0–1."""
    dataset = LeRobotV3Dataset(src)
    cameras = list(dataset.rgb_keys)  # openpi's image keys are colour cameras
    image_key = _camera_key(dataset, image_camera) if image_camera else (cameras[0] if cameras else None)
    wrist_key = (
        _camera_key(dataset, wrist_camera)
        if wrist_camera
        else next((k for k in cameras if "wrist" in k), None)
    )
    renames = {"observation.state": OPENPI_KEYS["state"], "action": OPENPI_KEYS["action"]}
    if image_key:
        renames[image_key] = OPENPI_KEYS["rgb"]
    if wrist_key and wrist_key != image_key:
        renames[wrist_key] = OPENPI_KEYS["wrist"]
    missing = [key for key in ("observation.state", "action") if key not in dataset.features]
    if missing:
        raise DatasetError(f"{src} has no {missing}: the openpi layout needs state and action")
    return _rename_and_scale(dataset, src, out, renames, to_range="0-1", progress=progress)


def convert_from_openpi(src: str | Path, out: str | Path, progress: bool = True) -> Path:
    """Back from the openpi layout: original keys (from ``info.source_key``) and the gripper in 0–100."""
    dataset = LeRobotV3Dataset(src)
    renames = {}
    for key, feature in dataset.features.items():
        source_key = (feature.get("info") or {}).get("source_key")
        if source_key:
            renames[key] = source_key
        elif key in (OPENPI_KEYS["state"], OPENPI_KEYS["action"]):
            renames[key] = "observation.state" if key == OPENPI_KEYS["state"] else "action"
    return _rename_and_scale(dataset, src, out, renames, to_range="0-100", progress=progress)


def _camera_key(dataset: LeRobotV3Dataset, camera: str) -> str:
    key = camera if camera in dataset.features else f"observation.images.{camera}"
    if key not in dataset.camera_keys:
        raise DatasetError(f"camera {camera!r} is not in {dataset.root}: use one of {dataset.camera_keys}")
    return key


def _rename_and_scale(
    dataset: LeRobotV3Dataset, src: str | Path, out: str | Path, renames: Mapping[str, str], to_range: str,
    progress: bool,
) -> Path:  # fmt: skip
    features: dict[str, dict[str, Any]] = {}
    scaled: dict[str, tuple[list[int], float]] = {}
    for key, feature in user_features(dataset).items():
        new_key = renames.get(key, key)
        feature = dict(feature)
        info = dict(feature.get("info") or {})
        if new_key != key:
            if "source_key" in info:
                info.pop("source_key")
            else:
                info["source_key"] = key
        columns = _gripper_columns(feature) if feature["dtype"] not in VISUAL_DTYPES else []
        if columns and gripper_range(feature) != to_range:
            scaled[new_key] = (columns, 0.01 if to_range == "0-1" else 100.0)
            info["gripper_range"] = to_range
        if info.get("gripper_range") == "0-100":
            info.pop("gripper_range")
        if info:
            feature["info"] = info
        else:
            feature.pop("info", None)
        features[new_key] = feature

    def transform(episode: Episode) -> Episode:
        columns = {renames.get(key, key): value for key, value in episode["columns"].items()}
        for key, (indices, factor) in scaled.items():
            values = columns[key].astype(np.float32, copy=True)
            values[:, indices] = values[:, indices] * np.float32(factor)
            columns[key] = values
        episode["columns"] = columns
        return episode

    return convert(src, out, transform, features, progress=progress)


# ----------------------------------------------------------------------------------------- joint -> ee
def convert_joint_to_ee(src: str | Path, out: str | Path, progress: bool = True) -> Path:
    """Joint actions → ee actions by forward kinematics (the gripper opening is copied); ee actions of the
    old approach-vector layout → the tail layout."""
    from libs.sim.layout import EE_ACTION_NAMES, LEGACY_EE_ACTION_NAMES, STATE_FEATURE_NAMES, ee_action
    from libs.sim.physics import ArmKinematics

    dataset = LeRobotV3Dataset(src)
    action = dataset.features.get("action")
    names = list((action or {}).get("names") or [])
    features = user_features(dataset)
    if names == list(LEGACY_EE_ACTION_NAMES):
        features["action"] = {**vector_feature(EE_ACTION_NAMES), **{"info": action.get("info")}}
        if not features["action"]["info"]:
            features["action"].pop("info")

        def from_vectors(episode: Episode) -> Episode:
            old = episode["columns"]["action"].astype(np.float64)
            episode["columns"]["action"] = np.stack([ee_action(row[:3], row[3:6], row[6]) for row in old])
            return episode

        return convert(src, out, from_vectors, features, progress=progress)
    if action is None or list(action["shape"]) != [6]:
        raise DatasetError(f"{src} has no 6-dim joint action: the ee conversion needs joint actions")
    if names and names != list(STATE_FEATURE_NAMES) and "x" in names:
        raise DatasetError(f"{src} already has ee actions {names}: nothing to convert")
    features["action"] = vector_feature(EE_ACTION_NAMES)
    if gripper_range(action) != "0-100":
        features["action"]["info"] = {"gripper_range": gripper_range(action)}
    kinematics = ArmKinematics()

    def transform(episode: Episode) -> Episode:
        joints = episode["columns"]["action"].astype(np.float64)
        if gripper_range(action) == "0-1":
            joints = joints.copy()
            joints[:, 5] *= 100.0
        poses = kinematics.ee_poses(joints)
        gripper = episode["columns"]["action"][:, 5]
        episode["columns"]["action"] = np.stack(
            [ee_action(pose[:3], pose[3:], grip) for pose, grip in zip(poses, gripper, strict=True)]
        )
        return episode

    return convert(src, out, transform, features, progress=progress)


# ----------------------------------------------------------------------------------------- legacy depth
def convert_depth(src: str | Path, out: str | Path, progress: bool = True) -> Path:
    """Depth stored as float32 (H, W) arrays → LeRobot depth maps (the frames are already metres)."""
    dataset = LeRobotV3Dataset(src)
    features = user_features(dataset)
    legacy = [key for key, feature in features.items() if is_legacy_depth_feature(feature)]
    if not legacy:
        raise DatasetError(f"{src} has no depth stored as float arrays: nothing to convert")
    for key in legacy:
        height, width = (int(size) for size in features[key]["shape"])
        features[key] = depth_feature(height, width)
    return convert(src, out, features=features, progress=progress)


# -------------------------------------------------------------------------------------------------- rerecord
def rerecord(
    src: str | Path,
    out: str | Path,
    scene: Any,
    episodes: Sequence[int] | None = None,
    use_video: bool = True,
    progress: bool = True,
) -> Path:
    """Replay every episode's recorded actions from its seed in ``scene`` (a SceneConfig) into ``out``."""
    from libs.datasets.record import dataset_features
    from libs.sim.env import SO101PickPlaceEnv

    _refuse_same(src, out)
    dataset = LeRobotV3Dataset(src)
    action_space = _replayable_action_space(src, dataset)
    selected = list(dataset.episode_indices if episodes is None else episodes)
    seeds = _recorded_seeds(src, dataset, selected)
    # The replay must run as long as the recording did, whatever the env's default limit.
    longest = max(int(dataset.episode_metadata(index)["length"]) for index in selected)
    env = SO101PickPlaceEnv(
        scene=scene, action_space=action_space, max_steps=longest, terminate_on_success=False
    )
    features = dataset_features(env.scene, action_space, use_video)
    tasks = dataset.tasks
    replayed = (_replay_episode(env, dataset, index, seeds[index], features, tasks) for index in selected)
    try:
        return write_episodes(
            out, replayed, features, dataset.fps, env.scene.to_dict(), total=len(selected), progress=progress
        )
    finally:
        env.close()


def _replayable_action_space(src: str | Path, dataset: LeRobotV3Dataset) -> str:
    """``"ee"`` or ``"joint"``: the env action space that replays the dataset's actions as recorded."""
    from libs.sim.layout import EE_ACTION_NAMES, LEGACY_EE_ACTION_NAMES

    action_names = list(dataset.features["action"].get("names") or [])
    if action_names == list(LEGACY_EE_ACTION_NAMES):
        raise DatasetError(
            f"{src} has ee actions of the old approach-vector layout: rewrite them with "
            f"`convert ee {src} NEW` first"
        )
    action_space = "ee" if action_names == list(EE_ACTION_NAMES) else "joint"
    if gripper_range(dataset.features["action"]) != "0-100":
        raise DatasetError(
            f"{src} has its gripper in 0–1: convert it back with `convert gripper --to 0-100` first"
        )
    return action_space


def _recorded_seeds(src: str | Path, dataset: LeRobotV3Dataset, selected: Sequence[int]) -> dict[int, int]:
    """Each selected episode's recorded reset seed (without one its initial scene cannot be re-created)."""
    seeds = {}
    for index in selected:
        seed = dataset.episode_metadata(index).get("seed")
        if seed is None:
            raise DatasetError(
                f"episode {index} of {src} has no recorded seed: its initial scene cannot be re-created, "
                "so it cannot be re-recorded"
            )
        seeds[index] = int(seed)
    return seeds


def _replay_episode(
    env: Any,
    dataset: LeRobotV3Dataset,
    index: int,
    seed: int,
    features: Mapping[str, Any],
    tasks: Sequence[str],
) -> Episode:
    """One episode re-recorded: its actions stepped from its seed, with the env's observations and figures."""
    recorded = dataset.episode(index, ["action", "task_index"])
    observation, info = env.reset(seed=seed)
    columns: dict[str, list[np.ndarray]] = {key: [] for key in features}
    for action in recorded["action"]:
        for key in features:
            columns[key].append(action if key == "action" else observation[key])
        observation, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    figures = env.episode_figures().to_dict()
    metadata = extra_metadata(dataset, index)
    metadata["outcome"] = figures.get("outcome") or info.get("outcome")
    metadata["seed"] = seed
    for name, value in figures.items():
        if name != "outcome":
            metadata[f"figures/{name}"] = value
    length = len(columns["action"])
    return {
        "columns": {key: np.stack(values) for key, values in columns.items()},
        "tasks": [tasks[int(i)] for i in recorded["task_index"][:length]],
        "metadata": metadata,
    }


# ------------------------------------------------------------------------------------ merge / split / filter
def merge(sources: Sequence[str | Path], out: str | Path, progress: bool = True) -> Path:
    """One dataset with every episode of ``sources`` in order (same features, fps and scene required)."""
    if len(sources) < 2:
        raise DatasetError("merge needs at least two source datasets")
    for src in sources:
        _refuse_same(src, out)
    datasets = [LeRobotV3Dataset(src) for src in sources]
    first = datasets[0]
    features = user_features(first)
    for other in datasets[1:]:
        if user_features(other) != features:
            raise DatasetError(
                f"{other.root} has other features than {first.root}: convert them to the same layout first"
            )
        if other.fps != first.fps:
            raise DatasetError(
                f"{other.root} runs at {other.fps} fps, {first.root} at {first.fps}: cannot merge"
            )
        if other.scene_config != first.scene_config:
            raise DatasetError(
                f"{other.root} was recorded in a different scene than {first.root}: re-record one of them "
                "into the other's scene (`convert rerecord`) before merging"
            )

    def episodes() -> Iterable[Episode]:
        for dataset in datasets:
            for index in dataset.episode_indices:
                episode = read_episode(dataset, index)
                episode["metadata"].setdefault("source", str(dataset.root))
                yield episode

    total = sum(dataset.num_episodes for dataset in datasets)
    return write_episodes(
        out,
        episodes(),
        features,
        first.fps,
        first.scene_config,
        first.info.get("robot_type"),
        total,
        progress,
    )


def split(
    src: str | Path, out_dir: str | Path, fractions: Mapping[str, float], seed: int = 0, progress: bool = True
) -> dict[str, Path]:
    """Shuffle episodes with ``seed`` and cut them into ``out_dir/<name>`` by ``fractions`` (sum 1)."""
    dataset = LeRobotV3Dataset(src)
    total = sum(fractions.values())
    if not fractions or abs(total - 1.0) > 1e-6 or min(fractions.values()) <= 0:
        raise DatasetError(f"split fractions {dict(fractions)} must be positive and sum to 1")
    order = np.random.default_rng(seed).permutation(dataset.episode_indices).tolist()
    counts = [round(fraction * len(order)) for fraction in fractions.values()]
    counts[-1] = len(order) - sum(counts[:-1])
    if min(counts) < 1:
        raise DatasetError(
            f"{dataset.num_episodes} episodes cannot be split into {dict(fractions)} with one episode each"
        )
    outputs = {}
    start = 0
    for (name, _), count in zip(fractions.items(), counts, strict=True):
        chosen = sorted(order[start : start + count])
        outputs[name] = convert(src, Path(out_dir) / name, episodes=chosen, progress=progress)
        start += count
    return outputs


def filter_episodes(
    src: str | Path,
    out: str | Path,
    keep: str | None = None,
    episodes: Sequence[int] | None = None,
    exclude: Sequence[int] | None = None,
    progress: bool = True,
) -> Path:
    """Keep episodes by outcome (``keep="success"``), by an episode judge (``keep="classifier:DIR"``), by an
    explicit list, and/or drop a list."""
    dataset = LeRobotV3Dataset(src)
    chosen = list(dataset.episode_indices if episodes is None else episodes)
    unknown = sorted(set(chosen) - set(dataset.episode_indices))
    if unknown:
        raise DatasetError(f"episodes {unknown} are not in {src} (it has 0..{dataset.num_episodes - 1})")
    if exclude:
        chosen = [index for index in chosen if index not in set(exclude)]
    from libs.datasets.judges import keep_filter

    judge = keep_filter(keep)
    if judge is not None and keep is not None and ":" in keep:
        chosen = [
            index
            for index in chosen
            if judge(extra_metadata(dataset, index), read_episode(dataset, index)["columns"])
        ]
    elif judge is not None:  # an outcome list: the recorded outcomes decide, no frame is read
        outcomes = dataset.outcomes
        if all(value is None for value in outcomes.values()):
            raise DatasetError(
                f"{src} records no outcomes: filter with an episode list or `--keep classifier:DIR`"
            )
        chosen = [index for index in chosen if judge({"outcome": outcomes.get(index)}, {})]
    if not chosen:
        raise DatasetError(f"no episode of {src} passes the filter: nothing to write")
    return convert(src, out, episodes=chosen, progress=progress)


# ------------------------------------------------------------------------------------------------------ CLI
def _int_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise DatasetError(f"episode list {text!r} must be comma-separated integers, e.g. 0,3,7") from error


def _fractions(text: str) -> dict[str, float]:
    result = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            result[name.strip()] = float(value)
        except ValueError as error:
            raise DatasetError(f"--fractions {text!r} must look like train=0.9,val=0.1") from error
    return result


def _scene_for_rerecord(dataset_root: Path, args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from libs.sim.scene_config import SceneConfig

    if args.scene:
        scene = SceneConfig.load(args.scene)
    else:
        source = LeRobotV3Dataset(dataset_root).scene_config
        scene = SceneConfig.from_dict(source) if source else SceneConfig()
    if args.image_size:
        height, width = (int(part) for part in args.image_size.lower().split("x"))
        scene = scene.with_image_size(height, width)
    if args.depth:
        scene = replace(scene, cameras=tuple(replace(camera, depth=True) for camera in scene.cameras))
    for item in args.fovy or []:
        name, _, value = item.partition("=")
        camera = scene.camera(name)
        scene = replace(
            scene,
            cameras=tuple(
                replace(c, fovy_deg=float(value)) if c.name == camera.name else c for c in scene.cameras
            ),
        )
    return scene


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        written = _run_command(args)
    except (DatasetError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convert", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gripper = commands.add_parser("gripper", help="gripper 0–100 ⇄ 0–1")
    gripper.add_argument("src", type=Path)
    gripper.add_argument("out", type=Path)
    gripper.add_argument("--to", required=True, choices=GRIPPER_RANGES)
    openpi = commands.add_parser("openpi", help="openpi's keys and 0–1 gripper")
    openpi.add_argument("src", type=Path)
    openpi.add_argument("out", type=Path)
    openpi.add_argument("--image-camera", default=None)
    openpi.add_argument("--wrist-camera", default=None)
    back = commands.add_parser("from-openpi", help="back from the openpi layout")
    back.add_argument("src", type=Path)
    back.add_argument("out", type=Path)
    ee = commands.add_parser(
        "ee", help="joint actions → end-effector actions (forward kinematics); old ee layout → tail layout"
    )
    ee.add_argument("src", type=Path)
    ee.add_argument("out", type=Path)
    depth = commands.add_parser("depth", help="float-array depth → LeRobot depth maps (16-bit PNG, mm)")
    depth.add_argument("src", type=Path)
    depth.add_argument("out", type=Path)
    again = commands.add_parser("rerecord", help="replay the episodes in another scene/camera config")
    again.add_argument("src", type=Path)
    again.add_argument("out", type=Path)
    again.add_argument("--scene", type=Path, default=None, help="scene.json (default: the dataset's)")
    again.add_argument("--image-size", default=None, help="HxW for every camera")
    again.add_argument("--depth", action="store_true", help="add depth to every camera")
    again.add_argument("--fovy", action="append", help="camera=degrees, e.g. overhead=58 (repeatable)")
    again.add_argument("--episodes", default=None)
    joined = commands.add_parser("merge", help="merge datasets")
    joined.add_argument("out", type=Path)
    joined.add_argument("sources", type=Path, nargs="+")
    parts = commands.add_parser("split", help="split into parts by fractions")
    parts.add_argument("src", type=Path)
    parts.add_argument("out_dir", type=Path)
    parts.add_argument("--fractions", default="train=0.9,val=0.1")
    parts.add_argument("--seed", type=int, default=0)
    kept = commands.add_parser("filter", help="keep episodes by outcome, judge or list")
    kept.add_argument("src", type=Path)
    kept.add_argument("out", type=Path)
    kept.add_argument("--keep", default=None, help="success | outcome list | classifier:DIR")
    kept.add_argument("--episodes", default=None, help="comma list of episodes to keep")
    kept.add_argument("--exclude-episodes", default=None, help="comma list of episodes to drop")
    return parser


def _run_command(args: argparse.Namespace) -> Any:
    """Runs the parsed subcommand; returns what it wrote (a dataset path, or the split's paths)."""
    if args.command == "gripper":
        return convert_gripper(args.src, args.out, args.to)
    if args.command == "openpi":
        return convert_to_openpi(args.src, args.out, args.image_camera, args.wrist_camera)
    if args.command == "from-openpi":
        return convert_from_openpi(args.src, args.out)
    if args.command == "ee":
        return convert_joint_to_ee(args.src, args.out)
    if args.command == "depth":
        return convert_depth(args.src, args.out)
    if args.command == "rerecord":
        return rerecord(args.src, args.out, _scene_for_rerecord(args.src, args), _int_list(args.episodes))
    if args.command == "merge":
        return merge(args.sources, args.out)
    if args.command == "split":
        return split(args.src, args.out_dir, _fractions(args.fractions), args.seed)
    return filter_episodes(
        args.src, args.out, args.keep, _int_list(args.episodes), _int_list(args.exclude_episodes)
    )


if __name__ == "__main__":
    sys.exit(main())
