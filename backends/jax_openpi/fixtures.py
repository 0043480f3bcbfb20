"""A tiny SO-101-shaped dataset with a learnable signal, for tests and benchmarks that must not need the
simulator: the action is a fixed function of the state, and the overhead image shows a bright square
whose position is the target the joints move towards. ``environment_state=True`` adds a 9-dim
``observation.environment_state`` holding that target (the state-based variant, ``cameras=()``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from libs.datasets.lerobot_v3 import LeRobotV3Writer, rgb_feature, vector_feature
from libs.policy_api.types import ENVIRONMENT_STATE_KEY
from libs.sim.layout import ENVIRONMENT_STATE_NAMES

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
TASK = "put the block in the bowl"


def write_tiny_dataset(
    root: Path | str,
    episodes: int = 2,
    length: int = 20,
    height: int = 24,
    width: int = 32,
    cameras: tuple[str, ...] = ("overhead", "wrist"),
    seed: int = 0,
    environment_state: bool = False,
) -> Path:
    rng = np.random.default_rng(seed)
    features = {
        "observation.state": vector_feature(JOINTS),
        "action": vector_feature(JOINTS),
        **{f"observation.images.{name}": rgb_feature(height, width) for name in cameras},
    }
    if environment_state:
        features[ENVIRONMENT_STATE_KEY] = vector_feature(ENVIRONMENT_STATE_NAMES)
    scene = {
        "cameras": [{"name": name, "height": height, "width": width, "fovy_deg": 52.0} for name in cameras],
        "environment_state": environment_state,
    }
    with LeRobotV3Writer(root, 30, features, scene_config=scene, overwrite=True) as writer:
        for _ in range(episodes):
            target = rng.uniform(-40, 40, 5)
            state = np.concatenate([rng.uniform(-20, 20, 5), [100.0]])
            row, column = int(rng.integers(0, height - 4)), int(rng.integers(0, width - 4))
            half_yaw = rng.uniform(-np.pi / 8, np.pi / 8)
            for step in range(length):
                action = state.copy()
                action[:5] += 0.2 * (target - state[:5])
                action[5] = 100.0 if step < length // 2 else 0.0
                overhead = np.full((height, width, 3), 40, np.uint8)
                overhead[row : row + 4, column : column + 4] = 230
                wrist = np.full((height, width, 3), int(step * 200 / length), np.uint8)
                images = dict(zip(cameras, (overhead, wrist), strict=False))
                frame = {
                    "observation.state": state.astype(np.float32),
                    "action": action.astype(np.float32),
                    **{f"observation.images.{name}": image for name, image in images.items()},
                    "task": TASK,
                }
                if environment_state:
                    # The target in metres-like units, then a block yawed about z and a bowl position.
                    quat = [np.cos(half_yaw), 0.0, 0.0, np.sin(half_yaw)]
                    frame[ENVIRONMENT_STATE_KEY] = np.concatenate(
                        [target[:3] / 400.0, quat, target[3:5] / 400.0]
                    ).astype(np.float32)
                writer.add_frame(frame)
                state = action
            writer.save_episode({"outcome": "success"})
    return Path(root)
