"""The in-memory samples of a state-based dataset equal LeRobot's own, window for window."""

from __future__ import annotations

from pathlib import Path

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from backends.torch_lerobot.frame_cache import InMemoryFrames, is_vector_only
from libs.datasets.record import record_dataset
from libs.sim.scene_config import SceneConfig


def test_samples_equal_lerobots_for_act_and_diffusion_windows(tmp_path: Path) -> None:
    root = tmp_path / "state"
    scene = SceneConfig().state_based()
    record_dataset(root, "scripted", episodes=2, scene=scene, max_steps=25, progress=False)
    windows = {
        "act": {"action": [i / 30 for i in range(10)]},
        "diffusion": {
            "observation.state": [-1 / 30, 0.0],
            "observation.environment_state": [-1 / 30, 0.0],
            "action": [i / 30 for i in range(-1, 15)],
        },
    }
    for delta_timestamps in windows.values():
        dataset = LeRobotDataset(
            "local/state", root=root, delta_timestamps=delta_timestamps, video_backend="pyav"
        )
        assert is_vector_only(dataset)
        cached = InMemoryFrames(dataset)
        assert len(cached) == len(dataset) == 50 and cached.meta is dataset.meta
        for index in range(len(dataset)):
            mine, theirs = cached[index], dataset[index]
            assert mine["task"] == theirs["task"]
            for key, value in theirs.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(mine[key], value.to(mine[key].dtype)), (index, key)
