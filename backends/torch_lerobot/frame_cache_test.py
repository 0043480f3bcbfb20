"""The in-memory samples of a state-based dataset equal LeRobot's own, window for window."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from backends.torch_lerobot.frame_cache import InMemoryFrames, cache_refusal, frame_bytes, is_vector_only
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


def test_camera_samples_equal_lerobots_for_videos_images_and_windows(tmp_path: Path) -> None:
    scene = SceneConfig().with_image_size(24, 32)
    windows = {
        "act": {"action": [i / 30 for i in range(10)]},
        "diffusion": {
            "observation.state": [-1 / 30, 0.0],
            "observation.images.overhead": [-1 / 30, 0.0],
            "observation.images.wrist": [-1 / 30, 0.0],
            "action": [i / 30 for i in range(-1, 15)],
        },
    }
    for stored_as, images in (("video", False), ("png", True)):  # --images stores PNGs in parquet
        root = tmp_path / stored_as
        record_dataset(
            root, "scripted", episodes=2, scene=scene, max_steps=12, progress=False, use_video=not images
        )
        for delta_timestamps in windows.values():
            dataset = LeRobotDataset(
                f"local/{stored_as}", root=root, delta_timestamps=delta_timestamps, video_backend="pyav"
            )
            assert not is_vector_only(dataset) and cache_refusal(dataset) is None
            cached = InMemoryFrames(dataset)
            assert len(cached) == len(dataset) == 24
            for index in range(len(dataset)):
                mine, theirs = cached[index], dataset[index]
                assert set(mine) >= {key for key, value in theirs.items() if isinstance(value, torch.Tensor)}
                for key, value in theirs.items():
                    if isinstance(value, torch.Tensor):
                        assert mine[key].shape == value.shape, (stored_as, index, key)
                        assert torch.equal(mine[key], value.to(mine[key].dtype)), (stored_as, index, key)


def test_a_dataset_too_large_for_memory_is_left_to_lerobots_reader(tmp_path: Path) -> None:
    root = tmp_path / "video"
    record_dataset(root, "scripted", episodes=1, scene=SceneConfig().with_image_size(24, 32), max_steps=5,
                   progress=False)  # fmt: skip
    dataset = LeRobotDataset("local/video", root=root, video_backend="pyav")
    assert frame_bytes(dataset) == 5 * 2 * 3 * 24 * 32
    refusal = cache_refusal(dataset, memory_limit_bytes=1000)
    assert refusal is not None and "LeRobot's reader" in refusal


def test_the_image_shift_augmentation_moves_in_memory_frames_and_nothing_else(tmp_path: Path) -> None:
    """``train --image-shift``: LeRobot's transform, translation only, applied to every camera frame the
    in-memory samples hand out; states and actions untouched."""
    from lerobot.transforms.transforms import ImageTransforms

    from backends.torch_lerobot.train import TrainError, _shift_transforms

    root = tmp_path / "images"
    record_dataset(
        root, "scripted", episodes=1, scene=SceneConfig().with_image_size(48, 64), max_steps=6, progress=False
    )
    plain = InMemoryFrames(LeRobotDataset("local/images", root=root, video_backend="pyav"))
    shifted_dataset = LeRobotDataset(
        "local/images",
        root=root,
        video_backend="pyav",
        image_transforms=ImageTransforms(_shift_transforms(0.2)),
    )
    shifted = InMemoryFrames(shifted_dataset)
    torch.manual_seed(0)
    before, after = plain[3], shifted[3]
    assert torch.equal(before["observation.state"], after["observation.state"])
    for key in ("observation.images.overhead", "observation.images.wrist"):
        assert after[key].shape == before[key].shape and not torch.equal(after[key], before[key])
    assert not _shift_transforms(0.0).enable
    with pytest.raises(TrainError, match=r"--image-shift 0.7"):
        _shift_transforms(0.7)
