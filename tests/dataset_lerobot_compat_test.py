"""The proof that our stack-free writer produces real LeRobot v3.0 datasets: LeRobot 0.6.1's own
``LeRobotDataset`` loads them offline and returns, through ``delta_timestamps``, the values we wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from libs.datasets.lerobot_v3 import LeRobotV3Dataset
from libs.datasets.synthetic import write_synthetic_dataset

CHUNK = 4


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lerobot_home"))


def _load(root: Path, fps: int):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    delta = {"action": [i / fps for i in range(CHUNK)], "observation.state": [-1 / fps, 0.0]}
    # PyAV, as everywhere this lab lets LeRobot decode (torchcodec needs a system FFmpeg); depth in metres.
    return LeRobotDataset(
        repo_id="local/so101lab",
        root=root,
        delta_timestamps=delta,
        video_backend="pyav",
        depth_output_unit="m",
    )


def _check_against_reader(root: Path) -> None:
    ours = LeRobotV3Dataset(root)
    theirs = _load(root, ours.fps)
    assert len(theirs) == ours.num_frames
    assert theirs.meta.total_episodes == ours.num_episodes
    assert sorted(theirs.meta.camera_keys) == sorted(ours.camera_keys)
    assert theirs.meta.depth_keys == ours.depth_keys
    for episode_index in ours.episode_indices:
        episode = ours.episode(episode_index)
        frames = {key: ours.video_frames(episode_index, key) for key in ours.camera_keys}
        length = len(episode["action"])
        for frame_index in (0, length // 2, length - 1):
            sample = theirs[int(episode["index"][frame_index])]
            wanted = [min(frame_index + i, length - 1) for i in range(CHUNK)]
            np.testing.assert_allclose(sample["action"].numpy(), episode["action"][wanted], rtol=0, atol=1e-6)
            padded = [frame_index + i >= length for i in range(CHUNK)]
            assert sample["action_is_pad"].numpy().tolist() == padded
            previous = max(frame_index - 1, 0)
            np.testing.assert_allclose(
                sample["observation.state"].numpy(),
                episode["observation.state"][[previous, frame_index]],
                atol=1e-6,
            )
            assert int(sample["episode_index"]) == episode_index
            for key in ours.rgb_keys:
                image = sample[key].numpy()  # C, H, W float in [0, 1]
                assert image.shape == (3, *frames[key].shape[1:3])
                ours_image = frames[key][frame_index].transpose(2, 0, 1) / 255.0
                assert np.abs(image - ours_image).max() < 1.5 / 255
            for key in ours.depth_keys:  # (1, H, W) metres, to the stored millimetre
                assert sample[key].shape == (1, *frames[key].shape[1:3])
                np.testing.assert_allclose(sample[key].numpy()[0], frames[key][frame_index], atol=1e-6)
        assert sample["task"] == ours.tasks[0]
    stats = theirs.meta.stats
    for key in ours.camera_keys:
        assert stats[key]["mean"].shape == ((1, 1, 1) if key in ours.depth_keys else (3, 1, 1))


@pytest.mark.parametrize("use_video", [True, False], ids=["video", "image"])
def test_lerobot_loads_synthetic_dataset(tmp_path: Path, use_video: bool) -> None:
    root = write_synthetic_dataset(
        tmp_path / "ds", episodes=2, length=7, use_video=use_video, with_depth=True
    )
    _check_against_reader(root)


def test_lerobot_loads_recorded_scripted_dataset(tmp_path: Path) -> None:
    from libs.datasets.record import record_scripted_dataset
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig().with_image_size(32, 48)
    summary = record_scripted_dataset(tmp_path / "rec", episodes=2, scene=scene, progress=False, max_steps=40)
    assert summary.episodes_kept == 2
    dataset = LeRobotV3Dataset(tmp_path / "rec")
    assert (
        dataset.scene_config is not None
        and SceneConfig.from_dict(dataset.scene_config).differences(scene) == []
    )
    assert set(dataset.outcomes.values()) <= {
        "success",
        "never_picked_up",
        "dropped_during_transport",
        "missed_goal",
        "timeout",
    }
    _check_against_reader(tmp_path / "rec")
