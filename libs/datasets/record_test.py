"""Recorder and flywheel rollouts with the real simulator (tiny images, short episodes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from libs.datasets.lerobot_v3 import DatasetError, LeRobotV3Dataset
from libs.datasets.record import main, record_dataset
from libs.sim.env import sample_layout


def _scene():
    from libs.sim.scene_config import SceneConfig

    return SceneConfig().with_image_size(32, 48)


def test_rollouts_keep_outcome_and_figures(tmp_path: Path) -> None:
    summary = record_dataset(
        tmp_path / "ds",
        "scripted",
        episodes=2,
        scene=_scene(),
        max_steps=8,
        keep="never_picked_up",
        progress=False,
    )
    assert summary.episodes_kept == 2 and summary.kept_seeds == [0, 1]
    # Where each kept episode's block started (the sweep's --grid map draws these over its cells).
    positions = json.loads((tmp_path / "ds" / "meta" / "block_positions.json").read_text())
    expected = [sample_layout(_scene(), seed)["block_xy"] for seed in (0, 1)]
    assert np.allclose(positions, expected, atol=0.002)
    dataset = LeRobotV3Dataset(tmp_path / "ds")
    assert dataset.outcomes == {0: "never_picked_up", 1: "never_picked_up"}
    metadata = dataset.episode_metadata(1)
    assert metadata["seed"] == 1 and metadata["figures/steps"] == 8 and metadata["length"] == 8
    assert dataset.scene_config is not None
    assert set(dataset.camera_keys) == {"observation.images.overhead", "observation.images.wrist"}


def test_keep_filter_that_nothing_passes_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="none of 2 episodes passed"):
        record_dataset(
            tmp_path / "ds", "scripted", episodes=1, scene=_scene(), max_steps=5, keep="success",
            max_attempts=2, progress=False,
        )  # fmt: skip
    with pytest.raises(DatasetError, match="unknown outcome"):
        record_dataset(tmp_path / "ds2", "scripted", episodes=1, keep="great", progress=False)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--episodes", "1", "--max-steps", "4", "--image-size", "32x48"]
    assert main(["--out", str(tmp_path / "a"), "--depth", "--action-space", "ee", *common]) == 0
    dataset = LeRobotV3Dataset(tmp_path / "a")
    assert "observation.images.overhead_depth" in dataset.features
    assert dataset.features["action"]["shape"] == [7]
    assert main(["--out", str(tmp_path / "b"), "--images", *common]) == 0
    assert LeRobotV3Dataset(tmp_path / "b").features["observation.images.wrist"]["dtype"] == "image"
    assert main(["--out", str(tmp_path / "c"), "--image-size", "large", "--episodes", "1"]) == 2
    assert "--image-size 'large' must look like 96x128" in capsys.readouterr().err


def test_state_based_recording_with_recovery_noise(tmp_path: Path) -> None:
    """--no-cameras --environment-state writes the privileged object state with stats; --noise perturbs what
    is executed (the states differ) while the labels stay the expert's plan."""
    from libs.datasets.action_noise import ActionNoise
    from libs.sim.layout import ENVIRONMENT_STATE_NAMES
    from libs.sim.scene_config import SceneConfig

    common = dict(episodes=1, scene=SceneConfig().state_based(), max_steps=40, progress=False)
    record_dataset(tmp_path / "clean", "scripted", **common)
    record_dataset(tmp_path / "noisy", "scripted", action_noise=ActionNoise(std=3.0), **common)
    clean, noisy = LeRobotV3Dataset(tmp_path / "clean"), LeRobotV3Dataset(tmp_path / "noisy")
    feature = clean.features["observation.environment_state"]
    assert feature["names"] == list(ENVIRONMENT_STATE_NAMES) and feature["shape"] == [9]
    assert clean.camera_keys == [] and clean.scene_config["environment_state"] is True
    stats = json.loads((tmp_path / "clean" / "meta" / "stats.json").read_text())
    assert len(stats["observation.environment_state"]["std"]) == 9
    clean_frames, noisy_frames = clean.episode(0), noisy.episode(0)
    assert not np.allclose(clean_frames["observation.state"][20:], noisy_frames["observation.state"][20:])
    # Labels are the expert's targets for the state it is in, not the executed (noisy) commands: the arm
    # joints' labels stay close to the clean run's, far closer than the noise would put them.
    gap = np.abs(clean_frames["action"][:, :5] - noisy_frames["action"][:, :5]).mean()
    assert gap < 3.0


def test_no_cameras_without_environment_state_is_refused(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "x"), "--episodes", "1", "--no-cameras"]) == 2
