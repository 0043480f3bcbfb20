"""A tiny two-camera SO-101-shaped dataset with a learnable signal, for tests and benchmarks that must not
need the simulator: the action is a fixed function of the state, and the overhead image shows a bright
square whose position is the target the joints move towards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from libs.datasets.lerobot_v3 import LeRobotV3Writer, rgb_feature, vector_feature

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
TASK = "put the block in the bowl"


def write_tiny_dataset(
    root: Path | str,
    episodes: int = 2,
    length: int = 20,
    height: int = 24,
    width: int = 32,
    cameras: tuple[str, str] = ("overhead", "wrist"),
    seed: int = 0,
) -> Path:
    rng = np.random.default_rng(seed)
    features = {
        "observation.state": vector_feature(JOINTS),
        "action": vector_feature(JOINTS),
        **{f"observation.images.{name}": rgb_feature(height, width) for name in cameras},
    }
    scene = {
        "cameras": [{"name": name, "height": height, "width": width, "fovy_deg": 52.0} for name in cameras]
    }
    with LeRobotV3Writer(root, 30, features, scene_config=scene, overwrite=True) as writer:
        for _ in range(episodes):
            target = rng.uniform(-40, 40, 5)
            state = np.concatenate([rng.uniform(-20, 20, 5), [100.0]])
            row, column = int(rng.integers(0, height - 4)), int(rng.integers(0, width - 4))
            for step in range(length):
                action = state.copy()
                action[:5] += 0.2 * (target - state[:5])
                action[5] = 100.0 if step < length // 2 else 0.0
                overhead = np.full((height, width, 3), 40, np.uint8)
                overhead[row : row + 4, column : column + 4] = 230
                wrist = np.full((height, width, 3), int(step * 200 / length), np.uint8)
                images = dict(zip(cameras, (overhead, wrist), strict=True))
                writer.add_frame(
                    {
                        "observation.state": state.astype(np.float32),
                        "action": action.astype(np.float32),
                        **{f"observation.images.{name}": image for name, image in images.items()},
                        "task": TASK,
                    }
                )
                state = action
            writer.save_episode({"outcome": "success"})
    return Path(root)
