"""SmolVLA and Pi0 trained with the object state read it: the step joins it to their state, is saved with
the checkpoint, and moving the block changes the chunk a checkpoint predicts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.configs.types import FeatureType, PipelineFeatureType, PolicyFeature

from backends.torch_lerobot.adapter import LeRobotPolicy
from backends.torch_lerobot.environment_state import AppendEnvironmentStateStep
from backends.torch_lerobot.train import TrainError, train_policy
from libs.datasets.record import record_scripted_dataset
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.scene_config import SceneConfig

torch.set_num_threads(1)
ENV_KEY = "observation.environment_state"


def test_step_joins_the_normalised_vectors_and_declares_the_width() -> None:
    step = AppendEnvironmentStateStep()
    observation = {"observation.state": torch.zeros(2, 6), ENV_KEY: torch.ones(2, 9, dtype=torch.float64)}
    joined = step.observation(dict(observation))["observation.state"]
    assert joined.shape == (2, 15) and joined.dtype == torch.float32
    assert torch.equal(joined[:, 6:], torch.ones(2, 9))
    features = {
        PipelineFeatureType.OBSERVATION: {
            "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
            ENV_KEY: PolicyFeature(FeatureType.ENV, (9,)),
        }
    }
    assert step.transform_features(features)[PipelineFeatureType.OBSERVATION]["observation.state"].shape == (
        15,
    )
    assert step.observation({"observation.state": torch.zeros(6)})["observation.state"].shape == (6,)


@pytest.fixture(scope="module")
def object_state_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vla_state") / "demos"
    scene = dataclasses.replace(SceneConfig().with_image_size(48, 64), environment_state=True)
    record_scripted_dataset(root, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    return root


@pytest.mark.parametrize("policy_type", ["smolvla", "pi0"])
def test_a_vla_trained_with_object_state_reads_it(
    policy_type: str, object_state_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    checkpoint = train_policy(
        policy_type,
        object_state_dataset,
        run,
        steps=2,
        batch_size=2,
        preset="state",
        tiny_backbone_dir=tmp_path / "backbone",
    )[-1]
    preprocessor = json.loads((checkpoint / "pretrained_model" / "policy_preprocessor.json").read_text())
    assert any("AppendEnvironmentStateStep" in json.dumps(step) for step in preprocessor["steps"])
    config = json.loads((checkpoint / "pretrained_model" / "config.json").read_text())
    assert config["train_expert_only"] is False and config["freeze_vision_encoder"] is False

    policy = LeRobotPolicy(checkpoint)
    scene = SceneConfig.from_dict(policy.card.scene)
    env = SO101PickPlaceEnv(scene=scene, action_space=policy.spec.action_space, max_steps=5)
    try:
        observation, _ = env.reset(seed=1)
        observation = {key: observation[key] for key in observation}
    finally:
        env.close()
    moved = dict(observation)
    moved[ENV_KEY] = np.asarray(observation[ENV_KEY]) + np.float32(0.05)
    chunks = []
    for inputs in (observation, moved):
        np.random.seed(0)  # reset seeds the episode's flow-matching noise from numpy: the same for both
        policy.reset()
        chunks.append(policy.infer(inputs))
    assert not np.allclose(chunks[0], chunks[1])  # the block's position reaches the action expert


def test_a_vla_without_a_camera_is_refused_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "state_only"
    record_scripted_dataset(
        root, episodes=1, seed=0, scene=SceneConfig().state_based(), max_steps=10, progress=False
    )
    with pytest.raises(TrainError, match="needs at least one camera") as raised:
        train_policy("smolvla", root, tmp_path / "run", steps=1, preset="state")
    assert "\n" not in str(raised.value)
