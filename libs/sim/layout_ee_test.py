"""The ee action layout: the tail point carries the approach direction the IK takes, every dimension of the
scripted expert's ee demonstrations varies (mean/std normalisation never divides by ~0), and the contract
check knows the same tail distance."""

from __future__ import annotations

import numpy as np
import pytest

from libs.policy_api import contracts
from libs.sim.env import SimInputError, SO101PickPlaceEnv
from libs.sim.layout import EE_ACTION_NAMES, EE_TAIL_DISTANCE_M, ee_action, ee_approach
from libs.sim.scripted_policy import ScriptedPolicy


def test_tail_round_trips_the_approach_direction() -> None:
    approach = np.array([0.3, -0.2, -0.9])
    action = ee_action([0.2, 0.05, 0.1], approach, 40.0)
    np.testing.assert_allclose(ee_approach(action), approach / np.linalg.norm(approach), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(action[:3] - action[3:6]), EE_TAIL_DISTANCE_M, atol=1e-6)
    assert action[6] == 40.0 and len(EE_ACTION_NAMES) == 7
    # a policy's tail need not sit exactly at the tail distance: only the direction matters
    longer = action.copy()
    longer[3:6] = action[:3] - 3 * (action[:3] - action[3:6])
    np.testing.assert_allclose(ee_approach(longer), ee_approach(action), atol=1e-6)
    assert contracts.EE_TAIL_DISTANCE_M == EE_TAIL_DISTANCE_M


def test_expert_ee_actions_vary_in_every_dimension() -> None:
    env = SO101PickPlaceEnv(action_space="ee", max_steps=60, render=False)
    policy = ScriptedPolicy(action_space="ee")
    actions = []
    for seed in (0, 1):
        observation, _ = env.reset(seed=seed)
        policy.reset()
        policy.attach_env(env)
        for _ in range(60):
            action = policy.infer(observation)[0]
            actions.append(action)
            observation, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
    env.close()
    std = np.std(np.asarray(actions), axis=0)
    assert np.all(std > 1e-3), dict(zip(EE_ACTION_NAMES, std.round(5), strict=True))


def test_a_tail_on_the_position_is_one_line() -> None:
    env = SO101PickPlaceEnv(action_space="ee", max_steps=5, render=False)
    env.reset(seed=0)
    with pytest.raises(SimInputError, match="tail is at its position"):
        env.step(np.array([0.2, 0.0, 0.1, 0.2, 0.0, 0.1, 50.0], dtype=np.float32))
    env.close()
