"""Training samples of a LeRobot dataset, gathered once into memory.

LeRobot's ``LeRobotDataset.__getitem__`` builds each sample from the Hugging Face dataset row by row: for an
ACT chunk of 30 actions that is ~30 ms per sample on this machine, ~2 s per batch of 64, more than the
state-based model's own forward and backward pass; a sample with cameras also seeks and decodes one video
frame per camera. A dataset of joint state and ``observation.environment_state`` fits in a few megabytes,
and the bench's camera datasets (two 96 × 128 cameras, 200 demonstrations) in about two gigabytes of uint8
frames, so every sample is gathered here once, with numpy, into tensors: the same keys, the same
delta-timestamp windows, the same clamping at episode ends and the same ``<key>_is_pad`` flags as
LeRobot's reader (``DatasetReader._get_query_indices``), each episode's video decoded once by LeRobot's own
``decode_video_frames`` at the timestamps its reader would ask for, and the dataset's image transforms
(augmentation) applied per sample as its reader applies them. After that a sample is an index into those
tensors. Everything else (``meta``, ``episodes``, the sampler's inputs) is the wrapped dataset's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

#: Columns LeRobot keeps per frame besides the features.
_INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


#: Frames held in memory at most by default: the cache is for datasets that fit beside the model.
DEFAULT_MEMORY_LIMIT_BYTES = 8 * 1024**3


def is_vector_only(dataset: Any) -> bool:
    """True when the dataset has no camera (image or video) features."""
    return not list(dataset.meta.camera_keys)


def frame_bytes(dataset: Any) -> int:
    """Bytes the dataset's camera frames take as uint8 in memory (0 for a vector-only dataset)."""
    per_frame = 0
    for key in dataset.meta.camera_keys:
        shape = dataset.meta.features[key]["shape"]
        per_frame += int(np.prod(shape))
    return per_frame * int(dataset.num_frames)


def _unsupported(dataset: Any) -> str | None:
    """What this cache cannot hold at all, whatever the memory."""
    depth_keys = list(getattr(dataset.meta, "depth_keys", []) or [])
    if depth_keys:
        return f"depth cameras ({', '.join(depth_keys)}) are read by LeRobot's reader"
    return None


def cache_refusal(dataset: Any, memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES) -> str | None:
    """Why ``dataset`` is read by LeRobot's own reader instead of held in memory, or None when it can be."""
    unsupported = _unsupported(dataset)
    if unsupported is not None:
        return unsupported
    needed = frame_bytes(dataset)
    if needed > memory_limit_bytes:
        return (
            f"its frames need {needed / 1024**3:.1f} GiB in memory (limit {memory_limit_bytes / 1024**3:.1f} "
            "GiB): LeRobot's reader decodes them per sample instead"
        )
    return None


def _windows(
    dataset: Any, columns: Any, absolute: np.ndarray
) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    """``window(deltas)``: each row's window as rows (clamped at its episode's ends) and its ``_is_pad``
    flags."""
    episodes = np.asarray(columns["episode_index"], dtype=np.int64)
    meta_episodes = dataset.meta.episodes
    starts = dict(zip(meta_episodes["episode_index"], meta_episodes["dataset_from_index"], strict=True))
    ends = dict(zip(meta_episodes["episode_index"], meta_episodes["dataset_to_index"], strict=True))
    episode_start = np.array([starts[int(e)] for e in episodes], dtype=np.int64)
    episode_end = np.array([ends[int(e)] for e in episodes], dtype=np.int64)
    # Rows are sorted by absolute index; a clamped absolute index maps back to its row.
    order = np.argsort(absolute)

    def window(deltas: Any) -> tuple[np.ndarray, np.ndarray]:
        wanted = absolute[:, None] + np.asarray(deltas, dtype=np.int64)[None, :]
        clamped = np.clip(wanted, episode_start[:, None], episode_end[:, None] - 1)
        padded = (wanted < episode_start[:, None]) | (wanted >= episode_end[:, None])
        return order[np.searchsorted(absolute[order], clamped)], padded

    return window


