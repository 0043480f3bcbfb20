"""Datasets LeRobot reads as we mean them, end to end and tiny: scripted demos with a depth camera -> LeRobot
lists the depth key and types it as an image -> an ACT trained on RGB-D through our train -> a sweep of its
checkpoint; the same for end-effector actions (tail layout, no constant dimension). The training and
evaluation logs carry no traceback (no torchcodec probe: LeRobot decodes with PyAV)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.configs.types import FeatureType
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.utils.feature_utils import dataset_to_policy_features

from backends.torch_lerobot.adapter import LeRobotPolicy
from backends.torch_lerobot.train import train_policy
from libs.datasets.lerobot_v3 import LeRobotV3Dataset
from libs.datasets.record import record_scripted_dataset
from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from libs.sim.layout import EE_ACTION_NAMES
from libs.sim.scene_config import SceneConfig

torch.set_num_threads(1)  # CI's two busy cores: torch's default threads spin-wait
DEPTH_KEY = "observation.images.overhead_depth"


@pytest.fixture(autouse=True)
def _no_stale_log_handlers() -> Iterator[None]:
    """LeRobot's training points the root logger at the stderr pytest captured for that test; a later test
    would log into that closed stream (a "Logging error" traceback no real run has)."""
    yield
    logging.getLogger().handlers.clear()


@pytest.fixture(scope="module")
def rgbd_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rgbd") / "demos"
    scene = SceneConfig().with_image_size(48, 64)
    scene = replace(
        scene, cameras=tuple(replace(camera, depth=camera.name == "overhead") for camera in scene.cameras)
    )
    record_scripted_dataset(root, episodes=2, seed=0, scene=scene, max_steps=20, progress=False)
    return root


def test_lerobot_lists_depth_keys_and_types_them_as_images(rgbd_dataset: Path) -> None:
    meta = LeRobotDatasetMetadata("local/rgbd", root=rgbd_dataset)
    assert meta.depth_keys == [DEPTH_KEY]
    features = dataset_to_policy_features(meta.features)
    assert features[DEPTH_KEY].type is FeatureType.VISUAL
    assert tuple(features[DEPTH_KEY].shape) == (1, 48, 64)
    # Metres recoverable: LeRobot's metres equal ours (stored to the millimetre) and the env's range.
    theirs = LeRobotDataset("local/rgbd", root=rgbd_dataset, video_backend="pyav", depth_output_unit="m")
    ours = LeRobotV3Dataset(rgbd_dataset).video_frames(0, DEPTH_KEY)
    np.testing.assert_allclose(theirs[5][DEPTH_KEY][0].numpy(), ours[5], atol=1e-6)
    assert 0.05 < float(np.median(ours[5])) < 3.0
    assert float(theirs.meta.stats[DEPTH_KEY]["mean"].reshape(-1)[0]) < 3.0  # stats rescaled to metres


def test_rgbd_act_trains_and_runs_a_sweep_without_tracebacks(
    rgbd_dataset: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    checkpoints = train_policy("act", rgbd_dataset, run, steps=2, batch_size=2, log_freq=1)
    preprocessor = json.loads((checkpoints[-1] / "pretrained_model" / "policy_preprocessor.json").read_text())
    assert any("RepeatDepthChannelsStep" in step.get("class", "") for step in preprocessor["steps"])

    policy = LeRobotPolicy(run)
    assert [
        (camera.name, camera.modality) for camera in policy.spec.cameras if camera.modality == "depth"
    ] == [("overhead", "depth")]
    out = tmp_path / "sweep"
    sweep = SweepConfig(
        policy=f"torch_lerobot:{run}", episodes=1, env=EnvSettings(max_steps=4), serial=True, progress=False
    )
    evaluate(sweep, out, argv=["rgbd"])
    report = json.loads((out / "report.json").read_text())
    assert sum(checkpoint["episodes"] for checkpoint in report["checkpoints"]) == 1

    log = "".join(capfd.readouterr())
    assert "Traceback" not in log and "torchcodec" not in log


def _sweep_one_episode(run: Path, out: Path) -> dict:
    sweep = SweepConfig(
        policy=f"torch_lerobot:{run}", episodes=1, env=EnvSettings(max_steps=4), serial=True, progress=False
    )
    evaluate(sweep, out, argv=["tiny"])
    return json.loads((out / "report.json").read_text())


def test_ee_act_trains_and_runs_a_sweep_without_tracebacks(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "ee_demos"
    scene = SceneConfig().with_image_size(48, 64).with_cameras(["overhead"])
    record_scripted_dataset(
        root, episodes=2, seed=0, scene=scene, action_space="ee", max_steps=20, progress=False
    )
    dataset = LeRobotV3Dataset(root)
    assert dataset.features["action"]["names"] == list(EE_ACTION_NAMES)
    # position and tail vary (20 steps are too few for the gripper to close: its std is 0 here)
    assert dataset.stats is not None and np.all(dataset.stats["action"]["std"][:6] > 1e-3)

    run = tmp_path / "run_ee"
    train_policy("act", root, run, steps=2, batch_size=2, log_freq=1)
    policy = LeRobotPolicy(run)
    assert policy.spec.action_space == "ee" and policy.spec.action_dim == 7
    report = _sweep_one_episode(run, tmp_path / "sweep_ee")
    assert sum(checkpoint["episodes"] for checkpoint in report["checkpoints"]) == 1

    log = "".join(capfd.readouterr())
    assert "Traceback" not in log and "torchcodec" not in log
