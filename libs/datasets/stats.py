"""Feature statistics in LeRobot v3.0's ``meta/stats.json`` layout, computed with numpy only.

The layout matches what LeRobot 0.6.1 writes and validates (``lerobot.datasets.compute_stats``):
- every feature has ``min``, ``max``, ``mean``, ``std``, ``count`` and the quantiles ``q01 q10 q50 q90 q99``;
- vectors (state, action, index columns) have one value per dimension, ``count`` is the number of frames;
- RGB images/videos have one value per channel with shape (3, 1, 1), scaled to [0, 1] (pixels / 255), computed
  on up to 100 evenly spaced frames per episode (downsampled by striding when a side is >= 300 px), and
  ``count`` is the number of frames sampled;
- depth maps have one value with shape (1, 1, 1) (LeRobot rejects any other shape for a key containing
  "image"), in the stored unit (millimetres, see ``libs.datasets.lerobot_v3``), not scaled by 1/255.
Episode statistics are merged like LeRobot does: count-weighted means, pooled variance, min of mins, max of
maxes and count-weighted quantiles. Quantiles are exact per episode (LeRobot estimates them from histograms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS: tuple[str, ...] = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
STAT_KEYS: tuple[str, ...] = ("min", "max", "mean", "std", "count", *QUANTILE_KEYS)

#: LeRobot samples at most this many frames per episode for image statistics.
MAX_IMAGE_SAMPLES = 100
#: Images whose longer side reaches this size are strided down to about TARGET_IMAGE_SIDE before stats.
DOWNSAMPLE_THRESHOLD_PX = 300
TARGET_IMAGE_SIDE_PX = 150

Stats = dict[str, dict[str, np.ndarray]]


def sample_frame_indices(num_frames: int) -> np.ndarray:
    """Evenly spaced frame indices used for image statistics (all frames for short episodes)."""
    num_samples = max(min(num_frames, MAX_IMAGE_SAMPLES), min(int(num_frames**0.75), 10_000))
    num_samples = min(num_samples, num_frames)
    return np.unique(np.round(np.linspace(0, num_frames - 1, num_samples)).astype(np.int64))


def _stride_for(height: int, width: int) -> int:
    longest = max(height, width)
    return 1 if longest < DOWNSAMPLE_THRESHOLD_PX else max(1, longest // TARGET_IMAGE_SIDE_PX)


def _summary(samples: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Statistics over axis 0 of a (num_values, num_dims) float64 array."""
    result = {
        "min": samples.min(axis=0),
        "max": samples.max(axis=0),
        "mean": samples.mean(axis=0),
        "std": samples.std(axis=0),
        "count": np.array([count], dtype=np.int64),
    }
    quantiles = np.quantile(samples, QUANTILES, axis=0)
    for key, value in zip(QUANTILE_KEYS, quantiles, strict=True):
        result[key] = value
    return result


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension statistics of an (N,) or (N, D) array; every stat has shape (D,) (or (1,))."""
    samples = np.asarray(values, dtype=np.float64)
    samples = samples.reshape(samples.shape[0], -1)
    return _summary(samples, samples.shape[0])


def rgb_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics of uint8 (N, H, W, 3) frames in [0, 1], each of shape (3, 1, 1)."""
    chosen = frames[sample_frame_indices(len(frames))]
    stride = _stride_for(chosen.shape[1], chosen.shape[2])
    chosen = chosen[:, ::stride, ::stride]
    pixels = chosen.reshape(-1, chosen.shape[-1]).astype(np.float64) / 255.0
    summary = _summary(pixels, len(chosen))
    return {key: value if key == "count" else value.reshape(-1, 1, 1) for key, value in summary.items()}


def depth_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of (N, H, W) depth maps in their stored unit, each of shape (1, 1, 1)."""
    chosen = frames[sample_frame_indices(len(frames))]
    stride = _stride_for(chosen.shape[1], chosen.shape[2])
    pixels = chosen[:, ::stride, ::stride].reshape(-1, 1).astype(np.float64)
    summary = _summary(pixels, len(chosen))
    return {key: value if key == "count" else value.reshape(1, 1, 1) for key, value in summary.items()}


def aggregate(per_episode: Sequence[Mapping[str, Mapping[str, np.ndarray]]]) -> Stats:
    """Merge per-episode statistics into dataset statistics (LeRobot's merge rule)."""
    keys = sorted({key for stats in per_episode for key in stats})
    merged: Stats = {}
    for key in keys:
        items = [stats[key] for stats in per_episode if key in stats]
        counts = np.array([float(item["count"][0]) for item in items])
        total = counts.sum()
        means = np.stack([np.asarray(item["mean"], dtype=np.float64) for item in items])
        variances = np.stack([np.asarray(item["std"], dtype=np.float64) ** 2 for item in items])
        weights = counts.reshape((-1,) + (1,) * (means.ndim - 1))
        mean = (means * weights).sum(axis=0) / total
        variance = ((variances + (means - mean) ** 2) * weights).sum(axis=0) / total
        result = {
            "min": np.min(np.stack([item["min"] for item in items]), axis=0),
            "max": np.max(np.stack([item["max"] for item in items]), axis=0),
            "mean": mean,
            "std": np.sqrt(variance),
            "count": np.array([int(total)], dtype=np.int64),
        }
        for quantile in QUANTILE_KEYS:
            if all(quantile in item for item in items):
                values = np.stack([np.asarray(item[quantile], dtype=np.float64) for item in items])
                result[quantile] = (values * weights).sum(axis=0) / total
        merged[key] = result
    return merged


def to_json(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Nested lists, as LeRobot's ``write_stats`` serialises them."""
    return {
        key: {name: np.asarray(value).tolist() for name, value in feature.items()}
        for key, feature in stats.items()
    }


def from_json(data: Mapping[str, Mapping[str, Any]]) -> Stats:
    return {
        key: {name: np.atleast_1d(np.asarray(value)) for name, value in feature.items()}
        for key, feature in data.items()
    }
