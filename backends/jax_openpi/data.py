"""A LeRobot v3 dataset as training arrays: per-frame state, action chunks, resized camera frames and,
for configs that take it, the environment state (privileged object state; no cameras needed then).

Each frame i gets the chunk ``action[i : i + horizon]`` of its own episode; near the episode end the
last action is repeated (what LeRobot's delta-timestamp loader does when it clamps to the episode). The
images are resized with padding once, at load, to the model's image size, so sampling a batch is indexing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from backends.jax_openpi import transforms as T
from backends.jax_openpi.config import TrainConfig
from backends.jax_openpi.norm_stats import NormStats, environment_state_min_spread, stats_of
from libs.datasets.lerobot_v3 import LeRobotV3Dataset
from libs.errors import LabError
from libs.policy_api.types import ENVIRONMENT_STATE_KEY, STATE_KEY


class DatasetInputError(LabError, ValueError):
    """The dataset cannot feed this config; the message names the mismatch and the fix."""


@dataclass
class TrainingArrays:
    """Everything a training batch is cut from, in env units (LeRobot keys)."""

    state: np.ndarray  # (N, 6) float32
    action_chunks: np.ndarray  # (N, horizon, 6) float32
    images: dict[str, np.ndarray]  # LeRobot image key -> (N, h, w, 3) uint8 at the model's size
    prompt: str
    source_image_size: tuple[int, int] | None  # (height, width) the dataset was recorded at; None: no cameras
    environment_state: np.ndarray | None = None  # (N, environment_state_dim) float32 when the config takes it
    environment_state_names: tuple[str, ...] | None = None  # the dataset's names for its dimensions

    def __len__(self) -> int:
        return len(self.state)

    def samples(self, indices: np.ndarray | slice) -> dict[str, np.ndarray | str]:
        """A batch as an env-keyed sample, ready for the input pipeline (a slice gives views)."""
        batch: dict[str, np.ndarray | str] = {key: frames[indices] for key, frames in self.images.items()}
        batch[STATE_KEY] = self.state[indices]
        if self.environment_state is not None:
            batch[ENVIRONMENT_STATE_KEY] = self.environment_state[indices]
        batch["action"] = self.action_chunks[indices]
        batch["task"] = self.prompt
        return batch


def action_chunks(actions: np.ndarray, horizon: int) -> np.ndarray:
    """(N, D) → (N, horizon, D): chunk i is actions[i : i + horizon], last action repeated past the end."""
    index = np.minimum(np.arange(len(actions))[:, None] + np.arange(horizon)[None, :], len(actions) - 1)
    return actions[index]


def camera_keys(config: TrainConfig) -> tuple[str, ...]:
    return tuple(f"observation.images.{name}" for name in config.cameras)


def _check_vector_feature(dataset: LeRobotV3Dataset, key: str, dim: int, fix: str) -> None:
    shape = dataset.features.get(key, {}).get("shape")
    if shape is None or tuple(int(size) for size in shape) != (dim,):
        raise DatasetInputError(
            f"dataset {dataset.root} feature {key!r} has shape {shape}, this config needs ({dim},): {fix}"
        )


def load_training_arrays(
    dataset_root: Path | str, config: TrainConfig, progress: bool = True
) -> TrainingArrays:
    dataset = LeRobotV3Dataset(dataset_root)
    keys = camera_keys(config)
    missing = [key for key in keys if key not in dataset.camera_keys]
    if missing:
        raise DatasetInputError(
            f"dataset {dataset.root} has no camera {missing} (it has {dataset.camera_keys}): set base_camera/"
            f"wrist_camera of config {config.name!r} to the dataset's cameras"
        )
    for key in (STATE_KEY, "action"):
        _check_vector_feature(
            dataset, key, config.env_action_dim, "record joint-space actions (action_space='joint')"
        )
    columns_read = [STATE_KEY, "action"]
    if config.uses_environment_state:
        _check_vector_feature(
            dataset,
            ENVIRONMENT_STATE_KEY,
            config.model.environment_state_dim,
            f"config {config.name!r} reads the environment state: record with --environment-state",
        )
        columns_read.append(ENVIRONMENT_STATE_KEY)
    height, width = config.model.image_size
    states, environment, chunks, frames = [], [], [], {key: [] for key in keys}
    source_size: tuple[int, int] | None = None
    episodes = dataset.episode_indices
    for episode in tqdm(episodes, desc="loading episodes", unit="ep", disable=not progress):
        columns = dataset.episode(episode, columns_read)
        states.append(np.asarray(columns[STATE_KEY], dtype=np.float32))
        if config.uses_environment_state:
            environment.append(np.asarray(columns[ENVIRONMENT_STATE_KEY], dtype=np.float32))
        chunks.append(
            action_chunks(np.asarray(columns["action"], dtype=np.float32), config.model.action_horizon)
        )
        for key in keys:
            video = dataset.video_frames(episode, key)
            if len(video) != len(columns["action"]):
                raise DatasetInputError(
                    f"episode {episode} of {dataset.root} has {len(video)} frames of {key} but "
                    f"{len(columns['action'])} actions: the dataset is corrupt, re-record it"
                )
            source_size = (int(video.shape[1]), int(video.shape[2]))
            frames[key].append(
                T.ResizeImagesWithPad(height, width, keys=("image",))({"image": video})["image"]
            )
    if not states:
        raise DatasetInputError(f"dataset {dataset.root} has no episodes: record some first")
    tasks = dataset.tasks
    return TrainingArrays(
        state=np.concatenate(states),
        action_chunks=np.concatenate(chunks),
        images={key: np.concatenate(parts) for key, parts in frames.items()},
        prompt=tasks[0] if tasks else "",
        source_image_size=source_size or ((height, width) if keys else None),
        environment_state=np.concatenate(environment) if environment else None,
        environment_state_names=_feature_names(dataset, ENVIRONMENT_STATE_KEY) if environment else None,
    )


def _feature_names(dataset: LeRobotV3Dataset, key: str) -> tuple[str, ...] | None:
    names = dataset.features.get(key, {}).get("names")
    return tuple(str(name) for name in names) if isinstance(names, list) else None


def compute_norm_stats(arrays: TrainingArrays, config: TrainConfig) -> dict[str, NormStats]:
    """mean, std, q01, q99 of the state, action chunks (and environment state) as the normaliser sees them
    (after repack, gripper 0–1 and delta actions), keyed like openpi's norm_stats.json (``state``,
    ``actions``, ``environment_state``)."""
    before_normalisation = T.so101_input_pipeline(
        base_camera=config.base_camera,
        wrist_camera=config.wrist_camera,
        norm_stats=None,
        use_quantiles=config.use_quantile_norm,
        model_action_dim=config.model.action_dim,
        image_size=None,
        environment_state=config.uses_environment_state,
    )
    inputs: dict[str, np.ndarray] = {
        STATE_KEY: arrays.state,
        "action": arrays.action_chunks,
        **{key: frames[:1] for key, frames in arrays.images.items()},  # images are not normalised here
    }
    if arrays.environment_state is not None:
        inputs[ENVIRONMENT_STATE_KEY] = arrays.environment_state
    sample = before_normalisation(inputs)
    stats = {"state": stats_of(sample[T.STATE]), "actions": stats_of(sample[T.ACTIONS])}
    if T.ENVIRONMENT_STATE in sample:
        environment = sample[T.ENVIRONMENT_STATE]
        floors = environment_state_min_spread(arrays.environment_state_names, environment.shape[-1])
        stats["environment_state"] = stats_of(environment, floors)
    return stats
