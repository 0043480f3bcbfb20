"""A stack-free training-sample loader that decodes each episode's video once.

LeRobot's loader seeks and decodes a few frames per sample (``delta_timestamps``), so every sample pays for
opening a video and decoding from the previous keyframe. Here a worker takes a group of episodes, decodes
their videos in one pass, and emits batches of that group's frames in shuffled order (a shuffle buffer of
``episodes_per_group`` episodes — random enough for imitation learning, with no repeated decoding). Samples
have LeRobot's keys: ``observation.state``, ``action`` (a chunk of ``action_horizon`` steps, padded by
repeating the last action, with ``action_is_pad``), and camera frames as uint8 H×W×3 (the consumer converts
to its tensor layout). ``probe_reader`` feeds it to the preflight throughput probe.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from libs.datasets.lerobot_v3 import LeRobotV3Dataset
from libs.datasets.loader_probe import LoaderProbe, probe_data_loader

Batch = dict[str, np.ndarray]


def episode_samples(
    dataset: LeRobotV3Dataset, episode_index: int, action_horizon: int, camera_keys: Sequence[str]
) -> Batch:
    """Every frame of one episode as a batch (frames decoded once)."""
    columns = dataset.episode(episode_index, ["observation.state", "action", "index"])
    actions = columns["action"]
    length = len(actions)
    offsets = np.arange(action_horizon)
    positions = np.arange(length)[:, None] + offsets[None, :]
    samples: Batch = {
        "observation.state": columns["observation.state"],
        "action": actions[np.minimum(positions, length - 1)],
        "action_is_pad": positions >= length,
        "index": columns["index"],
    }
    for key in camera_keys:
        samples[key] = dataset.video_frames(episode_index, key)
    return samples


def _group_batches(
    root: str,
    episodes: Sequence[int],
    batch_size: int,
    action_horizon: int,
    camera_keys: Sequence[str],
    seed: int,
) -> list[Batch]:
    dataset = LeRobotV3Dataset(root)
    parts = [episode_samples(dataset, index, action_horizon, camera_keys) for index in episodes]
    merged = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    order = np.random.default_rng(seed).permutation(len(merged["index"]))
    return [
        {key: value[order[start : start + batch_size]] for key, value in merged.items()}
        for start in range(0, len(order), batch_size)
    ]


def _group_task(arguments: tuple) -> list[Batch]:
    return _group_batches(*arguments)


def iterate_batches(
    root: str | Path,
    batch_size: int = 8,
    num_workers: int = 0,
    action_horizon: int = 1,
    camera_keys: Sequence[str] | None = None,
    episodes_per_group: int = 4,
    seed: int = 0,
) -> Iterator[Batch]:
    """One epoch of shuffled batches; ``num_workers`` processes decode groups of episodes in parallel."""
    dataset = LeRobotV3Dataset(root)
    keys = list(dataset.camera_keys if camera_keys is None else camera_keys)
    episodes = np.random.default_rng(seed).permutation(dataset.episode_indices).tolist()
    groups = [episodes[i : i + episodes_per_group] for i in range(0, len(episodes), episodes_per_group)]
    tasks = [
        (str(root), group, batch_size, action_horizon, keys, seed + number)
        for number, group in enumerate(groups)
    ]
    if num_workers <= 0:
        for task in tasks:
            yield from _group_task(task)
        return
    # Not "fork": forking a process whose pyarrow/av thread pools already ran can deadlock the children.
    with multiprocessing.get_context("forkserver").Pool(num_workers) as pool:
        for batches in pool.imap_unordered(_group_task, tasks):
            yield from batches


def probe_reader(
    root: str | Path, worker_counts: Sequence[int] = (0, 2, 4), batch_size: int = 8, batches: int = 10
) -> LoaderProbe:
    """Preflight probe of this loader on ``root`` (no model step: the CLI has no model)."""
    dataset = LeRobotV3Dataset(root)
    available = max(1, dataset.num_frames // batch_size - 2)
    return probe_data_loader(
        lambda workers: iterate_batches(root, batch_size, workers),
        worker_counts,
        batches=min(batches, available),
        warmup_batches=1,
    )
