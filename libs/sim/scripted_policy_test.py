import numpy as np
import pytest

from libs.policy_api.registry import PolicyLoadError, make_policy
from libs.policy_api.types import NeedsEnv, Policy
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.outcome import Outcome
from libs.sim.play.episode import play_episode
from libs.sim.scripted_policy import ScriptedPolicy, ScriptedPolicyError

#: A few seeds per action space keep this test at ~5 s; `libs/sim/expert_check.py` runs 200.
SEEDS = (0, 1, 2, 3)


def test_registered_as_the_scripted_backend():
    policy = make_policy("scripted")
    assert isinstance(policy, ScriptedPolicy)
    assert isinstance(policy, Policy) and isinstance(policy, NeedsEnv)
    assert policy.spec.action_space == "joint" and policy.spec.action_dim == 6
    ee = make_policy("scripted:ee")
    assert ee.spec.action_space == "ee" and ee.spec.action_dim == 7
    assert 1 < ee.spec.n_action_steps < ee.spec.chunk_length  # exercises chunking
    with pytest.raises(PolicyLoadError, match="'joint' or 'ee'"):
        make_policy("scripted:cartesian")
    assert make_policy("scripted:noise=4").action_noise_deg == 4.0  # the deliberately degraded expert
    with pytest.raises(PolicyLoadError, match="noise must be degrees"):
        make_policy("scripted:noise=lots")


def test_infer_needs_an_attached_env_of_its_action_space():
    policy = ScriptedPolicy()
    with pytest.raises(ScriptedPolicyError, match="attach_env"):
        policy.infer({})
    env = SO101PickPlaceEnv(action_space="ee", render=False)
    env.reset(seed=0)
    with pytest.raises(ScriptedPolicyError, match="action_space='ee'"):
        policy.attach_env(env)


@pytest.mark.parametrize("action_space", ["joint", "ee"])
def test_expert_succeeds_and_returns_chunks(action_space):
    env = SO101PickPlaceEnv(action_space=action_space, render=False)
    policy = ScriptedPolicy(action_space=action_space)
    observation, _ = env.reset(seed=SEEDS[0])
    policy.attach_env(env)
    chunk = policy.infer(observation)
    assert chunk.shape == (policy.spec.chunk_length, policy.spec.action_dim) and chunk.dtype == np.float32
    assert np.isfinite(chunk).all()
    outcomes = [play_episode(policy, env, seed).outcome for seed in SEEDS]
    assert outcomes == [Outcome.SUCCESS] * len(SEEDS)
    env.close()