class InMemoryFrames(torch.utils.data.Dataset):
    """``dataset``'s samples, precomputed (see module docstring); attribute reads fall through to it."""

    def __init__(self, dataset: Any, progress: Any = None) -> None:
        refusal = _unsupported(dataset)  # the memory limit is the caller's (cache_refusal)
        if refusal is not None:
            raise ValueError(f"InMemoryFrames cannot hold this dataset: {refusal}")
        self._dataset = dataset
        columns = dataset.hf_dataset.with_format("numpy")[:]
        # The windows LeRobot's reader gathers per key (set from the policy's delta timestamps).
        delta_indices = dataset.reader.delta_indices
        absolute = np.asarray(columns["index"], dtype=np.int64)
        window = _windows(dataset, columns, absolute)
        self._tensors: dict[str, torch.Tensor] = {}
        #: Each windowed feature's own per-row value (``column``).
        self._columns: dict[str, torch.Tensor] = {}
        feature_keys = [key for key in dataset.meta.features if key in columns]
        for key in feature_keys:
            if key in _INDEX_COLUMNS:
                continue
            values = np.stack(columns[key]).astype(np.float32)
            deltas = (delta_indices or {}).get(key)
            if deltas is None:
                self._tensors[key] = torch.from_numpy(values)
                continue
            rows, padded = window(deltas)
            self._columns[key] = torch.from_numpy(values)
            self._tensors[key] = torch.from_numpy(values[rows])
            self._tensors[f"{key}_is_pad"] = torch.from_numpy(padded)
        for key in _INDEX_COLUMNS:
            if key in columns:
                self._tensors[key] = torch.from_numpy(np.asarray(columns[key]))
        # Camera frames: uint8 (rows, C, H, W) per key, and for a key with a window (Diffusion's two
        # observation steps) the rows each sample reads.
        self._frames: dict[str, torch.Tensor] = {}
        self._frame_rows: dict[str, torch.Tensor] = {}
        for key in dataset.meta.camera_keys:
            if key in dataset.meta.video_keys:
                frames = _decode_videos(dataset, key, columns, progress)
            else:
                frames = _decode_images(dataset, key)
            self._frames[key] = torch.from_numpy(frames)
            deltas = (delta_indices or {}).get(key)
            if deltas is not None:
                rows, padded = window(deltas)
                self._frame_rows[key] = torch.from_numpy(rows)
                self._tensors[f"{key}_is_pad"] = torch.from_numpy(padded)
        self._image_transforms = getattr(dataset, "image_transforms", None)
        tasks = dataset.meta.tasks
        self._task_names = [str(name) for name in tasks.index]
        self._length = len(absolute)

    def __len__(self) -> int:
        return self._length

    def frames(self, key: str) -> torch.Tensor:
        """Every frame of camera ``key``, uint8 (rows, C, H, W), in row order (no window, no transform)."""
        return self._frames[key]

    def column(self, key: str) -> torch.Tensor:
        """A feature or index column of every row (no window)."""
        if key in self._columns:
            return self._columns[key]
        return self._tensors[key]

    def __getitem__(self, row: int) -> dict[str, Any]:
        item: dict[str, Any] = {key: tensor[row] for key, tensor in self._tensors.items()}
        for key, frames in self._frames.items():
            rows = self._frame_rows.get(key)
            image = (frames[rows[row]] if rows is not None else frames[row]).float() / 255.0
            if self._image_transforms is not None:
                image = self._image_transforms(image)
            item[key] = image
        item["task"] = self._task_names[int(item["task_index"])]
        return item

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this class does not define: meta, episodes, num_frames, ...
        return getattr(self.__dict__["_dataset"], name)


def _decode_videos(dataset: Any, key: str, columns: dict[str, Any], progress: Any) -> np.ndarray:
    """Every frame of camera ``key`` as uint8 (C, H, W), in the dataset's row order: each episode decoded
    once by LeRobot's ``decode_video_frames`` at its rows' timestamps (what the reader asks for, sample by
    sample), with the reader's backend and tolerance."""
    from lerobot.datasets.video_utils import decode_video_frames

    timestamps = np.asarray(columns["timestamp"], dtype=np.float64)
    episodes = np.asarray(columns["episode_index"], dtype=np.int64)
    channels, height, width = _chw(dataset.meta.features[key])
    frames = np.zeros((len(timestamps), channels, height, width), dtype=np.uint8)
    backend = getattr(dataset, "_video_backend", None) or getattr(dataset, "video_backend", None)
    episode_ids = sorted(set(episodes.tolist()))
    for episode in episode_ids if progress is None else progress(episode_ids, desc=f"decoding {key}"):
        rows = np.flatnonzero(episodes == episode)
        meta = dataset.meta.episodes[int(episode)]
        start = float(meta[f"videos/{key}/from_timestamp"])
        path = dataset.root / dataset.meta.get_video_file_path(int(episode), key)
        wanted = [start + float(t) for t in timestamps[rows]]
        decoded = decode_video_frames(path, wanted, dataset.tolerance_s, backend, return_uint8=True)
        frames[rows] = decoded.numpy()
    return frames


def _decode_images(dataset: Any, key: str) -> np.ndarray:
    """Camera ``key`` of a dataset stored as images (PNG in parquet) as uint8 (C, H, W), in row order."""
    column = dataset.hf_dataset.with_format(None)[key]
    first = np.asarray(column[0])
    frames = np.zeros((len(column), first.shape[2], first.shape[0], first.shape[1]), np.uint8)
    for row, image in enumerate(column):
        frames[row] = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    return frames


def _chw(feature: dict[str, Any]) -> tuple[int, int, int]:
    """(channels, height, width) of a camera feature, whichever order its ``names`` give."""
    shape = feature["shape"]
    names = list(feature.get("names") or [])
    if names[:1] == ["channels"]:
        return int(shape[0]), int(shape[1]), int(shape[2])
    return int(shape[2]), int(shape[0]), int(shape[1])
