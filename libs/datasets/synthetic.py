"""Tiny synthetic datasets with known values, for tests and benchmarks that must not need the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from libs.datasets.lerobot_v3 import LeRobotV3Writer, depth_feature, rgb_feature, vector_feature

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
TASK = "put the block in the bowl"


def synthetic_features(
    height: int = 32, width: int = 48, use_video: bool = True, with_depth: bool = False
) -> dict[str, dict[str, Any]]:
    features = {
        "observation.state": vector_feature(JOINT_NAMES),
        "action": vector_feature(JOINT_NAMES),
        "observation.images.top": rgb_feature(height, width, use_video),
    }
    if with_depth:
        features["observation.images.top_depth"] = depth_feature(height, width)
    return features


def synthetic_frame(episode: int, step: int, height: int, width: int, with_depth: bool) -> dict[str, Any]:
    """A frame whose values encode (episode, step) so readers can check them exactly."""
    phase = step / 10.0 + episode
    state = np.array(
        [10 * np.sin(phase), 20 * np.cos(phase), 5.0 * step, 0.5 * step - 3, 1.0 * episode, 50.0]
    )
    state[5] = 100.0 if (step // 5) % 2 == 0 else 0.0
    frame: dict[str, Any] = {
        "observation.state": state.astype(np.float32),
        "action": (state + np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])).astype(np.float32),
        "observation.images.top": np.full((height, width, 3), (20 * step + 40 * episode) % 256, np.uint8),
        "task": TASK,
    }
    frame["observation.images.top"][: height // 2, :, 0] = 200
    if with_depth:
        frame["observation.images.top_depth"] = np.full((height, width), 0.3 + 0.01 * step, np.float32)
    return frame


def write_synthetic_dataset(
    root: str | Path,
    episodes: int = 2,
    length: int = 12,
    height: int = 32,
    width: int = 48,
    use_video: bool = True,
    with_depth: bool = False,
    outcomes: list[str] | None = None,
    fps: int = 30,
) -> Path:
    """Write ``episodes`` episodes of ``length`` frames (episode i has ``length + i`` frames)."""
    features = synthetic_features(height, width, use_video, with_depth)
    scene = {
        "cameras": [{"name": "top", "height": height, "width": width, "fovy": 52.0, "depth": with_depth}]
    }
    with LeRobotV3Writer(root, fps, features, scene_config=scene, overwrite=True) as writer:
        for episode in range(episodes):
            for step in range(length + episode):
                writer.add_frame(synthetic_frame(episode, step, height, width, with_depth))
            outcome = outcomes[episode] if outcomes else "success"
            writer.save_episode({"outcome": outcome, "seed": episode})
    return Path(root)
