"""The object-state estimator: its targets keep what a camera can see of the block, it trains and saves,
and a policy trained through it is evaluated from the cameras in a scene that gives no object state."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from backends.torch_lerobot.adapter import LeRobotPolicy
from backends.torch_lerobot.object_state_estimator import (
    environment_state_from_targets,
    targets_from_environment_state,
    yaw_error_degrees,
)
from backends.torch_lerobot.train import TrainError, train_policy
from backends.torch_lerobot.train_estimator import (
    CONFIG_FILE,
    EstimatorError,
    load_estimator,
    main,
    train_estimator,
)
from libs.datasets.record import record_scripted_dataset
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.scene_config import SceneConfig

torch.set_num_threads(1)
ENV_KEY = "observation.environment_state"


def _state(yaw: float) -> torch.Tensor:
    return torch.tensor([0.2, -0.1, 0.0125, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2), 0.25, 0.1])


@pytest.mark.parametrize("yaw_degrees", [-170.0, -46.0, 0.0, 30.0, 44.0, 95.0, 179.0])
def test_targets_keep_position_and_yaw_modulo_the_cubes_symmetry(yaw_degrees: float) -> None:
    true = _state(math.radians(yaw_degrees))
    back = environment_state_from_targets(targets_from_environment_state(true))
    assert torch.allclose(back[[0, 1, 2, 7, 8]], true[[0, 1, 2, 7, 8]])
    assert float(yaw_error_degrees(back, true)) < 1e-3  # the same face directions
    assert back[3] > 0 and abs(2 * math.degrees(math.atan2(back[6], back[3]))) <= 45.0 + 1e-4


@pytest.fixture(scope="module")
def labelled_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("estimator") / "demos"
    scene = dataclasses.replace(SceneConfig().with_image_size(48, 64), environment_state=True)
    record_scripted_dataset(root, episodes=3, seed=0, scene=scene, max_steps=20, progress=False)
    return root


@pytest.fixture(scope="module")
def estimator_dir(labelled_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("estimator") / "est"
    errors = train_estimator(labelled_dataset, out, steps=5, batch_size=8, progress=False)
    assert errors.frames > 0 and math.isfinite(errors.block_xy_mm_median)
    return out


def test_estimator_saves_its_sizes_and_held_out_errors(estimator_dir: Path) -> None:
    record = json.loads((estimator_dir / CONFIG_FILE).read_text())
    assert record["config"]["camera_keys"] == ["observation.images.overhead", "observation.images.wrist"]
    assert set(record["held_out_errors"]) >= {"block_xy_mm_median", "yaw_deg_median", "bowl_xy_mm_median"}
    net = load_estimator(estimator_dir)
    images = [torch.rand(2, 3, 48, 64), torch.rand(2, 3, 48, 64)]
    assert net.estimate(images, torch.zeros(2, 6)).shape == (2, 9)


def test_bad_estimator_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_only = tmp_path / "state_only"
    record_scripted_dataset(
        state_only, episodes=1, seed=0, scene=SceneConfig().state_based(), max_steps=5, progress=False
    )
    assert main(["--dataset", str(state_only), "--out", str(tmp_path / "e"), "--steps", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "no cameras" in error
    with pytest.raises(EstimatorError, match="holds no estimator"):
        load_estimator(tmp_path)


def test_policy_through_the_estimator_sees_the_block_without_the_object_state(
    labelled_dataset: Path, estimator_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    checkpoint = train_policy(
        "act",
        labelled_dataset,
        run,
        steps=2,
        batch_size=4,
        preset="state",
        object_state_estimator=estimator_dir,
        policy_cameras=False,
    )[-1]
    config = json.loads((checkpoint / "pretrained_model" / "config.json").read_text())
    assert set(config["input_features"]) == {"observation.state", ENV_KEY}  # no image encoder
    policy = LeRobotPolicy(checkpoint)
    assert policy.spec.environment_state_dim == 0  # the scene need not give it
    assert {camera.name for camera in policy.spec.cameras} == {"overhead", "wrist"}
    scene = SceneConfig.from_dict(policy.card.scene)
    assert scene.environment_state is False
    chunks = []
    for seed in (1, 2):  # two block positions: the estimate, and so the chunk, differs
        env = SO101PickPlaceEnv(scene=scene, action_space="joint", max_steps=5)
        try:
            observation, _ = env.reset(seed=seed)
            assert ENV_KEY not in observation
            policy.reset()
            chunks.append(policy.infer(observation))
        finally:
            env.close()
    assert not np.allclose(chunks[0], chunks[1])


def test_no_policy_cameras_without_an_estimator_is_refused(labelled_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="needs --object-state-estimator"):
        train_policy("act", labelled_dataset, tmp_path / "r", steps=1, preset="state", policy_cameras=False)
