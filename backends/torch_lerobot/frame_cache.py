"""Training samples of a vector-only LeRobot dataset (no images, no video), gathered once into memory.

LeRobot's ``LeRobotDataset.__getitem__`` builds each sample from the Hugging Face dataset row by row: for an
ACT chunk of 30 actions that is ~30 ms per sample on this machine, ~2 s per batch of 64, more than the
state-based model's own forward and backward pass. A dataset of joint state and
``observation.environment_state`` fits in a few megabytes, so every sample is gathered here once, with
numpy, into tensors: the same keys, the same delta-timestamp windows, the same clamping at episode ends
and the same ``<key>_is_pad`` flags as LeRobot's reader (``DatasetReader._get_query_indices``), after which
a sample is an index into those tensors. Everything else (``meta``, ``episodes``, the sampler's inputs) is
the wrapped dataset's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: Columns LeRobot keeps per frame besides the features.
_INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def is_vector_only(dataset: Any) -> bool:
    """True when the dataset has no camera (image or video) features."""
    return not list(dataset.meta.camera_keys)


class InMemoryFrames(torch.utils.data.Dataset):
    """``dataset``'s samples, precomputed (see module docstring); attribute reads fall through to it."""

    def __init__(self, dataset: Any) -> None:
        if not is_vector_only(dataset):
            raise ValueError("InMemoryFrames holds vector-only datasets: this one has cameras")
        self._dataset = dataset
        columns = dataset.hf_dataset.with_format("numpy")[:]
        # The windows LeRobot's reader gathers per key (set from the policy's delta timestamps).
        delta_indices = dataset.reader.delta_indices
        absolute = np.asarray(columns["index"], dtype=np.int64)
        episodes = np.asarray(columns["episode_index"], dtype=np.int64)
        meta_episodes = dataset.meta.episodes
        starts = dict(zip(meta_episodes["episode_index"], meta_episodes["dataset_from_index"], strict=True))
        ends = dict(zip(meta_episodes["episode_index"], meta_episodes["dataset_to_index"], strict=True))
        episode_start = np.array([starts[int(e)] for e in episodes], dtype=np.int64)
        episode_end = np.array([ends[int(e)] for e in episodes], dtype=np.int64)
        # Rows are sorted by absolute index; a clamped absolute index maps back to its row.
        order = np.argsort(absolute)

        def rows_of(indices: np.ndarray) -> np.ndarray:
            return order[np.searchsorted(absolute[order], indices)]

        self._tensors: dict[str, torch.Tensor] = {}
        feature_keys = [key for key in dataset.meta.features if key in columns]
        for key in feature_keys:
            if key in _INDEX_COLUMNS:
                continue
            values = np.stack(columns[key]).astype(np.float32)
            deltas = (delta_indices or {}).get(key)
            if deltas is None:
                self._tensors[key] = torch.from_numpy(values)
                continue
            wanted = absolute[:, None] + np.asarray(deltas, dtype=np.int64)[None, :]
            clamped = np.clip(wanted, episode_start[:, None], episode_end[:, None] - 1)
            self._tensors[key] = torch.from_numpy(values[rows_of(clamped)])
            padded = (wanted < episode_start[:, None]) | (wanted >= episode_end[:, None])
            self._tensors[f"{key}_is_pad"] = torch.from_numpy(padded)
        for key in _INDEX_COLUMNS:
            if key in columns:
                self._tensors[key] = torch.from_numpy(np.asarray(columns[key]))
        tasks = dataset.meta.tasks
        self._task_names = [str(name) for name in tasks.index]
        self._length = len(absolute)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, row: int) -> dict[str, Any]:
        item: dict[str, Any] = {key: tensor[row] for key, tensor in self._tensors.items()}
        item["task"] = self._task_names[int(item["task_index"])]
        return item

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this class does not define: meta, episodes, num_frames, ...
        return getattr(self.__dict__["_dataset"], name)
