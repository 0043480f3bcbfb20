"""The lerobot_env_so101 plugin: LeRobot discovers it, builds our env through its own ``make_env`` and
steps it; observations convert to the policy keys LeRobot's rollout feeds a policy."""

from __future__ import annotations

import numpy as np
import pytest
from lerobot.configs.parser import load_plugin
from lerobot.envs.configs import EnvConfig
from lerobot.envs.factory import make_env, make_env_config
from lerobot.envs.utils import close_envs, env_to_policy_features, preprocess_observation


def test_plugin_registers_the_env_type_through_lerobot_discovery() -> None:
    load_plugin("lerobot_env_so101")  # what --env.discover_packages_path=lerobot_env_so101 does
    assert "so101_pick_place" in EnvConfig.get_known_choices()


def test_make_env_builds_and_steps_our_env() -> None:
    load_plugin("lerobot_env_so101")
    config = make_env_config("so101_pick_place", episode_length=4)
    features = env_to_policy_features(config)
    assert features["observation.state"].shape == (6,)
    assert features["observation.images.overhead"].shape == (3, 96, 128)
    assert features["action"].shape == (6,)

    envs = make_env(config, n_envs=1)
    vector_env = envs["so101_pick_place"][0]
    try:
        observation, _ = vector_env.reset(seed=[7])
        assert vector_env.call("task_description")[0].lower().startswith("pick up")
        assert vector_env.call("_max_episode_steps")[0] == 4
        policy_inputs = preprocess_observation(observation)
        assert set(policy_inputs) == {
            "observation.state",
            "observation.images.overhead",
            "observation.images.wrist",
        }
        assert tuple(policy_inputs["observation.images.wrist"].shape) == (1, 3, 96, 128)
        truncated = np.array([False])
        for _ in range(4):
            action = observation["agent_pos"].copy()  # hold the current joints
            observation, reward, terminated, truncated, info = vector_env.step(action)
            assert reward.shape == (1,) and not terminated[0]
        assert truncated[0], "the episode ends at episode_length"
        assert "final_info" in info and not info["final_info"]["is_success"][0]
    finally:
        close_envs(envs)


def test_bad_action_space_is_refused() -> None:
    load_plugin("lerobot_env_so101")
    with pytest.raises(ValueError, match="action_space"):
        make_env_config("so101_pick_place", action_space="torque")
